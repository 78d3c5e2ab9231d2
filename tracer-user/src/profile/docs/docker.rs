//! Pure: Docker's (moby's) seccomp profile, `docker run --security-opt seccomp=FILE` (CRI-O
//! reads it too; containerd has no `archMap`, so the kubelet file is written in the OCI form).
//! moby's `Seccomp` extends the OCI `LinuxSeccomp` with `archMap`; its `Syscall` extends
//! `LinuxSyscall` with the older single `name`, a `comment`, and `includes`/`excludes`
//! conditions on the host.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{arch_list, defaults, nullable, read, rules, Action, Lenient, Read, Rule, RuleView};
use crate::profile::formats::{FormatError, Profile};
use crate::syscalls::Arch;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerProfile {
    pub default_action: Lenient<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// The native architecture and its compat ones; Docker picks the entry of the host's.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arch_map: Vec<ArchMap>,
    /// The older flat list (Docker refuses a profile with both).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub architectures: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub syscalls: Vec<DockerRule>,
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default, deserialize_with = "nullable")]
    pub sub_architectures: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerRule {
    #[serde(flatten)]
    pub rule: Rule,
    /// Deprecated in moby for `names`, still read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Lenient<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The rule applies only when all of these hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<Filter>,
    /// The rule applies unless one of these holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<Filter>,
}

/// A condition on the container and the host (moby's `Filter`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub caps: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arches: Vec<String>,
    /// `"<kernel>.<major>"`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
    /// Fields of later moby versions: a filter we do not understand counts as a condition.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Filter {
    /// No condition at all (moby skips empty lists).
    pub fn is_empty(&self) -> bool {
        self.caps.is_empty()
            && self.arches.is_empty()
            && self.min_kernel.is_none()
            && self.other.is_empty()
    }
}

/// Fields only Docker's format has: a document with any of them is read as Docker's even without
/// `archMap` (older profiles list `architectures`).
pub(in crate::profile) fn looks_like(doc: &Value) -> bool {
    const RULE_FIELDS: [&str; 4] = ["name", "comment", "includes", "excludes"];
    doc.get("archMap").is_some()
        || doc["syscalls"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| RULE_FIELDS.iter().any(|f| r.get(f).is_some()))
}

impl DockerProfile {
    pub fn from_profile(arch: Arch, p: &Profile) -> Self {
        let (default_action, default_errno_ret) = defaults(p);
        let mut arches = arch_list(arch).into_iter();
        let architecture = arches.next().unwrap_or_default();
        Self {
            default_action: default_action.into(),
            default_errno_ret,
            arch_map: vec![ArchMap {
                architecture,
                sub_architectures: arches.collect(),
            }],
            architectures: vec![],
            syscalls: rules(arch, p)
                .into_iter()
                .map(|(rule, comment)| DockerRule {
                    rule,
                    name: None,
                    comment: comment.map(String::from),
                    includes: None,
                    excludes: None,
                })
                .collect(),
            flags: vec![],
            listener_path: None,
            listener_metadata: None,
        }
    }

    /// What the profile allows; rules whose `includes` depend on the host are left out.
    pub fn to_profile(&self, host: Arch) -> Result<Read, FormatError> {
        let rules = self.syscalls.iter().map(|r| RuleView {
            rule: &r.rule,
            name: r.name.as_ref(),
            comment: r.comment.as_deref(),
            host_dependent: r.includes.as_ref().is_some_and(|f| !f.is_empty()),
        });
        read(&self.default_action, rules, "", host)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_what_docker_reads() {
        let doc: DockerProfile = serde_json::from_value(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": null,
            "archMap": [{ "architecture": "SCMP_ARCH_X86_64", "subArchitectures": null }],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "unknownField": { "ignored": true },
            "syscalls": [
                { "names": ["read"], "action": "SCMP_ACT_ALLOW", "args": null,
                  "comment": "", "includes": {}, "excludes": {} },
                { "names": ["bpf"], "action": "SCMP_ACT_ALLOW",
                  "includes": { "caps": ["CAP_SYS_ADMIN"], "minKernel": "5.8" } },
                { "names": ["sync"], "action": "SCMP_ACT_ALLOW", "includes": { "caps": [] } },
                { "names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
                  "includes": { "someday": ["x"] } },
                { "name": "getpid", "action": "SCMP_ACT_ALLOW",
                  "args": [{ "index": 0, "op": "SCMP_CMP_EQ" }] }
            ]
        }))
        .unwrap();
        assert_eq!(doc.arch_map[0].sub_architectures, Vec::<String>::new());
        assert_eq!(doc.flags, ["SECCOMP_FILTER_FLAG_LOG"]);
        let p = doc.to_profile(Arch::X86_64).unwrap().profile;
        // An empty filter is no condition (as in moby); one we do not know is.
        assert_eq!(
            p.allowed.iter().map(String::as_str).collect::<Vec<_>>(),
            ["getpid", "read", "sync"]
        );
        // A comparison without `value` compares with 0 (the operator's Go types omit it).
        assert_eq!(p.conditions["getpid"].first().unwrap()[0].value, 0);
    }

    #[test]
    fn refused_calls_are_marked_by_a_comment() {
        let p = Profile {
            allowed: ["read".into(), "mbind".into()].into(),
            refused: ["mbind".into()].into(),
            ..Default::default()
        };
        let doc = DockerProfile::from_profile(Arch::X86_64, &p);
        assert_eq!(doc.syscalls[0].comment, None);
        assert_eq!(
            doc.syscalls[1].comment.as_deref(),
            Some(super::super::REFUSED_COMMENT)
        );
        assert_eq!(doc.to_profile(Arch::X86_64).unwrap().profile, p);
    }

    #[test]
    fn docker_only_fields_tell_the_format() {
        assert!(looks_like(&json!({ "archMap": [] })));
        assert!(looks_like(
            &json!({ "syscalls": [{ "name": "read", "action": "SCMP_ACT_ALLOW" }] })
        ));
        assert!(looks_like(&json!({ "syscalls": [
            { "names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": { "caps": ["X"] } }
        ] })));
        assert!(!looks_like(
            &json!({ "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [
            { "names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1 }
        ] })
        ));
    }
}
