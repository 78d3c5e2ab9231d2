//! The DaemonSet in contrib/kubernetes: every document validates against the strict
//! Kubernetes schemas (vendored in tests/data/kubernetes, no undeclared field passes), and it
//! keeps the promises contrib/kubernetes/README.md makes (least capabilities, no API rights,
//! the mounts the daemon needs, a command line the binary takes). No root needed.

use std::{collections::BTreeSet, path::PathBuf};

use clap::Parser;
use serde_json::Value;

const SCHEMAS: &str = "data/kubernetes/v1.37.0-strict";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn documents() -> Vec<Value> {
    let path = repo().join("contrib/kubernetes/seccomp-tracer.yaml");
    let text = std::fs::read_to_string(&path).expect("the manifest is readable");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            let v: serde_yaml_ng::Value =
                serde::Deserialize::deserialize(d).expect("the manifest is YAML");
            serde_json::to_value(v).expect("YAML a JSON value can hold")
        })
        .collect()
}

fn schema_file(kind: &str, api_version: &str) -> String {
    let group = api_version.split('/').rev().nth(1);
    let version = api_version.rsplit('/').next().unwrap_or(api_version);
    match group {
        Some(g) => format!("{}-{}-{version}.json", kind.to_lowercase(), g),
        None => format!("{}-{version}.json", kind.to_lowercase()),
    }
}

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(SCHEMAS)
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no schema {}: {e}", path.display()));
    serde_json::from_str(&text).expect("a JSON schema")
}

/// Errors of `doc` against the strict schema of its kind.
fn validate(doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().expect("a kind");
    let api = doc["apiVersion"].as_str().expect("an apiVersion");
    let schema = load(&schema_file(kind, api));
    let defs = load("_definitions.json");
    let registry = jsonschema::Registry::new()
        .add("https://kubernetes.io/api/_definitions.json", defs)
        .and_then(|b| b.prepare())
        .expect("the definitions register");
    let validator = jsonschema::options()
        .with_registry(&registry)
        .build(&schema)
        .expect("the schema compiles");
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the manifest"))
}

#[test]
fn every_document_validates_against_the_strict_kubernetes_schemas() {
    let docs = documents();
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["DaemonSet", "Namespace", "ServiceAccount"]),
        "kinds in the manifest"
    );
    for doc in &docs {
        let errors = validate(doc);
        assert!(errors.is_empty(), "{}: {errors:#?}", doc["kind"]);
    }
}

#[test]
fn a_misspelt_field_fails_the_validation() {
    // The schemas are strict: a field Kubernetes does not know is an error, as a strict
    // server-side apply makes it.
    let mut ds = kind(&documents(), "DaemonSet").clone();
    ds["spec"]["template"]["spec"]["hostPid"] = Value::Bool(true);
    assert!(!validate(&ds).is_empty(), "hostPid passed");
    let mut ds = kind(&documents(), "DaemonSet").clone();
    ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
        Value::String("BPF".into());
    assert!(!validate(&ds).is_empty(), "a string for a list passed");
}

fn container(docs: &[Value]) -> &Value {
    &kind(docs, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn the_daemon_gets_only_the_capabilities_it_needs_and_no_api_rights() {
    let docs = documents();
    let pod = &kind(&docs, "DaemonSet")["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true, "container pids are host pids");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["serviceAccountName"], "seccomp-tracer");
    assert_eq!(
        kind(&docs, "ServiceAccount")["automountServiceAccountToken"],
        false
    );
    for d in &docs {
        let k = d["kind"].as_str().unwrap_or_default();
        assert!(!k.contains("Role"), "{k}: the daemon uses no API rights");
    }
    let sc = &container(&docs)["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(
        sc["capabilities"]["add"],
        serde_json::json!(["BPF", "PERFMON"])
    );
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
}

#[test]
fn the_daemon_has_its_mounts_and_a_command_line_the_binary_takes() {
    let docs = documents();
    let c = container(&docs);
    let pod = &kind(&docs, "DaemonSet")["spec"]["template"]["spec"];
    let mounts: BTreeSet<&str> = c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    for needed in [
        "/sys/fs/bpf",
        "/sys/kernel/btf",
        "/sys/kernel/tracing",
        "/sys/fs/cgroup",
        "/run/containerd/containerd.sock",
        "/var/lib/seccomp-tracer",
        "/run/seccomp-tracer",
        "/var/lib/kubelet/seccomp/seccomp-tracer",
    ] {
        assert!(mounts.contains(needed), "no mount at {needed}");
    }
    // Kubernetes does not check a hostPath type against its list until the pod starts.
    let types = [
        "",
        "DirectoryOrCreate",
        "Directory",
        "FileOrCreate",
        "File",
        "Socket",
        "CharDevice",
        "BlockDevice",
    ];
    for v in pod["volumes"].as_array().expect("volumes") {
        if let Some(t) = v["hostPath"]["type"].as_str() {
            assert!(types.contains(&t), "hostPath type {t}");
        }
    }
    let mut argv = vec!["seccomp-tracer".to_string()];
    for a in c["args"].as_array().expect("args") {
        argv.push(a.as_str().expect("string args").to_string());
    }
    let cli =
        seccomp_tracer::cli::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let shown = format!("{:?}", cli.command);
    assert!(shown.starts_with("Daemon"), "{shown}");
    assert!(shown.contains("/var/lib/seccomp-tracer"), "{shown}");
    assert!(shown.contains("/run/seccomp-tracer/"), "{shown}");
    assert!(shown.contains("engine: Some(Cri)"), "{shown}");
}
