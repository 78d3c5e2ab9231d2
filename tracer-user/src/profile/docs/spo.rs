//! Pure: the Security Profiles Operator's `SeccompProfile` resource (v1beta1). Its spec is the
//! OCI object without `defaultErrnoRet` (the CRD has none; EPERM is the default anyway), with a
//! `disabled` flag the CRD requires.

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
    /// Required by the CRD.
    #[serde(default)]
    pub disabled: bool,
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
                disabled: false,
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
    use serde_json::{json, Value};

    use super::*;
    use crate::profile::args::condition;

    /// The Security Profiles Operator's `SeccompProfile` v1beta1 CRD schema (controller-gen
    /// v0.13, deploy/base-crds/crds/seccompprofile.yaml), restated with the constraints that
    /// apply to what we write: types, enums, required fields, minimums; fields it does not
    /// declare count as errors here (the API server would silently prune them).
    fn spo_schema() -> Value {
        let actions = json!([
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_TRAP",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_LOG",
            "SCMP_ACT_NOTIFY"
        ]);
        let arches = json!([
            "SCMP_ARCH_NATIVE",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_ARM",
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_MIPS",
            "SCMP_ARCH_MIPS64",
            "SCMP_ARCH_MIPS64N32",
            "SCMP_ARCH_MIPSEL",
            "SCMP_ARCH_MIPSEL64",
            "SCMP_ARCH_MIPSEL64N32",
            "SCMP_ARCH_PPC",
            "SCMP_ARCH_PPC64",
            "SCMP_ARCH_PPC64LE",
            "SCMP_ARCH_S390",
            "SCMP_ARCH_S390X",
            "SCMP_ARCH_PARISC",
            "SCMP_ARCH_PARISC64",
            "SCMP_ARCH_RISCV64"
        ]);
        let ops = json!([
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_MASKED_EQ"
        ]);
        let int64 = json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX });
        json!({
            "type": "object",
            "properties": {
                "apiVersion": { "type": "string" },
                "kind": { "type": "string" },
                "metadata": { "type": "object" },
                "spec": {
                    "type": "object",
                    "required": ["defaultAction", "disabled"],
                    "properties": {
                        "architectures": { "type": "array", "items": { "type": "string", "enum": arches } },
                        "baseProfileName": { "type": "string" },
                        "defaultAction": { "type": "string", "enum": actions },
                        "disabled": { "type": "boolean" },
                        "flags": { "type": "array", "items": { "type": "string" } },
                        "listenerMetadata": { "type": "string" },
                        "listenerPath": { "type": "string" },
                        "syscalls": { "type": "array", "items": {
                            "type": "object",
                            "required": ["action", "names"],
                            "properties": {
                                "action": { "type": "string", "enum": actions },
                                "errnoRet": { "type": "integer", "minimum": 0 },
                                "names": { "type": "array", "items": { "type": "string" } },
                                "args": { "type": "array", "maxItems": 6, "items": {
                                    "type": "object",
                                    "required": ["index", "op"],
                                    "properties": {
                                        "index": { "type": "integer", "minimum": 0 },
                                        "op": { "type": "string", "enum": ops },
                                        "value": int64,
                                        "valueTwo": int64,
                                    },
                                } },
                            },
                        } },
                    },
                },
            },
        })
    }

    /// Errors of `v` against the schema subset above, as JSON paths.
    fn check(schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
        let ok = match schema["type"].as_str() {
            Some("object") => v.is_object(),
            Some("array") => v.is_array(),
            Some("string") => v.is_string(),
            Some("boolean") => v.is_boolean(),
            Some("integer") => v.is_u64() || v.is_i64(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{path}: not {}", schema["type"]));
            return;
        }
        if let Some(e) = schema["enum"].as_array() {
            if !e.contains(v) {
                errors.push(format!("{path}: {v} not allowed"));
            }
        }
        if let Some(min) = schema["minimum"].as_i64() {
            if v.as_i64().is_none_or(|x| x < min) {
                errors.push(format!("{path}: {v} below {min} or beyond int64"));
            }
        }
        if let (Some(max), Some(a)) = (schema["maxItems"].as_u64(), v.as_array()) {
            if a.len() as u64 > max {
                errors.push(format!("{path}: more than {max} items"));
            }
        }
        for r in schema["required"].as_array().into_iter().flatten() {
            if v.get(r.as_str().unwrap_or_default()).is_none() {
                errors.push(format!("{path}: {r} missing"));
            }
        }
        if let (Some(props), Some(obj)) = (schema["properties"].as_object(), v.as_object()) {
            for (k, val) in obj {
                match props.get(k) {
                    Some(s) => check(s, val, &format!("{path}.{k}"), errors),
                    None => errors.push(format!("{path}.{k}: not in the schema")),
                }
            }
        }
        if let Some(a) = v.as_array() {
            for (i, item) in a.iter().enumerate() {
                check(&schema["items"], item, &format!("{path}[{i}]"), errors);
            }
        }
    }

    #[test]
    fn kubernetes_resource_matches_the_operators_crd_schema() {
        let mut p = Profile {
            allowed: ["read".into(), "socket".into(), "personality".into()].into(),
            conditions: [
                ("socket".into(), [condition(1, 1), condition(1, 10)].into()),
                ("personality".into(), [condition(0, 0xffff_ffff)].into()),
            ]
            .into(),
            refused: ["read".into()].into(),
            complain: false,
        };
        let schema = spo_schema();
        for arch in [Arch::X86_64, Arch::Aarch64] {
            for complain in [false, true] {
                p.complain = complain;
                let doc = SeccompProfile::from_profile(arch, "Web_1", &p);
                let doc = serde_json::to_value(doc).unwrap();
                let mut errors = Vec::new();
                check(&schema, &doc, "", &mut errors);
                assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
            }
        }
        // The check itself can fail.
        let mut errors = Vec::new();
        let bad = json!({ "spec": { "defaultAction": "SCMP_ACT_NOPE", "defaultErrnoRet": 1 } });
        check(&schema, &bad, "", &mut errors);
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

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
        assert!(!doc.spec.disabled);
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
