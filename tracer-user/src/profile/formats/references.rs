//! Every format checked against the references themselves, vendored in tests/reference: the
//! runtime-spec JSON schema (`linux.seccomp`, for OCI and the kubelet file), the same with
//! moby's extra fields (Docker), and the Security Profiles Operator's `SeccompProfile` CRD of
//! v0.10.1 and v1.0.0 (the resource). Strictly: every object schema that declares properties
//! and says nothing of others gets `additionalProperties: false`, so an undeclared field (one
//! an API server would prune, or a runtime ignore) fails.

use serde_json::{json, Map, Value};

use super::*;
use crate::profile::args::{condition, ArgCmp, CmpOp};
use crate::record::sink::Rendered;

const CONFIG_LINUX: &str = include_str!("../../../tests/reference/runtime-spec/config-linux.json");
const DEFS_LINUX: &str = include_str!("../../../tests/reference/runtime-spec/defs-linux.json");
const DEFS: &str = include_str!("../../../tests/reference/runtime-spec/defs.json");
const CRD_V0_10_1: &str =
    include_str!("../../../tests/reference/security-profiles-operator/seccompprofile-v0.10.1.yaml");
const CRD_V1_0_0: &str =
    include_str!("../../../tests/reference/security-profiles-operator/seccompprofile-v1.0.0.yaml");

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// `schema` with every `$ref` (`defs-linux.json#/definitions/X`, `defs.json#/...`, or `#/...`
/// within `file`) replaced by what it points to, so one schema stands alone.
fn inline(schema: &Value, file: &str) -> Value {
    match schema {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                let (target, pointer) = r.split_once('#').unwrap();
                let target = if target.is_empty() { file } else { target };
                let doc = match target {
                    "defs-linux.json" => json(DEFS_LINUX),
                    "defs.json" => json(DEFS),
                    other => panic!("unexpected $ref to {other}"),
                };
                let found = doc.pointer(pointer).unwrap_or_else(|| panic!("{r}"));
                return inline(found, target);
            }
            Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), inline(v, file)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| inline(v, file)).collect()),
        other => other.clone(),
    }
}

/// `schema` made strict: `additionalProperties: false` on every object schema that declares
/// `properties` and not `additionalProperties`; the CRD's `format: int32/int64` as bounds (the
/// API server enforces them; JSON schema validators ignore unknown formats).
fn strict(schema: &Value) -> Value {
    match schema {
        Value::Object(o) => {
            let mut out: Map<String, Value> =
                o.iter().map(|(k, v)| (k.clone(), strict(v))).collect();
            if o.contains_key("properties") && !o.contains_key("additionalProperties") {
                out.insert("additionalProperties".into(), json!(false));
            }
            match o.get("format").and_then(Value::as_str) {
                Some("int64") => {
                    out.insert("maximum".into(), json!(i64::MAX));
                }
                Some("int32") => {
                    out.insert("maximum".into(), json!(i32::MAX));
                }
                _ => {}
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(strict).collect()),
        other => other.clone(),
    }
}

/// runtime-spec's `linux.seccomp` (config-linux.json), standing alone.
fn oci_schema() -> Value {
    let config = json(CONFIG_LINUX);
    inline(
        &config["linux"]["properties"]["seccomp"],
        "config-linux.json",
    )
}

/// runtime-spec's `linux.seccomp` with the fields moby's `Seccomp` and `Syscall` add
/// (profiles/seccomp/seccomp.go): `archMap`, and a rule's `name`, `comment`, `includes`,
/// `excludes` (moby's `Filter`). Nothing else: what we write must be in one or the other.
fn docker_schema() -> Value {
    let mut s = oci_schema();
    let arch = s["properties"]["architectures"]["items"].clone();
    s["properties"]["archMap"] = json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "architecture": arch,
                "subArchitectures": { "type": "array", "items": arch },
            },
            "required": ["architecture"],
        },
    });
    let filter = json!({
        "type": "object",
        "properties": {
            "caps": { "type": "array", "items": { "type": "string" } },
            "arches": { "type": "array", "items": { "type": "string" } },
            "minKernel": { "type": "string" },
        },
    });
    let rule = &mut s["properties"]["syscalls"]["items"]["properties"];
    rule["name"] = json!({ "type": "string" });
    rule["comment"] = json!({ "type": "string" });
    rule["includes"] = filter.clone();
    rule["excludes"] = filter;
    s
}

/// The `openAPIV3Schema` of the CRD `yaml` for API version `version`.
fn crd_schema(yaml: &str, version: &str) -> Value {
    let crd: Value = serde_yaml_ng::from_str(yaml).unwrap();
    let v = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("no {version}"));
    assert_eq!(v["served"], true, "{version} not served");
    v["schema"]["openAPIV3Schema"].clone()
}

/// (what, strict schema) for every format: the resource against both CRDs.
fn schemas() -> Vec<(&'static str, Format, Value)> {
    let version = SPO_API_VERSION.rsplit('/').next().unwrap();
    vec![
        (
            "runtime-spec linux.seccomp",
            Format::Oci,
            strict(&oci_schema()),
        ),
        (
            "runtime-spec + moby",
            Format::Docker,
            strict(&docker_schema()),
        ),
        (
            "SPO CRD v0.10.1",
            Format::Kubernetes,
            strict(&crd_schema(CRD_V0_10_1, version)),
        ),
        (
            "SPO CRD v1.0.0",
            Format::Kubernetes,
            strict(&crd_schema(CRD_V1_0_0, version)),
        ),
    ]
}

/// Errors of `doc` against `schema`, one line each.
fn errors(schema: &Value, doc: &Value) -> Vec<String> {
    let v = jsonschema::draft4::new(schema).unwrap();
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn assert_valid(what: &str, schema: &Value, doc: &Value) {
    let e = errors(schema, doc);
    assert!(e.is_empty(), "{what}: {e:#?}\n{doc:#}");
}

/// Profiles that exercise every part of a document: plain, refused, argument rules (several
/// comparisons, values past 32 bits), conditional-only, refused-only, empty, complain.
fn profiles() -> Vec<Profile> {
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let mut args = Profile {
        allowed: names(&["read", "socket", "personality", "clone", "futex", "mbind"]),
        refused: names(&["mbind"]),
        ..Default::default()
    };
    let cmp = |index, op, value, value_two| ArgCmp {
        index,
        op,
        value,
        value_two,
    };
    args.conditions = [
        ("socket", [condition(1, 1), condition(1, 10)].into()),
        ("personality", [condition(0, 0xffff_ffff)].into()),
        ("clone", [condition(2, 0x2000_0000)].into()),
        (
            "futex",
            [vec![
                cmp(0, CmpOp::Ne, 0, 0),
                cmp(1, CmpOp::MaskedEq, u64::MAX >> 1, 7),
            ]]
            .into(),
        ),
    ]
    .into_iter()
    .map(|(n, c)| (n.to_string(), c))
    .collect();
    let conditional_only = Profile {
        allowed: names(&["socket"]),
        conditions: [("socket".to_string(), [condition(1, 2)].into())].into(),
        ..Default::default()
    };
    let refused_only = Profile {
        allowed: names(&["mbind"]),
        refused: names(&["mbind"]),
        ..Default::default()
    };
    let mut all = vec![args, conditional_only, refused_only, Profile::default()];
    let complain: Vec<Profile> = all
        .iter()
        .map(|p| Profile {
            complain: true,
            ..p.clone()
        })
        .collect();
    all.extend(complain);
    let merged = merge(all.iter());
    all.push(merged);
    all
}

#[test]
fn every_format_validates_strictly_against_the_references() {
    let schemas = schemas();
    for p in profiles() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            for (what, format, schema) in &schemas {
                let r = Rendered::new(*format, arch, "Web_1", &p);
                assert_valid(what, schema, &r.doc);
                if let Some(kubelet) = &r.kubelet {
                    assert_valid("kubelet file (runtime-spec)", &schemas[0].2, kubelet);
                }
            }
        }
    }
}

#[test]
fn the_goldens_validate_against_the_references() {
    for (_, _, f, golden) in super::tests::GOLDENS {
        let doc: Value = serde_json::from_str(golden).unwrap();
        for (what, format, schema) in schemas() {
            if format == f {
                assert_valid(what, &schema, &doc);
            }
        }
    }
}

#[test]
fn the_checks_can_fail() {
    let p = &profiles()[0];
    for (what, format, schema) in schemas() {
        let mut doc = render(format, Arch::X86_64, "web", p);
        // An undeclared field, in the body and in a rule; a rule naming nothing (only
        // runtime-spec and the v1.0.0 CRD say a rule names at least one call).
        let body = match format {
            Format::Kubernetes => &mut doc["spec"],
            _ => &mut doc,
        };
        body["bogus"] = json!(false);
        body["syscalls"][0]["note"] = json!("x");
        body["syscalls"][1]["names"] = json!([]);
        let expected = if what.contains("v0.10.1") { 2 } else { 3 };
        let e = errors(&schema, &doc);
        assert_eq!(e.len(), expected, "{what}: {e:#?}");
    }
    // A value past int64, which the API server refuses.
    let mut doc = render(Format::Kubernetes, Arch::X86_64, "web", p);
    let rules = doc["spec"]["syscalls"].as_array_mut().unwrap();
    let with_args = rules.iter_mut().find(|r| r.get("args").is_some()).unwrap();
    with_args["args"][0]["value"] = json!(u64::MAX);
    for (what, _, schema) in &schemas()[2..] {
        assert_eq!(errors(schema, &doc).len(), 1, "{what}");
    }
}
