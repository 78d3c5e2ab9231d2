//! Pure: healing an enforced profile: the profile in force plus the calls it refused, allowed
//! whatever their arguments (the kernel tells which call was refused, not with which values).

use serde_json::Value;
use thiserror::Error;

use super::formats::{self, Format, FormatError, Profile};
use crate::syscalls::Arch;

/// The profile in force, and healed.
#[derive(Clone, Debug, PartialEq)]
pub struct Healed {
    /// The format the profile in force was written in.
    pub format: Format,
    pub before: Profile,
    pub after: Profile,
    /// The calls it allows now, sorted.
    pub added: Vec<String>,
}

#[derive(Debug, Error)]
pub enum HealError {
    #[error("the profile in force is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the profile in force cannot be read ({0}); allow {1} in it by hand")]
    Format(FormatError, String),
}

/// `in_force` (a profile document, as the engine holds it) allowing every call of `refused`
/// too. A call it allowed only for some argument values is allowed for all.
pub fn heal(in_force: &str, arch: Arch, refused: &[&str]) -> Result<Healed, HealError> {
    let doc: Value = serde_json::from_str(in_force)?;
    let parsed =
        formats::parse(&doc, arch).map_err(|e| HealError::Format(e, refused.join(", ")))?;
    let before = parsed.profile;
    let mut after = before.clone();
    let mut added = Vec::new();
    for &name in refused {
        let unconditional = after.allowed.contains(name) && !after.conditions.contains_key(name);
        if unconditional {
            continue;
        }
        after.allowed.insert(name.to_string());
        after.conditions.remove(name);
        after.refused.insert(name.to_string());
        added.push(name.to_string());
    }
    added.sort();
    added.dedup();
    Ok(Healed {
        format: parsed.format,
        before,
        after,
        added,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::formats::render;

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
        assert_eq!(h.format, Format::Docker);
        assert_eq!(h.added, ["mbind"]);
        assert_eq!(
            h.after.allowed,
            ["mbind", "read", "write"].map(String::from).into()
        );
        assert_eq!(h.before.allowed.len(), 2);
        // Rendered again and read back, it allows the same.
        let again = render(h.format, Arch::X86_64, "web", &h.after);
        let back = formats::parse(&again, Arch::X86_64).unwrap().profile;
        assert_eq!(back.allowed, h.after.allowed);
    }

    #[test]
    fn a_call_refused_for_its_arguments_is_allowed_for_all() {
        let mut p = profile(&["socket"]);
        let doc = render(Format::Docker, Arch::X86_64, "web", &p);
        let mut v = doc.clone();
        // Allowed only for AF_INET (2) in the profile in force.
        let rules = v["syscalls"].as_array_mut().unwrap();
        rules[0]["args"] = serde_json::json!([{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]);
        let h = heal(&v.to_string(), Arch::X86_64, &["socket"]).unwrap();
        assert!(!h.before.conditions.is_empty(), "{:?}", h.before);
        assert!(h.after.conditions.is_empty());
        assert_eq!(h.added, ["socket"]);
        p.conditions.clear();
        assert_eq!(h.after.allowed, p.allowed);
    }

    #[test]
    fn what_cannot_be_read_is_said_with_the_calls_to_add() {
        let e = heal("{", Arch::X86_64, &["mbind"]).unwrap_err().to_string();
        assert!(e.contains("not JSON"), "{e}");
        let e = heal(r#"{"syscalls": []}"#, Arch::X86_64, &["mbind", "getcpu"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow mbind, getcpu in it by hand"), "{e}");
    }
}
