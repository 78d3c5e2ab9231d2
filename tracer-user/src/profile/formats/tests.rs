//! `render` and `parse` across the formats: the bytes written before the typed documents,
//! round trips, and errors that say where.

use serde_json::json;

use super::*;
use crate::profile::args::{condition, ArgCmp, CmpOp};

/// `super::parse` on x86_64, for documents whose names are all known.
fn parse(doc: &Value) -> Result<(Format, Profile), FormatError> {
    let p = super::parse(doc, Arch::X86_64)?;
    assert_eq!(p.warnings, [], "{doc}");
    Ok((p.format, p.profile))
}

pub(super) fn profile(names: &[&str], refused: &[&str]) -> Profile {
    Profile {
        allowed: names.iter().chain(refused).map(|s| s.to_string()).collect(),
        refused: refused.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// The profile the goldens in tests/golden were rendered from: unconditional, conditional
/// and refused calls (conditional ones too), several conditions per call.
fn golden_profile(arch: Arch, complain: bool) -> Profile {
    let mut p = profile(
        &["read", "write", "socket", "personality", "clone", "futex"],
        &["mbind", "unshare"],
    );
    p.complain = complain;
    if arch == Arch::Aarch64 {
        p.allowed.insert("clone3".into());
    }
    let cmp = |index, op, value| ArgCmp {
        index,
        op,
        value,
        value_two: 0,
    };
    p.conditions = [
        ("socket", [condition(1, 1), condition(1, 10)].into()),
        ("personality", [condition(0, 0xffff_ffff)].into()),
        ("clone", [condition(2, 0), condition(2, 0x2000_0000)].into()),
        ("unshare", [condition(3, 0x0400_0000)].into()),
        (
            "futex",
            [vec![cmp(0, CmpOp::Ne, 0), cmp(1, CmpOp::Le, 10)]].into(),
        ),
    ]
    .into_iter()
    .map(|(n, c)| (n.to_string(), c))
    .collect();
    p
}

/// (arch, complain, format, what the json!-based renderer wrote)
pub(super) const GOLDENS: [(Arch, bool, Format, &str); 9] = {
    macro_rules! golden {
        ($file:literal) => {
            include_str!(concat!("../../../tests/golden/", $file, ".json"))
        };
    }
    use Arch::*;
    use Format::*;
    [
        (X86_64, false, Docker, golden!("docker-x86_64")),
        (X86_64, false, Oci, golden!("oci-x86_64")),
        (X86_64, false, Kubernetes, golden!("kubernetes-x86_64")),
        (X86_64, true, Docker, golden!("docker-x86_64-complain")),
        (X86_64, true, Oci, golden!("oci-x86_64-complain")),
        (
            X86_64,
            true,
            Kubernetes,
            golden!("kubernetes-x86_64-complain"),
        ),
        (Aarch64, false, Docker, golden!("docker-aarch64")),
        (Aarch64, false, Oci, golden!("oci-aarch64")),
        (Aarch64, false, Kubernetes, golden!("kubernetes-aarch64")),
    ]
};

/// What survives a format: only Docker's keeps which calls were refused while recording.
fn as_kept_by(f: Format, p: &Profile) -> Profile {
    match f {
        Format::Docker => p.clone(),
        Format::Oci | Format::Kubernetes => Profile {
            refused: BTreeSet::new(),
            ..p.clone()
        },
    }
}

#[test]
fn renders_the_same_bytes_as_before_the_typed_documents() {
    for (arch, complain, f, golden) in GOLDENS {
        let doc = render(f, arch, "Web_1", &golden_profile(arch, complain));
        // As recorder::write_json writes it.
        let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        assert!(text == golden, "{f} {arch:?} complain={complain}:\n{text}");
    }
}

#[test]
fn reads_the_goldens_back() {
    for (arch, complain, f, golden) in GOLDENS {
        let doc: Value = serde_json::from_str(golden).unwrap();
        let (format, p) = parse(&doc).unwrap();
        assert_eq!(format, f);
        assert_eq!(p, as_kept_by(f, &golden_profile(arch, complain)), "{f}");
    }
}

#[test]
fn every_format_round_trips() {
    let mut conditional_only = profile(&["socket"], &[]);
    conditional_only
        .conditions
        .insert("socket".into(), [condition(1, 2)].into());
    let refused_only = profile(&[], &["mbind", "clone3"]);
    let profiles = [
        Profile::default(),
        profile(&["read", "write"], &["mbind"]),
        conditional_only,
        refused_only,
        golden_profile(Arch::X86_64, false),
        golden_profile(Arch::X86_64, true),
        golden_profile(Arch::Aarch64, true),
    ];
    for p in &profiles {
        for f in Format::ALL {
            for arch in [Arch::X86_64, Arch::Aarch64] {
                let (format, back) = parse(&render(f, arch, "web", p)).unwrap();
                assert_eq!(format, f);
                assert_eq!(back, as_kept_by(f, p), "{f} {arch:?}");
            }
        }
    }
}

#[test]
fn oci_and_kubernetes_shapes() {
    let p = profile(&["read"], &[]);
    let oci = render(Format::Oci, Arch::X86_64, "web", &p);
    assert_eq!(
        oci["architectures"],
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    assert_eq!(oci["defaultErrnoRet"], 1);
    assert!(oci.get("archMap").is_none());
    let k = render(Format::Kubernetes, Arch::X86_64, "My_Web", &p);
    assert_eq!(k["apiVersion"], SPO_API_VERSION);
    assert_eq!(k["kind"], "SeccompProfile");
    assert_eq!(k["metadata"]["name"], "my-web");
    assert_eq!(k["spec"]["syscalls"][0]["names"], json!(["read"]));
    assert_eq!(k["spec"]["syscalls"][1]["errnoRet"], 38);
    assert!(k["spec"].get("defaultErrnoRet").is_none());
    // Neither `disabled` (v0.8.4 to v0.10) nor `state` (v1.0.0): valid under every CRD.
    assert!(k["spec"].get("disabled").is_none() && k["spec"].get("state").is_none());
}

#[test]
fn complain_logs_instead_of_refusing() {
    let p = Profile {
        complain: true,
        ..profile(&["read"], &[])
    };
    let d = render(Format::Docker, Arch::X86_64, "x", &p);
    assert_eq!(d["defaultAction"], "SCMP_ACT_LOG");
    assert!(d.get("defaultErrnoRet").is_none());
    assert!(parse(&d).unwrap().1.complain);
}

#[test]
fn parses_docker_default_style_rules() {
    let doc = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [],
        "syscalls": [
            { "names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [] },
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 0, "op": "SCMP_CMP_EQ" }] },
            { "names": ["mbind"], "action": "SCMP_ACT_ALLOW",
              "includes": { "caps": ["CAP_SYS_NICE"] } },
            { "name": "getpid", "action": "SCMP_ACT_ALLOW" }
        ]
    });
    let (_, p) = parse(&doc).unwrap();
    assert_eq!(
        p.allowed.iter().map(String::as_str).collect::<Vec<_>>(),
        ["getpid", "personality", "read", "write"]
    );
    assert_eq!(p.conditions["personality"].len(), 1);
    assert_eq!(
        parse(&json!({"x": 1})),
        Err(FormatError::NotAProfile("no defaultAction"))
    );
}

#[test]
fn older_docker_profiles_without_arch_map_are_docker() {
    // `architectures` instead of `archMap`: the rule fields tell the format, and `includes`
    // still keeps a host-dependent rule out.
    let doc = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            { "names": ["read"], "action": "SCMP_ACT_ALLOW",
              "comment": "refused by the profile in force while recording" },
            { "names": ["mbind"], "action": "SCMP_ACT_ALLOW",
              "includes": { "caps": ["CAP_SYS_NICE"] } }
        ]
    });
    let (f, p) = parse(&doc).unwrap();
    assert_eq!(f, Format::Docker);
    assert_eq!(p, profile(&[], &["read"]));
}

#[test]
fn reads_an_oci_config_json() {
    let seccomp = render(Format::Oci, Arch::X86_64, "web", &profile(&["read"], &[]));
    let config = json!({ "ociVersion": "1.0.2", "process": { "args": ["sh"] },
                         "linux": { "namespaces": [], "seccomp": seccomp } });
    assert_eq!(
        parse(&config).unwrap(),
        (Format::Oci, profile(&["read"], &[]))
    );
    let mut bad = config;
    bad["linux"]["seccomp"]["syscalls"][0]["action"] = json!("SCMP_ACT_FOO");
    assert_eq!(
        parse(&bad).unwrap_err().to_string(),
        "linux.seccomp.syscalls[0].action: unknown action SCMP_ACT_FOO"
    );
}

/// `rule` as the fourth rule of a Docker profile, an OCI object and an operator resource.
pub(super) fn with_rule(rule: Value) -> [(Value, &'static str); 3] {
    let mut rules = vec![json!({ "names": ["read"], "action": "SCMP_ACT_ALLOW" }); 3];
    rules.push(rule);
    let docker = json!({ "defaultAction": "SCMP_ACT_ERRNO", "archMap": [], "syscalls": rules });
    let oci = json!({ "defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules });
    let spo = json!({ "apiVersion": SPO_API_VERSION, "kind": "SeccompProfile",
                      "spec": { "defaultAction": "SCMP_ACT_ERRNO", "disabled": false,
                                "syscalls": rules } });
    [(docker, ""), (oci, ""), (spo, "spec.")]
}

#[test]
fn errors_say_what_is_wrong_and_where() {
    let cases = [
        (
            json!({ "names": ["read"], "action": "SCMP_ACT_FOO" }),
            "syscalls[3].action: unknown action SCMP_ACT_FOO",
        ),
        (
            json!({ "names": ["read"], "action": 7 }),
            "syscalls[3].action: unknown action 7",
        ),
        (
            json!({ "names": ["read", ""], "action": "SCMP_ACT_ALLOW" }),
            "syscalls[3].names[1]: an empty syscall name",
        ),
        (
            json!({ "names": ["read", 12], "action": "SCMP_ACT_ALLOW" }),
            "syscalls[3].names[1]: 12 is not a syscall name",
        ),
        (
            json!({ "names": "read", "action": "SCMP_ACT_ALLOW" }),
            "syscalls[3].names: \"read\" is not a syscall name",
        ),
        (
            json!({ "names": ["socket"], "action": "SCMP_ACT_ALLOW",
                    "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_EQ" },
                             { "index": 1, "value": 1, "op": "SCMP_CMP_SOMETIMES" }] }),
            "syscalls[3].args[1].op: unknown operator SCMP_CMP_SOMETIMES",
        ),
        (
            json!({ "names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{ "index": 0 }] }),
            "syscalls[3]: missing field `op`",
        ),
        (
            json!({ "names": ["read"] }),
            "syscalls[3]: missing field `action`",
        ),
        (
            json!({ "names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1 }),
            "syscalls[3]: invalid value: integer `-1`, expected u32",
        ),
    ];
    for (rule, expected) in cases {
        for (doc, prefix) in with_rule(rule.clone()) {
            let err = parse(&doc).unwrap_err().to_string();
            assert_eq!(err, format!("{prefix}{expected}"), "{doc}");
        }
    }
    // Errors in rules that are not ALLOW, or depend on the host, are errors too.
    let (doc, _) = with_rule(json!({ "names": ["x"], "action": "SCMP_ACT_NOPE",
                                     "includes": { "caps": ["CAP_SYS_ADMIN"] } }))
    .into_iter()
    .next()
    .unwrap();
    assert!(matches!(
        parse(&doc),
        Err(FormatError::UnknownAction { at, found })
            if at == "syscalls[3].action" && found == "SCMP_ACT_NOPE"
    ));
    // Docker's single `name` must be a string too, and not come with `names`.
    let (doc, _) = with_rule(json!({ "name": 5, "action": "SCMP_ACT_ALLOW" }))
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(
        parse(&doc).unwrap_err().to_string(),
        "syscalls[3].name: 5 is not a syscall name"
    );
    let (doc, _) = with_rule(json!({ "name": "read", "names": ["write"],
                                     "action": "SCMP_ACT_ALLOW" }))
    .into_iter()
    .next()
    .unwrap();
    assert_eq!(
        parse(&doc).unwrap_err().to_string(),
        "syscalls[3]: both `name` and `names`; Docker takes one or the other"
    );
}

#[test]
fn rules_that_name_nothing_are_a_located_warning() {
    // Docker starts the container: the rule adds nothing to the filter.
    let cases = [
        (
            json!({ "names": null, "action": "SCMP_ACT_ALLOW" }),
            "syscalls[3].names: null instead of a list of syscall names; the rule is ignored",
        ),
        (
            json!({ "action": "SCMP_ACT_ALLOW" }),
            "syscalls[3]: the rule names no syscall; ignored",
        ),
        (
            json!({ "names": [], "action": "SCMP_ACT_ALLOW" }),
            "syscalls[3]: the rule names no syscall; ignored",
        ),
    ];
    for (rule, expected) in cases {
        for (doc, prefix) in with_rule(rule.clone()) {
            let p = super::parse(&doc, Arch::X86_64).unwrap();
            assert_eq!(p.profile, profile(&["read"], &[]), "{doc}");
            let warnings: Vec<String> = p.warnings.iter().map(|w| w.to_string()).collect();
            assert_eq!(warnings, [format!("{prefix}{expected}")], "{doc}");
        }
    }
    // As moby reads Docker's rules: an empty `name` is none, `names: null` or `[]` beside a
    // `name` is no conflict.
    let docker = |rule: Value| with_rule(rule).into_iter().next().unwrap().0;
    let p = super::parse(
        &docker(json!({ "name": "", "action": "SCMP_ACT_ALLOW" })),
        Arch::X86_64,
    )
    .unwrap();
    assert!(matches!(&p.warnings[..], [FormatWarning::NoNames { at }] if at == "syscalls[3]"));
    for names in [json!(null), json!([])] {
        let doc = docker(json!({ "name": "getpid", "names": names, "action": "SCMP_ACT_ALLOW" }));
        assert_eq!(parse(&doc).unwrap().1, profile(&["read", "getpid"], &[]));
    }
}

#[test]
fn errors_outside_the_rules_name_the_document() {
    let (mut spo, _) = with_rule(json!({ "names": ["read"], "action": "SCMP_ACT_ALLOW" }))
        .into_iter()
        .last()
        .unwrap();
    spo["metadata"] = json!({ "name": 5 });
    assert_eq!(
        parse(&spo).unwrap_err().to_string(),
        "the profile: invalid type: integer `5`, expected a string"
    );
    let config = json!({ "linux": { "seccomp": {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": "EPERM" } } });
    assert_eq!(
        parse(&config).unwrap_err().to_string(),
        "linux.seccomp: invalid type: string \"EPERM\", expected u32"
    );
}

#[test]
fn an_unknown_default_action_is_an_error() {
    for (mut doc, prefix) in with_rule(json!({ "names": ["read"], "action": "SCMP_ACT_ALLOW" })) {
        let body = if prefix.is_empty() {
            &mut doc
        } else {
            &mut doc["spec"]
        };
        body["defaultAction"] = json!("SCMP_ACT_MAYBE");
        assert_eq!(
            parse(&doc),
            Err(FormatError::UnknownAction {
                at: format!("{prefix}defaultAction"),
                found: "SCMP_ACT_MAYBE".into()
            })
        );
    }
}

#[test]
fn merge_is_a_union() {
    let m = merge([&profile(&["read"], &[]), &profile(&["write"], &["mbind"])]);
    assert_eq!(m, profile(&["read", "write"], &["mbind"]));
}

fn with_socket(families: &[u64]) -> Profile {
    let mut p = profile(&["read", "socket"], &[]);
    p.conditions.insert(
        "socket".into(),
        families.iter().map(|&f| condition(1, f)).collect(),
    );
    p
}

#[test]
fn argument_rules_round_trip() {
    let p = with_socket(&[1, 10]);
    for f in Format::ALL {
        let doc = render(f, Arch::X86_64, "web", &p);
        let (_, back) = parse(&doc).unwrap();
        assert_eq!(back, p, "{f:?}");
    }
    let d = render(Format::Docker, Arch::X86_64, "web", &p);
    let rule = &d["syscalls"][1];
    assert_eq!(rule["names"], json!(["socket"]));
    assert_eq!(rule["args"][0]["op"], "SCMP_CMP_EQ");
    assert_eq!(rule["args"][0]["value"], 1);
    assert!(!d["syscalls"][0]["names"]
        .as_array()
        .unwrap()
        .contains(&json!("socket")));
}

#[test]
fn merge_keeps_argument_rules_right() {
    let m = merge([&with_socket(&[1]), &with_socket(&[2])]);
    assert_eq!(m.conditions["socket"].len(), 2);
    // Unconditional in one profile: unconditional in the union.
    let m = merge([&with_socket(&[1]), &profile(&["socket"], &[])]);
    assert!(m.allowed.contains("socket") && m.conditions.is_empty());
}

#[test]
fn format_names_are_the_same_everywhere() {
    use clap::ValueEnum;
    for f in Format::ALL {
        let cli = f.to_possible_value().unwrap();
        assert_eq!(cli.get_name(), f.name());
        assert!(cli.get_help().is_some(), "{f}: no --help text");
        assert_eq!(serde_json::to_value(f).unwrap(), f.name());
        assert_eq!(
            serde_json::from_value::<Format>(json!(f.name())).unwrap(),
            f
        );
        assert_eq!(f.to_string().parse::<Format>(), Ok(f));
    }
    assert_eq!(Format::value_variants(), Format::ALL);
    assert_eq!(
        "yaml".parse::<Format>().unwrap_err().to_string(),
        "unknown format `yaml`: docker, oci or kubernetes"
    );
    assert!(serde_json::from_value::<Format>(json!("Docker")).is_err());
}

#[test]
fn kubernetes_writes_an_oci_copy_for_kubelet() {
    assert_eq!(Format::Docker.side_files(), []);
    assert_eq!(Format::Oci.side_files(), []);
    let [side] = Format::Kubernetes.side_files() else {
        panic!("one side file");
    };
    // containerd reads it into the OCI type: `architectures`, not Docker's `archMap`.
    assert_eq!(side.format(), Format::Oci);
    assert_eq!(
        side.path(Path::new("/out/web.json")),
        Path::new("/out/web.kubelet.json")
    );
    assert_eq!(
        kubelet_path(Path::new("profiles/db")),
        Path::new("profiles/db.kubelet.json")
    );
    assert_eq!(
        side.path(Path::new("/out/web.yaml")),
        Path::new("/out/web.kubelet.json")
    );
    assert!(is_yaml_path(Path::new("a/web.yaml")) && is_yaml_path(Path::new("web.YML")));
    assert!(!is_yaml_path(Path::new("web.json")) && !is_yaml_path(Path::new("yaml")));
}

#[test]
fn unknown_names_are_a_located_warning_and_left_out() {
    for (doc, prefix) in
        with_rule(json!({ "names": ["getpid", "fooo"], "action": "SCMP_ACT_ALLOW" }))
    {
        let p = super::parse(&doc, Arch::Aarch64).unwrap();
        assert_eq!(p.profile, profile(&["read", "getpid"], &[]), "{doc}");
        let [w] = &p.warnings[..] else {
            panic!("{:?}", p.warnings)
        };
        assert_eq!(
            w.to_string(),
            format!("{prefix}syscalls[3].names[1]: unknown syscall \"fooo\" on aarch64; ignored")
        );
    }
    // Docker's single `name`, a rule that refuses, and escapes in the name.
    let (doc, _) = with_rule(json!({ "name": "\u{1b}[2J", "action": "SCMP_ACT_ERRNO" }))
        .into_iter()
        .next()
        .unwrap();
    let p = super::parse(&doc, Arch::X86_64).unwrap();
    assert_eq!(
        p.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        [r#"syscalls[3].name: unknown syscall "\u{1b}[2J" on x86_64; ignored"#]
    );
}

#[test]
fn names_of_any_architecture_are_known() {
    // i386 (a 32-bit call in a 64-bit container), arm64-only, other architectures' calls
    // Docker's default lists, and x86's multiplexed socket calls.
    for n in [
        "read",
        "socketcall",
        "_llseek",
        "renameat2",
        "arm_fadvise64_64",
        "s390_pci_mmio_read",
        "riscv_flush_icache",
        "recv",
        "send",
    ] {
        assert!(is_syscall_name(n), "{n}");
    }
    for n in ["fooo", "", "READ", "read ", "\u{1b}[2J"] {
        assert!(!is_syscall_name(n), "{n:?}");
    }
}

#[test]
fn escape_leaves_nothing_a_terminal_acts_on() {
    assert!(matches!(escape("clock_gettime64"), Cow::Borrowed(_)));
    assert_eq!(escape("a\u{1b}[2Jb"), r"a\u{1b}[2Jb");
    assert_eq!(
        escape("\u{9b}2J\u{7f}\n\t\0"),
        r"\u{9b}2J\u{7f}\u{a}\u{9}\u{0}"
    );
    // Bidirectional overrides and zero-width characters hide or reorder text.
    assert_eq!(
        escape("x\u{202e}y\u{200b}z\u{feff}"),
        r"x\u{202e}y\u{200b}z\u{feff}"
    );
    // Printable text of any script stays, and escaping twice changes nothing.
    assert_eq!(escape("énoncé ✓ 名前"), "énoncé ✓ 名前");
    let once = escape("\u{1b}]0;title\u{7}").into_owned();
    assert_eq!(escape(&once), once);
    let err = FormatError::UnknownAction {
        at: "syscalls[0].action".into(),
        found: "x".into(),
    };
    assert!(!err.to_string().contains('\u{1b}'));
}

#[test]
fn strings_in_errors_are_escaped() {
    let (doc, _) = with_rule(json!({ "names": ["read"], "action": "SCMP_ACT_\u{1b}[2J" }))
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(
        parse(&doc).unwrap_err().to_string(),
        r"syscalls[3].action: unknown action SCMP_ACT_\u{1b}[2J"
    );
}
