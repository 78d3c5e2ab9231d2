//! Pure: why Docker's default seccomp profile refuses a call, and which capability (if any)
//! makes that profile allow it, so a refusal comes with its least-privilege fix.
//! Source: Docker's seccomp documentation (the "significant syscalls blocked" table) and the
//! capability-conditional rules of moby's default profile.

/// What Docker's default profile does about one syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advice {
    pub reason: &'static str,
    /// Capability (without `CAP_`) that makes Docker's default profile allow the call.
    pub capability: Option<&'static str>,
}

const fn a(reason: &'static str, capability: Option<&'static str>) -> Advice {
    Advice { reason, capability }
}

const NUMA: &str = "modifies kernel memory and NUMA settings";
const KEYRING: &str = "the kernel keyring is not namespaced";
const MODULES: &str = "loads or manipulates kernel modules";
const TIME: &str = "time/date is not namespaced";
const NAMESPACES: &str = "creates or joins namespaces";
const INSPECT: &str = "inspects or modifies other processes";
const MOUNTS: &str = "mounting should be a privileged operation";
const OBSOLETE: &str = "obsolete";

use std::collections::BTreeSet;

use tracer_common::CLONE_NS_FLAGS;

use super::args::{ArgCmp, CmpOp, Condition};

/// Advice for `name`, or `None` if Docker's default profile allows the call unconditionally.
pub fn docker_default(name: &str) -> Option<Advice> {
    Some(match name {
        "acct" => a(
            "could disable process accounting or resource limits",
            Some("SYS_PACCT"),
        ),
        "add_key" | "keyctl" | "request_key" => a(KEYRING, None),
        "bpf" => a(
            "loads persistent BPF programs into the kernel",
            Some("SYS_ADMIN"),
        ),
        "clock_adjtime" | "clock_settime" | "settimeofday" | "stime" => a(TIME, Some("SYS_TIME")),
        "clone" => a(
            "allowed by Docker's default only without namespace flags (CLONE_NEW*)",
            Some("SYS_ADMIN"),
        ),
        "unshare" => a(NAMESPACES, Some("SYS_ADMIN")),
        "setns" => a("joins a namespace", Some("SYS_ADMIN")),
        "create_module" | "get_kernel_syms" | "query_module" => a(OBSOLETE, None),
        "delete_module" | "finit_module" | "init_module" => a(MODULES, Some("SYS_MODULE")),
        "get_mempolicy" | "mbind" | "set_mempolicy" | "set_mempolicy_home_node" | "move_pages" => {
            a(NUMA, Some("SYS_NICE"))
        }
        "ioperm" | "iopl" => a("changes kernel I/O privilege levels", Some("SYS_RAWIO")),
        "kcmp" | "pidfd_getfd" | "process_madvise" | "process_vm_readv" | "process_vm_writev"
        | "ptrace" => a(INSPECT, Some("SYS_PTRACE")),
        "kexec_file_load" | "kexec_load" => a("loads a new kernel", None),
        "lookup_dcookie" => a(
            "tracing call that can leak host information",
            Some("SYS_ADMIN"),
        ),
        "mount" | "umount" | "umount2" | "fsconfig" | "fsmount" | "fsopen" | "fspick"
        | "mount_setattr" | "move_mount" | "open_tree" | "pivot_root" => {
            a(MOUNTS, Some("SYS_ADMIN"))
        }
        "name_to_handle_at" => a("sister of open_by_handle_at", Some("SYS_ADMIN")),
        "open_by_handle_at" => a("cause of an old container breakout", None),
        "nfsservctl" | "sysfs" | "_sysctl" | "ustat" | "uselib" => a(OBSOLETE, None),
        "perf_event_open" => a(
            "tracing call that can leak host information",
            Some("PERFMON"),
        ),
        "personality" => a("only some personalities are allowed", None),
        "quotactl" | "quotactl_fd" => a("could disable resource limits", Some("SYS_ADMIN")),
        "reboot" => a("reboots the host", Some("SYS_BOOT")),
        "sethostname" | "setdomainname" => a("changes the UTS namespace", Some("SYS_ADMIN")),
        "swapon" | "swapoff" => a("starts or stops swapping", Some("SYS_ADMIN")),
        "syslog" => a("reads the kernel log", Some("SYSLOG")),
        "chroot" => a("changes the root directory", Some("SYS_CHROOT")),
        "vhangup" => a("hangs up the terminal", Some("SYS_TTY_CONFIG")),
        "userfaultfd" => a("user-space page fault handling, used in exploits", None),
        "vm86" | "vm86old" => a("x86 real-mode virtual machine", None),
        "io_uring_setup" | "io_uring_enter" | "io_uring_register" => {
            a("io_uring has had many kernel vulnerabilities", None)
        }
        _ => return None,
    })
}

/// Personalities Docker's default profile allows (PER_LINUX, PER_LINUX32, UNAME26 and their
/// union, and the 0xffffffff query).
const DEFAULT_PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Whether Docker's default profile (without added capabilities) allows `name` under every one
/// of `conditions`: personality with its listed values, clone without namespace flags.
pub fn docker_default_covers(name: &str, conditions: &BTreeSet<Condition>) -> bool {
    let all = |f: &dyn Fn(&ArgCmp) -> bool| {
        !conditions.is_empty() && conditions.iter().all(|c| c.iter().any(f))
    };
    match name {
        "personality" => {
            all(&|a| a.index == 0 && a.op == CmpOp::Eq && DEFAULT_PERSONALITIES.contains(&a.value))
        }
        "clone" => all(&|a| {
            a.index == 0
                && a.op == CmpOp::MaskedEq
                && a.value & CLONE_NS_FLAGS == CLONE_NS_FLAGS
                && a.value_two == 0
        }),
        _ => docker_default(name).is_none(),
    }
}

/// One line for a refused call: why it was refused and how to allow it with least privilege.
pub fn refusal_hint(name: &str) -> String {
    if super::formats::ENOSYS_FALLBACK.contains(&name) {
        return "answered with ENOSYS so that libc falls back to clone: harmless; the learned \
                profile does the same and allows clone with the namespace flags seen"
            .into();
    }
    match docker_default(name) {
        Some(Advice {
            reason,
            capability: Some(cap),
        }) => format!(
            "{reason}; Docker's default profile allows it with --cap-add {cap} \
             (least privilege), or use the learned profile"
        ),
        Some(Advice {
            reason,
            capability: None,
        }) => format!("{reason}; no capability allows it under Docker's default profile: use the learned profile"),
        None => "refused by the container's current profile; the learned profile allows it".into(),
    }
}

/// The names Docker's default profile allows unconditionally on `arch` (the table less the
/// calls it refuses or allows only with a capability or argument rule).
pub fn docker_default_allows(
    arch: crate::syscalls::Arch,
) -> std::collections::BTreeSet<&'static str> {
    arch.names()
        .filter(|n| docker_default(n).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbind_needs_sys_nice() {
        let adv = docker_default("mbind").unwrap();
        assert_eq!(adv.capability, Some("SYS_NICE"));
        assert!(refusal_hint("mbind").contains("--cap-add SYS_NICE"));
        assert_eq!(
            docker_default("move_pages").unwrap().capability,
            Some("SYS_NICE")
        );
    }

    #[test]
    fn clone3_refusal_is_harmless() {
        let h = refusal_hint("clone3");
        assert!(h.contains("ENOSYS") && !h.contains("--cap-add"), "{h}");
    }

    #[test]
    fn allowed_calls_have_no_advice() {
        assert_eq!(docker_default("read"), None);
        assert!(refusal_hint("keyctl").contains("no capability"));
    }

    #[test]
    fn argument_rules_within_dockers_default() {
        use super::super::args::condition;
        use tracer_common::arg_call;
        let set = |v: Vec<Condition>| v.into_iter().collect::<BTreeSet<_>>();
        assert!(docker_default_covers(
            "clone",
            &set(vec![condition(arg_call::CLONE, 0)])
        ));
        assert!(!docker_default_covers(
            "clone",
            &set(vec![condition(arg_call::CLONE, 0x1000_0000)])
        ));
        assert!(docker_default_covers(
            "personality",
            &set(vec![condition(arg_call::PERSONALITY, 0xffff_ffff)])
        ));
        assert!(!docker_default_covers(
            "personality",
            &set(vec![condition(arg_call::PERSONALITY, 0x0040_0000)])
        ));
        assert!(!docker_default_covers("clone", &BTreeSet::new()));
        assert!(docker_default_covers("read", &BTreeSet::new()));
    }
}
