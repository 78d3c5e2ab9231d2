//! Pure: healing an enforced profile: the document in force, as the engine holds it, changed
//! only so that the calls it refused are allowed whatever their arguments (the kernel tells
//! which call was refused, not with which values). Everything else in it stays as it was: its
//! default action, architectures, flags, other rules and their conditions (capabilities,
//! kernel versions), whatever form it is in (Docker's, OCI's `linux.seccomp`, a runtime spec,
//! the operator's resource).

use serde_json::{json, Value};
use thiserror::Error;

use super::formats::{self, Profile, ENOSYS_FALLBACK};
use crate::syscalls::Arch;

/// The profile in force, healed.
#[derive(Clone, Debug, PartialEq)]
pub struct Healed {
    /// The document, in the form it was in force.
    pub doc: Value,
    /// The calls it allows now that it refused, sorted.
    pub added: Vec<String>,
    /// Both as this tool reads them, for the difference; `None` when it cannot read them
    /// (rules it does not model): `added` says what changed.
    pub profiles: Option<(Profile, Profile)>,
}

#[derive(Debug, Error)]
pub enum HealError {
    #[error("the profile in force is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "the profile in force has no `syscalls` list or `defaultAction`; allow {0} in it by hand"
    )]
    Shape(String),
}

const ALLOW: &str = "SCMP_ACT_ALLOW";

/// The seccomp object of `doc`: itself, `linux.seccomp` (a runtime spec) or `spec` (the
/// operator's resource).
fn body_mut(doc: &mut Value) -> Option<&mut Value> {
    if doc.pointer("/linux/seccomp").is_some_and(Value::is_object) {
        return doc.pointer_mut("/linux/seccomp");
    }
    if doc.get("kind").and_then(Value::as_str) == Some("SeccompProfile") {
        return doc.get_mut("spec");
    }
    Some(doc)
}

/// `in_force` allowing every call of `refused` too. Calls answered ENOSYS on purpose (clone3,
/// so that libc uses clone, whose flags seccomp can check) are left as they are. In each rule
/// that does not allow, the healed calls are taken out of its `names` (a rule left with none is
/// dropped); one unconditional allow rule for them is added, unless the default action already
/// allows. Rules that allow them under conditions stay: the new rule allows them anyway.
pub fn heal(in_force: &str, arch: Arch, refused: &[&str]) -> Result<Healed, HealError> {
    let original: Value = serde_json::from_str(in_force)?;
    let read = |v: &Value| formats::parse(v, arch).ok().map(|p| p.profile);
    let before = read(&original);
    // A call it allows whatever the arguments was refused by another filter: nothing to heal.
    let allowed = |n: &str| {
        before.as_ref().is_some_and(|p| {
            p.allowed.contains(n) && !p.conditions.contains_key(n) && !p.permissive
        })
    };
    let mut doc = original.clone();
    let mut added: Vec<String> = refused
        .iter()
        .filter(|n| !ENOSYS_FALLBACK.contains(n) && !allowed(n))
        .map(|n| n.to_string())
        .collect();
    added.sort();
    added.dedup();
    let shape = || HealError::Shape(added.join(", "));
    let body = body_mut(&mut doc).ok_or_else(shape)?;
    let default_allows = match body.get("defaultAction").and_then(Value::as_str) {
        Some(a) => a == ALLOW,
        None => return Err(shape()),
    };
    if !added.is_empty() {
        let rules = match body.get_mut("syscalls") {
            Some(Value::Array(r)) => r,
            Some(Value::Null) | None => {
                body["syscalls"] = json!([]);
                body["syscalls"].as_array_mut().ok_or_else(shape)?
            }
            Some(_) => return Err(shape()),
        };
        for rule in rules.iter_mut() {
            if rule.get("action").and_then(Value::as_str) == Some(ALLOW) {
                continue;
            }
            if let Some(Value::Array(names)) = rule.get_mut("names") {
                names.retain(|n| !n.as_str().is_some_and(|n| added.iter().any(|a| a == n)));
            }
        }
        rules.retain(|r| !matches!(r.get("names"), Some(Value::Array(n)) if n.is_empty()));
        if !default_allows {
            rules.push(json!({ "names": added, "action": ALLOW }));
        }
    }
    let profiles = before.zip(read(&doc));
    Ok(Healed {
        doc,
        added,
        profiles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::formats::{render, Format};

    fn profile(names: &[&str]) -> Profile {
        Profile {
            allowed: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_refused_calls_are_added_and_nothing_else_changes() {
        let doc = render(
            Format::Docker,
            Arch::X86_64,
            "web",
            &profile(&["read", "write"]),
        );
        let h = heal(&doc.to_string(), Arch::X86_64, &["mbind", "read"]).unwrap();
        assert_eq!(
            h.added,
            ["mbind"],
            "read was allowed: refused by another filter"
        );
        let (before, after) = h.profiles.unwrap();
        assert_eq!(
            after.allowed,
            ["mbind", "read", "write"].map(String::from).into()
        );
        assert_eq!(before.allowed.len(), 2);
        // Everything else of the document is as it was.
        let mut rest = h.doc.clone();
        rest["syscalls"].as_array_mut().unwrap().pop();
        assert_eq!(rest, doc);
    }

    #[test]
    fn a_call_refused_for_its_arguments_is_allowed_for_all() {
        let mut v = render(Format::Docker, Arch::X86_64, "web", &profile(&["socket"]));
        v["syscalls"][0]["args"] = json!([{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]);
        let h = heal(&v.to_string(), Arch::X86_64, &["socket"]).unwrap();
        let (before, after) = h.profiles.unwrap();
        assert!(!before.conditions.is_empty(), "{before:?}");
        assert!(after.conditions.is_empty(), "{after:?}");
        assert_eq!(h.added, ["socket"]);
    }

    #[test]
    fn clone3_answered_enosys_on_purpose_is_not_healed() {
        let doc = render(Format::Docker, Arch::X86_64, "web", &profile(&["clone"]));
        let h = heal(&doc.to_string(), Arch::X86_64, &["clone3"]).unwrap();
        assert!(h.added.is_empty());
        assert_eq!(h.doc, doc);
    }

    /// moby's default profile: rules with `includes` (capabilities, kernel versions) that this
    /// tool's own reading does not keep all stay in the healed document.
    #[test]
    fn dockers_default_keeps_its_conditional_rules() {
        let moby: Value =
            serde_json::from_str(include_str!("../../data/moby-default-seccomp.json")).unwrap();
        let h = heal(&moby.to_string(), Arch::X86_64, &["mbind", "ptrace"]).unwrap();
        let rules = h.doc["syscalls"].as_array().unwrap();
        let before = moby["syscalls"].as_array().unwrap();
        assert_eq!(rules.len(), before.len() + 1, "one rule added, none lost");
        assert_eq!(
            rules.last().unwrap(),
            &json!({"names": ["mbind", "ptrace"], "action": ALLOW})
        );
        for key in ["defaultAction", "defaultErrnoRet", "archMap"] {
            assert_eq!(h.doc[key], moby[key], "{key}");
        }
        let arch_prctl = |v: &Value| {
            v["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| {
                    r["names"]
                        .as_array()
                        .unwrap()
                        .contains(&json!("arch_prctl"))
                })
                .count()
        };
        assert_eq!(arch_prctl(&h.doc), arch_prctl(&moby));
    }

    #[test]
    fn a_deny_list_profile_only_stops_denying_the_healed_calls() {
        let deny = json!({
            "defaultAction": ALLOW,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["mount", "ptrace", "bpf"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"}
            ]
        });
        let h = heal(&deny.to_string(), Arch::X86_64, &["ptrace"]).unwrap();
        assert_eq!(
            h.doc,
            json!({
                "defaultAction": ALLOW,
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["mount", "bpf"], "action": "SCMP_ACT_ERRNO"}]
            })
        );
    }

    #[test]
    fn runtime_specs_and_resources_are_healed_where_their_filter_is() {
        let oci = render(Format::Oci, Arch::X86_64, "web", &profile(&["read"]));
        let spec = json!({"ociVersion": "1.0.2", "linux": {"seccomp": oci}});
        let h = heal(&spec.to_string(), Arch::X86_64, &["mbind"]).unwrap();
        assert_eq!(h.doc["ociVersion"], "1.0.2");
        let last = h.doc["linux"]["seccomp"]["syscalls"]
            .as_array()
            .unwrap()
            .last()
            .cloned();
        assert_eq!(last, Some(json!({"names": ["mbind"], "action": ALLOW})));
        let spo = render(Format::Kubernetes, Arch::X86_64, "web", &profile(&["read"]));
        let h = heal(&spo.to_string(), Arch::X86_64, &["mbind"]).unwrap();
        let names = h.doc["spec"]["syscalls"]
            .as_array()
            .unwrap()
            .last()
            .cloned();
        assert_eq!(names, Some(json!({"names": ["mbind"], "action": ALLOW})));
    }

    #[test]
    fn what_cannot_be_read_is_said_with_the_calls_to_add() {
        let e = heal("{", Arch::X86_64, &["mbind"]).unwrap_err().to_string();
        assert!(e.contains("not JSON"), "{e}");
        let e = heal(r#"{"syscalls": []}"#, Arch::X86_64, &["mbind", "getcpu"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow getcpu, mbind in it by hand"), "{e}");
    }
}
