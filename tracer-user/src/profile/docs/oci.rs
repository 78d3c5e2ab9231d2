//! Pure: the OCI runtime spec's `linux.seccomp` object (`LinuxSeccomp`), for runc, crun and
//! podman `config.json`. No rule comments and a flat architecture list: what the spec defines.

use serde::{Deserialize, Serialize};

use super::{arch_list, defaults, nullable, read, rules, Action, Lenient, Read, Rule, RuleView};
use crate::profile::formats::{FormatError, Profile};
use crate::syscalls::Arch;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxSeccomp {
    pub default_action: Lenient<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub architectures: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub syscalls: Vec<Rule>,
}

impl LinuxSeccomp {
    pub fn from_profile(arch: Arch, p: &Profile) -> Self {
        let (default_action, default_errno_ret) = defaults(p);
        Self {
            default_action: default_action.into(),
            default_errno_ret,
            architectures: arch_list(arch),
            flags: vec![],
            listener_path: None,
            listener_metadata: None,
            syscalls: rules(arch, p).into_iter().map(|(r, _)| r).collect(),
        }
    }

    /// What the profile allows. `at` is where this object is in its document (`linux.seccomp.`
    /// in a `config.json`), for errors.
    pub fn to_profile(&self, at: &str, host: Arch) -> Result<Read, FormatError> {
        read(
            &self.default_action,
            self.syscalls.iter().map(RuleView::from),
            at,
            host,
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn no_comment_and_a_flat_architecture_list() {
        let p = Profile {
            allowed: ["read".into(), "mbind".into()].into(),
            refused: ["mbind".into()].into(),
            ..Default::default()
        };
        let doc = serde_json::to_value(LinuxSeccomp::from_profile(Arch::Aarch64, &p)).unwrap();
        assert_eq!(
            doc["architectures"],
            json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
        assert!(doc.get("archMap").is_none());
        assert!(doc["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("comment").is_none()));
    }

    #[test]
    fn reads_a_runtime_spec_example() {
        // config-linux.md's example: rules other than ALLOW say nothing about what is allowed.
        let doc: LinuxSeccomp = serde_json::from_value(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{ "names": ["getcwd", "chmod"], "action": "SCMP_ACT_ERRNO" }]
        }))
        .unwrap();
        let p = doc.to_profile("", Arch::X86_64).unwrap().profile;
        assert!(p.allowed.is_empty() && p.conditions.is_empty() && !p.complain);
    }
}
