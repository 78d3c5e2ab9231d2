//! What a document says beyond its rules: a default action that allows, and the
//! architectures it names, which `merge` and `explain` go by.

use serde_json::json;

use super::tests::{profile, with_rule};
use super::*;

#[test]
fn a_default_action_that_allows_is_not_an_empty_allow_list() {
    for (default, permissive, complain) in [
        ("SCMP_ACT_ALLOW", true, false),
        ("SCMP_ACT_LOG", false, true),
        ("SCMP_ACT_TRACE", false, false),
        ("SCMP_ACT_NOTIFY", false, false),
        ("SCMP_ACT_ERRNO", false, false),
    ] {
        for (mut doc, prefix) in
            with_rule(json!({ "names": ["ptrace"], "action": "SCMP_ACT_ERRNO" }))
        {
            let body = if prefix.is_empty() {
                &mut doc
            } else {
                &mut doc["spec"]
            };
            body["defaultAction"] = json!(default);
            let p = super::parse(&doc, Arch::X86_64).unwrap().profile;
            assert_eq!(
                (p.permissive, p.complain),
                (permissive, complain),
                "{default}"
            );
            assert_eq!(p.allows_unlisted(), permissive || complain, "{default}");
        }
    }
    // The union with a permissive profile is permissive, and is written so.
    let allow_all = Profile {
        permissive: true,
        ..Default::default()
    };
    let m = merge([&profile(&["read"], &[]), &allow_all]);
    assert!(m.permissive && m.allows_unlisted());
    for f in Format::ALL {
        let doc = render(f, Arch::X86_64, "x", &m);
        let body = if f == Format::Kubernetes {
            &doc["spec"]
        } else {
            &doc
        };
        assert_eq!(body["defaultAction"], "SCMP_ACT_ALLOW", "{f}");
    }
}

#[test]
fn the_architectures_a_document_names_are_read() {
    for f in Format::ALL {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let doc = render(f, arch, "x", &profile(&["read"], &[]));
            assert_eq!(
                super::parse(&doc, Arch::X86_64).unwrap().arches,
                [arch],
                "{f}"
            );
        }
    }
    let (doc, _) = with_rule(json!({ "names": ["read"], "action": "SCMP_ACT_ALLOW" }))
        .into_iter()
        .nth(1)
        .unwrap();
    assert_eq!(super::parse(&doc, Arch::X86_64).unwrap().arches, []);
}

#[test]
fn a_profile_keeps_the_architecture_of_its_inputs() {
    use Arch::*;
    let arm: &[Arch] = &[Aarch64];
    let x86: &[Arch] = &[X86_64];
    let both: &[Arch] = &[X86_64, Aarch64];
    let none: &[Arch] = &[];
    assert_eq!(
        common_arch([("a", arm), ("b", arm)], Some(X86_64)),
        Ok(Aarch64)
    );
    assert_eq!(
        common_arch([("a", none), ("b", arm)], Some(X86_64)),
        Ok(Aarch64)
    );
    assert_eq!(common_arch([("a", none)], Some(X86_64)), Ok(X86_64));
    assert_eq!(
        common_arch([("a", both), ("b", arm)], Some(X86_64)),
        Ok(Aarch64)
    );
    assert_eq!(common_arch([("a", both)], Some(Aarch64)), Ok(Aarch64));
    assert_eq!(common_arch([("a", arm)], None), Ok(Aarch64));
    assert_eq!(
        common_arch([("a", x86), ("b.json", arm)], Some(X86_64))
            .unwrap_err()
            .to_string(),
        "a is for x86_64 and b.json for aarch64: profiles of different architectures cannot be merged"
    );
    assert!(common_arch([("a", none)], None).is_err());
}

#[test]
fn explain_says_what_a_permissive_profile_is() {
    let p = Profile {
        permissive: true,
        ..profile(&["read"], &[])
    };
    let host = crate::profile::moby::Host {
        arch: Arch::X86_64,
        kernel: crate::privileges::KernelVersion { major: 6, minor: 1 },
    };
    let e = crate::profiles::explain(&p, host, "allow.json", None).unwrap();
    assert!(
        e.contains("this profile allows every call not listed"),
        "{e}"
    );
    let e = crate::profiles::explain(&profile(&["read"], &[]), host, "x", None).unwrap();
    assert!(!e.contains("not listed"), "{e}");
}
