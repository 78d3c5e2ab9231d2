//! Pure: the Security Profiles Operator's `SeccompProfile` resource (v1beta1). Its spec is the
//! OCI object without `defaultErrnoRet` (the CRD has none; EPERM is the default anyway). The CRD
//! requires only `defaultAction`; `disabled` (v0.8.4 to v0.10) became `state` in v1.0.0, so
//! neither is written: a resource without them validates from v0.8 to v1.0 and is enabled.

use serde::{Deserialize, Serialize};

use super::{arch_list, defaults, nullable, read, rules, Action, Lenient, Read, Rule, RuleView};
use crate::profile::formats::{FormatError, Profile};
use crate::syscalls::Arch;

pub const SPO_API_VERSION: &str = "security-profiles-operator.x-k8s.io/v1beta1";
pub const SPO_KIND: &str = "SeccompProfile";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: Metadata,
    pub spec: SeccompProfileSpec,
}

/// The part of Kubernetes' `ObjectMeta` we write; the rest is ignored when read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfileSpec {
    /// A profile of the same namespace (or `oci://` artifact) unioned into this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_profile_name: Option<String>,
    pub default_action: Lenient<Action>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub architectures: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub syscalls: Vec<Rule>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<String>,
}

impl SeccompProfile {
    /// The resource for `p`; `name` (a container's) is made a valid Kubernetes object name.
    pub fn from_profile(arch: Arch, name: &str, p: &Profile) -> Self {
        Self {
            api_version: SPO_API_VERSION.into(),
            kind: SPO_KIND.into(),
            metadata: Metadata {
                name: kube_name(name),
            },
            spec: SeccompProfileSpec {
                base_profile_name: None,
                default_action: defaults(p).0.into(),
                architectures: arch_list(arch),
                listener_path: None,
                listener_metadata: None,
                syscalls: rules(arch, p).into_iter().map(|(r, _)| r).collect(),
                flags: vec![],
            },
        }
    }

    /// What the profile allows (its base profile, if any, is not read).
    pub fn to_profile(&self, host: Arch) -> Result<Read, FormatError> {
        read(
            &self.spec.default_action,
            self.spec.syscalls.iter().map(RuleView::from),
            "spec.",
            host,
        )
    }
}

/// A valid Kubernetes object name (RFC 1123 subdomain) from a container name.
pub fn kube_name(name: &str) -> String {
    let mut out: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out = out
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    out.truncate(253);
    if out.is_empty() {
        "profile".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::profile::args::condition;

    #[test]
    fn reads_a_resource_as_the_api_server_returns_it() {
        // Zero values omitted by the operator's Go types, and fields we do not write.
        let doc: SeccompProfile = serde_json::from_value(json!({
            "apiVersion": SPO_API_VERSION,
            "kind": "SeccompProfile",
            "metadata": { "name": "web", "namespace": "default", "uid": "1234" },
            "spec": {
                "defaultAction": "SCMP_ACT_LOG",
                "baseProfileName": "runc-v1.1.0",
                "syscalls": [
                    { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{ "index": 0, "op": "SCMP_CMP_EQ" }] },
                    { "names": ["read"], "action": "SCMP_ACT_ALLOW" }
                ]
            },
            "status": { "status": "Installed", "localhostProfile": "operator/default/web.json" }
        }))
        .unwrap();
        assert_eq!(doc.spec.base_profile_name.as_deref(), Some("runc-v1.1.0"));
        let p = doc.to_profile(Arch::X86_64).unwrap().profile;
        assert!(p.complain);
        assert_eq!(
            p.conditions["personality"],
            [condition(0, 0)].into_iter().collect()
        );
    }

    #[test]
    fn kube_names() {
        assert_eq!(kube_name("/Web_1"), "web-1");
        assert_eq!(kube_name("a.b-c"), "a.b-c");
        assert_eq!(kube_name("___"), "profile");
        assert_eq!(kube_name(&"x".repeat(300)).len(), 253);
    }
}
