//! Pure: one learned profile rendered for each platform (Docker/moby JSON, OCI runtime-spec
//! `linux.seccomp`, Kubernetes Security Profiles Operator resource), and read back from any
//! of them for merge, diff and explain.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};
use thiserror::Error;

use super::args::{ArgCmp, CmpOp, Condition};
use crate::syscalls::Arch;

/// errno for everything not allowed; Docker's own default (EPERM).
pub const DEFAULT_ERRNO: u32 = 1;
const ENOSYS: u32 = 38;

/// Calls that must fail with ENOSYS rather than EPERM when not allowed, because libc falls back
/// to an older call only on ENOSYS (glibc's pthread_create uses clone3, then clone).
pub const ENOSYS_FALLBACK: &[&str] = &["clone3"];
pub const SPO_API_VERSION: &str = "security-profiles-operator.x-k8s.io/v1beta1";
const REFUSED_COMMENT: &str = "refused by the profile in force while recording";

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// moby JSON for `docker run --security-opt seccomp=FILE` (also what kubelet's
    /// `seccomp/` directory takes through containerd and CRI-O)
    Docker,
    /// OCI runtime-spec `linux.seccomp` object, for runc/crun/podman `config.json`
    Oci,
    /// Security Profiles Operator `SeccompProfile` resource
    Kubernetes,
}

/// What a profile says, independent of its format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// Allowed: unconditionally, or only with the argument values in `conditions`.
    pub allowed: BTreeSet<String>,
    /// Of `allowed`, the calls allowed only when one of these conditions holds.
    pub conditions: BTreeMap<String, BTreeSet<Condition>>,
    /// Of `allowed`, those refused by the profile in force while recording.
    pub refused: BTreeSet<String>,
    /// Log instead of refusing what is not allowed (SCMP_ACT_LOG).
    pub complain: bool,
}

impl Profile {
    /// The profile a composition describes.
    pub fn from_composition(c: &super::Composition, complain: bool) -> Self {
        Self {
            allowed: c.allowed.iter().map(|n| n.to_string()).collect(),
            conditions: c
                .conditions
                .iter()
                .map(|(n, c)| (n.to_string(), c.clone()))
                .collect(),
            refused: c.refused_included.iter().map(|n| n.to_string()).collect(),
            complain,
        }
    }
}

#[derive(Clone, Debug, Error)]
pub enum FormatError {
    #[error("not a seccomp profile: {0}")]
    NotAProfile(&'static str),
}

fn args_json(c: &Condition) -> Value {
    c.iter()
        .map(|a| {
            json!({ "index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op.scmp_name() })
        })
        .collect()
}

fn rules(arch: Arch, p: &Profile) -> Vec<Value> {
    let unconditional = |n: &&String| !p.conditions.contains_key(*n);
    let learned: Vec<&String> = p
        .allowed
        .iter()
        .filter(unconditional)
        .filter(|n| !p.refused.contains(*n))
        .collect();
    let mut rules = vec![json!({ "names": learned, "action": "SCMP_ACT_ALLOW" })];
    let refused: Vec<&String> = p
        .allowed
        .iter()
        .filter(unconditional)
        .filter(|n| p.refused.contains(*n))
        .collect();
    if !refused.is_empty() {
        rules.push(
            json!({ "names": refused, "action": "SCMP_ACT_ALLOW", "comment": REFUSED_COMMENT }),
        );
    }
    for (name, conditions) in &p.conditions {
        if !p.allowed.contains(name) {
            continue;
        }
        for c in conditions {
            let mut rule =
                json!({ "names": [name], "action": "SCMP_ACT_ALLOW", "args": args_json(c) });
            if p.refused.contains(name) {
                rule["comment"] = json!(REFUSED_COMMENT);
            }
            rules.push(rule);
        }
    }
    let fallbacks: Vec<&str> = ENOSYS_FALLBACK
        .iter()
        .copied()
        .filter(|n| !p.allowed.contains(*n) && arch.number(n).is_some())
        .collect();
    if !fallbacks.is_empty() {
        rules.push(json!({ "names": fallbacks, "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS }));
    }
    rules
}

fn defaults(p: &Profile, doc: &mut Map<String, Value>) {
    if p.complain {
        doc.insert("defaultAction".into(), json!("SCMP_ACT_LOG"));
    } else {
        doc.insert("defaultAction".into(), json!("SCMP_ACT_ERRNO"));
        doc.insert("defaultErrnoRet".into(), json!(DEFAULT_ERRNO));
    }
}

fn arch_list(arch: Arch) -> Vec<&'static str> {
    let (main, subs) = arch.docker_arches();
    std::iter::once(main).chain(subs.iter().copied()).collect()
}

/// Architectures as a flat list and rules without comments: what the OCI runtime spec and
/// the operator's resource take.
fn spec_body(arch: Arch, p: &Profile, doc: &mut Map<String, Value>) {
    doc.insert("architectures".into(), json!(arch_list(arch)));
    let mut r = rules(arch, p);
    for rule in &mut r {
        if let Some(o) = rule.as_object_mut() {
            o.remove("comment");
        }
    }
    doc.insert("syscalls".into(), json!(r));
}

/// The document for `format`; `name` names the Kubernetes resource.
pub fn render(format: Format, arch: Arch, name: &str, p: &Profile) -> Value {
    let mut doc = Map::new();
    defaults(p, &mut doc);
    match format {
        Format::Docker => {
            let (main, subs) = arch.docker_arches();
            doc.insert(
                "archMap".into(),
                json!([{ "architecture": main, "subArchitectures": subs }]),
            );
            doc.insert("syscalls".into(), json!(rules(arch, p)));
            Value::Object(doc)
        }
        Format::Oci => {
            spec_body(arch, p, &mut doc);
            Value::Object(doc)
        }
        Format::Kubernetes => {
            spec_body(arch, p, &mut doc);
            // The operator's CRD has no defaultErrnoRet (EPERM is the default anyway) and
            // requires `disabled`.
            doc.remove("defaultErrnoRet");
            doc.insert("disabled".into(), json!(false));
            json!({
                "apiVersion": SPO_API_VERSION,
                "kind": "SeccompProfile",
                "metadata": { "name": kube_name(name) },
                "spec": doc,
            })
        }
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

/// Reads a profile in any of the formats (an OCI `config.json` too).
pub fn parse(doc: &Value) -> Result<(Format, Profile), FormatError> {
    let (format, body) = if doc["kind"] == "SeccompProfile" {
        (Format::Kubernetes, &doc["spec"])
    } else if doc["linux"]["seccomp"].is_object() {
        (Format::Oci, &doc["linux"]["seccomp"])
    } else if doc["archMap"].is_array() {
        (Format::Docker, doc)
    } else if doc["defaultAction"].is_string() {
        (Format::Oci, doc)
    } else {
        return Err(FormatError::NotAProfile("no defaultAction"));
    };
    let default = body["defaultAction"]
        .as_str()
        .ok_or(FormatError::NotAProfile("no defaultAction"))?;
    let mut p = Profile {
        complain: default == "SCMP_ACT_LOG",
        ..Default::default()
    };
    let mut unconditional = BTreeSet::new();
    for rule in body["syscalls"].as_array().into_iter().flatten() {
        // Rules that depend on capabilities or the host do not say what this profile allows.
        if rule["action"] != "SCMP_ACT_ALLOW"
            || rule["includes"].as_object().is_some_and(|o| !o.is_empty())
        {
            continue;
        }
        let condition = parse_args(&rule["args"])?;
        let names = rule["names"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(rule.get("name"))
            .filter_map(Value::as_str)
            .map(String::from);
        for n in names {
            if rule["comment"] == REFUSED_COMMENT {
                p.refused.insert(n.clone());
            }
            match &condition {
                None => {
                    unconditional.insert(n.clone());
                }
                Some(c) => {
                    p.conditions.entry(n.clone()).or_default().insert(c.clone());
                }
            }
            p.allowed.insert(n);
        }
    }
    p.conditions.retain(|n, _| !unconditional.contains(n));
    Ok((format, p))
}

/// A rule's `args`: `None` when empty (the rule is unconditional).
fn parse_args(args: &Value) -> Result<Option<Condition>, FormatError> {
    let Some(list) = args.as_array().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let bad = FormatError::NotAProfile("an argument rule needs index, value and a SCMP_CMP_ op");
    let mut c = Condition::new();
    for a in list {
        let op = a["op"]
            .as_str()
            .and_then(CmpOp::from_scmp)
            .ok_or(bad.clone())?;
        c.push(ArgCmp {
            index: a["index"].as_u64().ok_or(bad.clone())? as u32,
            op,
            value: a["value"].as_u64().ok_or(bad.clone())?,
            value_two: a["valueTwo"].as_u64().unwrap_or(0),
        });
    }
    c.sort();
    Ok(Some(c))
}

/// Union of profiles (replicas, several runs): allowed anywhere is allowed; a call allowed
/// unconditionally anywhere stays unconditional, otherwise its conditions add up.
pub fn merge<'a>(profiles: impl IntoIterator<Item = &'a Profile>) -> Profile {
    let mut out = Profile::default();
    let mut unconditional = BTreeSet::new();
    for p in profiles {
        for n in &p.allowed {
            match p.conditions.get(n) {
                Some(c) => out
                    .conditions
                    .entry(n.clone())
                    .or_default()
                    .extend(c.iter().cloned()),
                None => {
                    unconditional.insert(n.clone());
                }
            }
        }
        out.allowed.extend(p.allowed.iter().cloned());
        out.refused.extend(p.refused.iter().cloned());
        out.complain |= p.complain;
    }
    out.conditions.retain(|n, _| !unconditional.contains(n));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(names: &[&str], refused: &[&str]) -> Profile {
        Profile {
            allowed: names.iter().chain(refused).map(|s| s.to_string()).collect(),
            refused: refused.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn every_format_round_trips() {
        let p = profile(&["read", "write"], &["mbind"]);
        for f in [Format::Docker, Format::Oci, Format::Kubernetes] {
            let doc = render(f, Arch::X86_64, "web", &p);
            let (format, back) = parse(&doc).unwrap();
            assert_eq!(format, f);
            assert_eq!(back.allowed, p.allowed, "{f:?}");
            if f == Format::Docker {
                assert_eq!(back.refused, p.refused);
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
                { "names": ["mbind"], "action": "SCMP_ACT_ALLOW", "includes": { "caps": ["CAP_SYS_NICE"] } },
                { "name": "getpid", "action": "SCMP_ACT_ALLOW" }
            ]
        });
        let (_, p) = parse(&doc).unwrap();
        assert_eq!(
            p.allowed.iter().map(String::as_str).collect::<Vec<_>>(),
            ["getpid", "personality", "read", "write"]
        );
        assert_eq!(p.conditions["personality"].len(), 1);
        assert!(parse(&json!({"x": 1})).is_err());
    }

    #[test]
    fn merge_is_a_union() {
        let m = merge([&profile(&["read"], &[]), &profile(&["write"], &["mbind"])]);
        assert_eq!(m, profile(&["read", "write"], &["mbind"]));
    }

    #[test]
    fn kube_names() {
        assert_eq!(kube_name("/Web_1"), "web-1");
        assert_eq!(kube_name("___"), "profile");
    }

    fn with_socket(families: &[u64]) -> Profile {
        let mut p = profile(&["read", "socket"], &[]);
        p.conditions.insert(
            "socket".into(),
            families
                .iter()
                .map(|&f| super::super::args::condition(1, f))
                .collect(),
        );
        p
    }

    #[test]
    fn argument_rules_round_trip() {
        let p = with_socket(&[1, 10]);
        for f in [Format::Docker, Format::Oci, Format::Kubernetes] {
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
        assert!(
            parse(&json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0}]}]}))
            .is_err()
        );
    }

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
        let mut p = with_socket(&[1, 10]);
        p.allowed.insert("personality".into());
        p.conditions.insert(
            "personality".into(),
            [super::super::args::condition(0, 0xffff_ffff)].into(),
        );
        p.refused.insert("read".into());
        let schema = spo_schema();
        for arch in [Arch::X86_64, Arch::Aarch64] {
            for complain in [false, true] {
                p.complain = complain;
                let doc = render(Format::Kubernetes, arch, "Web_1", &p);
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
}
