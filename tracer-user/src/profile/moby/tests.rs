//! The verdicts issue 15 checked against moby's default profile (each of them was wrong in the
//! hand-written deny list this module replaces), and moby's evaluation rules.

use std::collections::BTreeSet;

use super::*;
use crate::profile::args::{condition, CmpOp};
use tracer_common::arg_call;

fn default() -> &'static MobyProfile {
    MobyProfile::docker_default().expect("the vendored default.json reads")
}

fn host(major: u32, minor: u32) -> Host {
    Host {
        arch: Arch::X86_64,
        kernel: KernelVersion { major, minor },
    }
}

/// The verdict on `name` allowed with any arguments, for a default container on Linux 6.8.
fn v(name: &str) -> Option<Verdict> {
    verdict(default(), &Context::docker_default(host(6, 8)), name, None)
}

fn caps(c: &[&'static str]) -> Option<Verdict> {
    Some(Verdict::Capability {
        capabilities: c.to_vec(),
    })
}

fn only(call: usize, values: &[u64]) -> BTreeSet<Condition> {
    values.iter().map(|&v| condition(call, v)).collect()
}

#[test]
fn the_vendored_profile_reads() {
    let p = MobyProfile::docker_default();
    assert!(p.is_ok(), "{p:?}");
    assert!(MobyProfile::parse("{").is_err());
    assert!(
        MobyProfile::parse(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOPE"}]}"#)
            .unwrap_err()
            .to_string()
            .starts_with("syscalls[0]: action")
    );
}

#[test]
fn ptrace_and_process_vm_are_allowed_from_kernel_4_8() {
    for name in ["ptrace", "process_vm_readv", "process_vm_writev"] {
        assert_eq!(v(name), None, "{name}");
        let at = |major, minor| {
            verdict(
                default(),
                &Context::docker_default(host(major, minor)),
                name,
                None,
            )
        };
        assert_eq!(at(4, 8), None, "{name}");
        assert_eq!(at(4, 7), caps(&["CAP_SYS_PTRACE"]), "{name}");
        assert_eq!(at(3, 19), caps(&["CAP_SYS_PTRACE"]), "{name}");
    }
}

#[test]
fn calls_the_default_allows_without_a_capability() {
    for name in [
        "clock_adjtime",
        "name_to_handle_at",
        "read",
        "arch_prctl",
        "modify_ldt",
    ] {
        assert_eq!(v(name), None, "{name}");
    }
    // CAP_SYS_CHROOT is one of Docker's default capabilities.
    assert_eq!(v("chroot"), None);
}

#[test]
fn capabilities_least_privilege_first() {
    assert_eq!(v("open_by_handle_at"), caps(&["CAP_DAC_READ_SEARCH"]));
    assert_eq!(v("bpf"), caps(&["CAP_BPF", "CAP_SYS_ADMIN"]));
    assert_eq!(
        v("perf_event_open"),
        caps(&["CAP_PERFMON", "CAP_SYS_ADMIN"])
    );
    assert_eq!(v("syslog"), caps(&["CAP_SYSLOG", "CAP_SYS_ADMIN"]));
    assert_eq!(v("mbind"), caps(&["CAP_SYS_NICE"]));
    for name in [
        "fanotify_init",
        "lsm_get_self_attr",
        "lsm_set_self_attr",
        "lsm_list_modules",
    ] {
        assert_eq!(v(name), caps(&["CAP_SYS_ADMIN"]), "{name}");
    }
    assert_eq!(v("clone3"), caps(&["CAP_SYS_ADMIN"]));
}

#[test]
fn calls_no_capability_allows() {
    for name in [
        "move_pages",
        "pivot_root",
        "swapon",
        "swapoff",
        "migrate_pages",
        "file_getattr",
        "file_setattr",
        "open_tree_attr",
        "keyctl",
        "userfaultfd",
        "io_uring_setup",
    ] {
        assert_eq!(v(name), Some(Verdict::Never), "{name}");
    }
}

#[test]
fn legacy_i386_calls() {
    for name in [
        "sigaction",
        "signal",
        "nice",
        "sgetmask",
        "oldstat",
        "readdir",
    ] {
        assert!(Arch::I386.number(name).is_some(), "{name} is an i386 call");
        assert_eq!(v(name), Some(Verdict::Never), "{name}");
    }
    assert_eq!(v("clock_settime64"), caps(&["CAP_SYS_TIME"]));
    assert_eq!(v("clock_gettime64"), None);
}

#[test]
fn socket_is_allowed_for_every_family_but_af_alg_and_af_vsock() {
    let ctx = Context::docker_default(host(6, 8));
    let socket = |values: &[u64]| {
        verdict(
            default(),
            &ctx,
            "socket",
            Some(&only(arg_call::SOCKET, values)),
        )
    };
    assert_eq!(v("socket"), Some(Verdict::Arguments));
    assert_eq!(socket(&[1, 2, 10, 16, 39, 41, 44]), None);
    assert_eq!(socket(&[38]), Some(Verdict::Arguments), "AF_ALG");
    assert_eq!(socket(&[1, 40]), Some(Verdict::Arguments), "AF_VSOCK");
    assert!(matches!(default().outcome("socket", &ctx), Outcome::AllowedWhen(r) if r.len() == 3));
}

#[test]
fn argument_rules_of_clone_unshare_and_personality() {
    let ctx = Context::docker_default(host(6, 8));
    let at = |name, call, values: &[u64]| verdict(default(), &ctx, name, Some(&only(call, values)));
    assert_eq!(at("clone", arg_call::CLONE, &[0, 0x11]), None);
    assert_eq!(
        at("clone", arg_call::CLONE, &[0x1000_0000]),
        caps(&["CAP_SYS_ADMIN"])
    );
    assert_eq!(
        at("unshare", arg_call::UNSHARE, &[0x0400_0000]),
        caps(&["CAP_SYS_ADMIN"])
    );
    assert_eq!(
        at("personality", arg_call::PERSONALITY, &[0, 8, 0xffff_ffff]),
        None
    );
    assert_eq!(
        at("personality", arg_call::PERSONALITY, &[0x0040_0000]),
        Some(Verdict::Arguments)
    );
    // With CAP_SYS_ADMIN moby drops clone's argument rule and allows it whole.
    let admin = ctx.with_cap("CAP_SYS_ADMIN");
    assert_eq!(default().outcome("clone", &admin), Outcome::Allowed);
    assert!(matches!(
        default().outcome("clone", &ctx),
        Outcome::AllowedWhen(_)
    ));
}

#[test]
fn hosts_filters_as_moby_applies_them() {
    let x86 = Context::docker_default(host(6, 8));
    let arm = Context::docker_default(Host {
        arch: Arch::Aarch64,
        ..host(6, 8)
    });
    assert_eq!(default().outcome("arch_prctl", &x86), Outcome::Allowed);
    assert_eq!(
        default().outcome("arch_prctl", &arm),
        Outcome::Refused { errno: Some(1) }
    );
    // clone3 is answered ENOSYS (so that libc falls back to clone), unless CAP_SYS_ADMIN.
    assert_eq!(
        default().outcome("clone3", &x86),
        Outcome::Refused { errno: Some(38) }
    );
    assert_eq!(
        default().outcome("clone3", &x86.with_cap("CAP_SYS_ADMIN")),
        Outcome::Allowed
    );
    // includes.caps needs every capability listed.
    let p = MobyProfile::parse(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["mbind"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_NICE","CAP_BPF"]}},
            {"name":"getpid","action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"6.0"}}]}"#,
    )
    .unwrap();
    let nice = x86.with_cap("CAP_SYS_NICE");
    assert!(matches!(p.outcome("mbind", &nice), Outcome::Refused { .. }));
    assert_eq!(
        p.outcome("mbind", &nice.with_cap("CAP_BPF")),
        Outcome::Allowed
    );
    assert!(matches!(p.outcome("getpid", &x86), Outcome::Refused { .. }));
    let old = Context::docker_default(host(5, 15));
    assert_eq!(p.outcome("getpid", &old), Outcome::Allowed);
}

#[test]
fn a_permissive_profile_refuses_only_what_it_lists() {
    let p = MobyProfile::parse(
        r#"{"defaultAction":"SCMP_ACT_LOG","syscalls":[
            {"names":["mbind"],"action":"SCMP_ACT_ERRNO"},
            {"names":["socket"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":40,"op":"SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap();
    let ctx = Context::docker_default(host(6, 8));
    assert_eq!(p.outcome("read", &ctx), Outcome::Allowed);
    assert_eq!(
        p.outcome("mbind", &ctx),
        Outcome::Refused { errno: Some(1) }
    );
    assert!(matches!(p.outcome("socket", &ctx), Outcome::RefusedWhen(_)));
}

#[test]
fn an_unconditional_rule_decides_alone_as_in_libseccomp() {
    // libseccomp drops the argument rule once the call has an unconditional one.
    let p = MobyProfile::parse(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":40,"op":"SCMP_CMP_NE"}]},
            {"names":["read","socket"],"action":"SCMP_ACT_ALLOW"},
            {"names":["mbind"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
            {"names":["mbind"],"action":"SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap();
    let ctx = Context::docker_default(host(6, 8));
    assert_eq!(p.outcome("socket", &ctx), Outcome::Allowed);
    assert_eq!(
        p.outcome("mbind", &ctx),
        Outcome::Refused { errno: Some(38) }
    );
    // A permissive profile's conditional refusal: values it pins elsewhere are let through.
    let p = MobyProfile::parse(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["socket"],"action":"SCMP_ACT_ERRNO",
             "args":[{"index":0,"value":40,"op":"SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap();
    let socket = p.outcome("socket", &ctx);
    assert!(
        matches!(socket, Outcome::RefusedWhen(ref r) if r.len() == 1),
        "{socket:?}"
    );
    assert!(verdict::covered(
        &socket,
        Some(&only(arg_call::SOCKET, &[1, 10]))
    ));
    assert!(!verdict::covered(
        &socket,
        Some(&only(arg_call::SOCKET, &[1, 40]))
    ));
    assert!(!verdict::covered(&socket, None));
    let sec = ContainerSecurity {
        seccomp: SeccompInForce::Custom(Box::new(p)),
        caps: CapSet::docker_default(),
        own_profile: None,
    };
    let h = refusal_hint("socket", host(6, 8), Some(&sec));
    assert!(
        h.starts_with("the container's own profile (--security-opt seccomp) refuses it for some argument values"),
        "{h}"
    );
}

#[test]
fn x86_64_count_of_calls_allowed_with_any_arguments() {
    // Issue 15 counts 304 on x86_64 (a kernel >= 4.8, no capability): the names of the
    // table today; `uretprobe`, which the default lists, is one more once the table has it.
    let with_uretprobe = usize::from(Arch::X86_64.number("uretprobe").is_some());
    let no_caps = Context {
        host: host(6, 8),
        caps: CapSet::container(&[], &["ALL".into()], false),
    };
    let n = default().allowed_names(Arch::X86_64, &no_caps).len();
    assert_eq!(n, 304 + with_uretprobe);
    // Docker's default capabilities add chroot (CAP_SYS_CHROOT).
    let ctx = Context::docker_default(host(6, 8));
    let allowed = default().allowed_names(Arch::X86_64, &ctx);
    assert_eq!(allowed.len(), n + 1);
    assert!(allowed.contains("chroot") && allowed.contains("ptrace"));
    // Below 4.8, ptrace and process_vm_readv/writev need CAP_SYS_PTRACE.
    let old = Context::docker_default(host(4, 4));
    assert_eq!(default().allowed_names(Arch::X86_64, &old).len(), n + 1 - 3);
}

#[test]
fn conditions_imply_the_defaults() {
    let cmp = |op, value| crate::profile::args::ArgCmp {
        index: 0,
        op,
        value,
        value_two: 0,
    };
    let lt38 = vec![cmp(CmpOp::Lt, 38)];
    assert!(verdict::covered(
        &Outcome::AllowedWhen(vec![lt38.clone()]),
        Some(&[vec![cmp(CmpOp::Eq, 37)]].into())
    ));
    assert!(!verdict::covered(
        &Outcome::AllowedWhen(vec![lt38.clone()]),
        Some(&[vec![cmp(CmpOp::Eq, 38)]].into())
    ));
    assert!(verdict::covered(
        &Outcome::AllowedWhen(vec![lt38.clone()]),
        Some(&[vec![cmp(CmpOp::Le, 37)]].into())
    ));
    assert!(!verdict::covered(
        &Outcome::AllowedWhen(vec![lt38.clone()]),
        Some(&[vec![cmp(CmpOp::Ne, 38)]].into())
    ));
    assert!(!verdict::covered(&Outcome::AllowedWhen(vec![lt38]), None));
    // A narrower mask of the profile's is within the default's.
    let mask = |value, value_two| crate::profile::args::ArgCmp {
        index: 0,
        op: CmpOp::MaskedEq,
        value,
        value_two,
    };
    let d = Outcome::AllowedWhen(vec![vec![mask(0x7E02_0000, 0)]]);
    assert!(verdict::covered(
        &d,
        Some(&[vec![mask(0x7E02_0080, 0)]].into())
    ));
    assert!(!verdict::covered(
        &d,
        Some(&[vec![mask(0x7E00_0000, 0)]].into())
    ));
    assert!(!verdict::covered(
        &d,
        Some(&[vec![mask(0x7E02_0000, 0x2_0000)]].into())
    ));
    assert!(!verdict::covered(&d, Some(&BTreeSet::new())));
}

#[test]
fn beyond_default_lists_the_profiles_calls_with_their_verdicts() {
    let p = crate::profile::formats::Profile {
        allowed: ["read", "mbind", "move_pages", "socket", "ptrace"]
            .map(String::from)
            .into(),
        ..Default::default()
    };
    let b = beyond_default(&p, default(), &Context::docker_default(host(6, 8)));
    assert_eq!(
        serde_json::to_value(&b).unwrap(),
        serde_json::json!([
            {"name": "mbind", "verdict": "capability", "capabilities": ["CAP_SYS_NICE"]},
            {"name": "move_pages", "verdict": "never"},
            {"name": "socket", "verdict": "arguments"}
        ])
    );
}

#[test]
fn container_capabilities_as_moby_computes_them() {
    let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let c = CapSet::container(&s(&["sys_nice"]), &s(&["CAP_CHOWN"]), false);
    assert!(c.has("CAP_SYS_NICE") && c.has("CAP_KILL") && !c.has("CAP_CHOWN"));
    let c = CapSet::container(&s(&["NET_ADMIN"]), &s(&["ALL"]), false);
    assert!(c.has("CAP_NET_ADMIN") && !c.has("CAP_KILL"));
    let c = CapSet::container(&s(&["ALL"]), &s(&["SYS_ADMIN"]), false);
    assert!(c.has("CAP_BPF") && !c.has("CAP_SYS_ADMIN"));
    assert!(CapSet::container(&[], &[], true).has("CAP_SYS_ADMIN"));
    // Added and dropped: the add wins, as in moby.
    assert!(CapSet::container(&s(&["SYS_NICE"]), &s(&["SYS_NICE"]), false).has("CAP_SYS_NICE"));
    assert_eq!(CapSet::container(&[], &[], false), CapSet::docker_default());
}

fn security(opts: &[&str], cap_add: &[&str]) -> ContainerSecurity {
    let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    ContainerSecurity::from_host_config(&s(opts), &s(cap_add), &[], false)
}

/// A profile of the container's own that refuses getpid and mbind (Docker's default allows
/// the first, and the second with CAP_SYS_NICE).
const OWN: &str = r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid","mbind","move_pages"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#;

#[test]
fn the_seccomp_option_of_the_container() {
    assert_eq!(security(&[], &[]).seccomp, SeccompInForce::Default);
    assert_eq!(
        security(&["label=disable", "seccomp=builtin"], &[]).seccomp,
        SeccompInForce::Default
    );
    assert_eq!(
        security(&["seccomp=unconfined"], &[]).seccomp,
        SeccompInForce::Unconfined
    );
    assert_eq!(
        security(&["seccomp:unconfined"], &[]).seccomp,
        SeccompInForce::Unconfined
    );
    assert!(matches!(
        security(&[OWN], &[]).seccomp,
        SeccompInForce::Custom(_)
    ));
    assert!(matches!(
        security(&["seccomp={"], &[]).seccomp,
        SeccompInForce::Unreadable(_)
    ));
    let privileged = ContainerSecurity::from_host_config(&[OWN.into()], &[], &[], true);
    assert_eq!(privileged.seccomp, SeccompInForce::Unconfined);
}

#[test]
fn refusal_hints_under_dockers_default() {
    let h = |name| refusal_hint(name, host(6, 8), Some(&security(&[], &[])));
    assert_eq!(
        h("mbind"),
        "Docker's default profile allows it with --cap-add SYS_NICE (least privilege); or use the learned profile"
    );
    assert!(
        h("bpf").contains("--cap-add BPF (least privilege; or SYS_ADMIN)"),
        "{}",
        h("bpf")
    );
    assert!(h("move_pages")
        .starts_with("Docker's default profile refuses it whatever the capabilities"));
    assert!(
        h("socket").contains("only for some argument values"),
        "{}",
        h("socket")
    );
    // Allowed by the default as this container runs: another filter refused it.
    assert!(
        h("ptrace").starts_with("refused although Docker's default profile allows it"),
        "{}",
        h("ptrace")
    );
    let h3 = refusal_hint("clone3", host(6, 8), None);
    assert!(h3.contains("ENOSYS") && !h3.contains("--cap-add"), "{h3}");
    // The container's capabilities count: with SYS_NICE already, mbind was not refused by it.
    let nice = refusal_hint("mbind", host(6, 8), Some(&security(&[], &["SYS_NICE"])));
    assert!(nice.starts_with("refused although"), "{nice}");
}

#[test]
fn refusal_hints_under_the_containers_own_profile() {
    let sec = security(&[OWN], &[]);
    let h = |name| refusal_hint(name, host(6, 8), Some(&sec));
    assert_eq!(
        h("getpid"),
        "the container's own profile (--security-opt seccomp) refuses it; Docker's default would \
         allow it with this container's capabilities; the learned profile allows it"
    );
    assert!(
        h("mbind").contains("refuses it; Docker's default would allow it with --cap-add SYS_NICE"),
        "{}",
        h("mbind")
    );
    assert!(h("move_pages").contains("Docker's default would refuse it whatever the capabilities"));
    let nice = security(&[OWN], &["SYS_NICE"]);
    let h = refusal_hint("mbind", host(6, 8), Some(&nice));
    assert!(
        h.contains("Docker's default would allow it with this container's capabilities"),
        "{h}"
    );
    let h = refusal_hint(
        "read",
        host(6, 8),
        Some(&security(&["seccomp=unconfined"], &[])),
    );
    assert!(
        h.starts_with("the container runs without Docker's seccomp filter"),
        "{h}"
    );
}

#[test]
fn a_cri_runtimes_filter_is_judged_by_what_the_kubelet_asked_for() {
    use crate::profile::formats::{render, Format, Profile};
    let oci = render(
        Format::Oci,
        crate::syscalls::Arch::X86_64,
        "web",
        &Profile {
            allowed: ["read".to_string()].into(),
            ..Default::default()
        },
    )
    .to_string();
    let own = ContainerSecurity::from_runtime(Some(&oci), true, None);
    assert!(
        matches!(own.seccomp, SeccompInForce::Custom(_)),
        "{:?}",
        own.seccomp
    );
    assert_eq!(own.own_profile.as_deref(), Some(oci.as_str()));
    let default = ContainerSecurity::from_runtime(Some(&oci), false, None);
    assert_eq!(default.seccomp, SeccompInForce::Default);
    assert_eq!(default.own_profile, None);
    let none = ContainerSecurity::from_runtime(None, false, Some(&["CAP_SYS_NICE".into()]));
    assert_eq!(none.seccomp, SeccompInForce::Unconfined);
    assert!(none.caps.has("CAP_SYS_NICE") && !none.caps.has("CAP_CHOWN"));
}
