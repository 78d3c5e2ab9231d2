//! Profile formats and contents: OCI (runc) and Kubernetes output, argument rules, 32-bit call
//! naming. Needs root, BPF and Docker; fails (never skips) without them.

use std::{path::Path, process::Command, time::Duration};

use e2e::{
    allowed_names, busybox, cleanup, docker, errno_under, nr, preflight, rawcall_in_container,
    rules_for, seccomp_opt, sh, tracer, workdir, Recording,
};

/// An OCI bundle around the busybox image's root filesystem, running `sh -c script` under
/// `seccomp` (a runtime-spec `linux.seccomp` object); returns runc's output and success.
fn runc_run(dir: &Path, id: &str, script: &str, seccomp: &serde_json::Value) -> (String, bool) {
    let bundle = dir.join(format!("bundle-{id}"));
    std::fs::create_dir_all(&bundle).expect("bundle dir");
    let out = sh(Command::new("runc").arg("spec").current_dir(&bundle));
    assert!(
        out.status.success(),
        "runc spec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("config")).expect("json");
    config["root"]["path"] = "/var/tmp/seccomp-tracer-images/busybox".into();
    config["root"]["readonly"] = true.into();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
    config["linux"]["seccomp"] = seccomp.clone();
    std::fs::write(&path, serde_json::to_vec(&config).expect("json")).expect("write config");
    let _ = Command::new("runc").args(["delete", "-f", id]).output();
    let out = sh(Command::new("runc")
        .args(["run", "-b"])
        .arg(&bundle)
        .arg(id));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text, out.status.success())
}

#[test]
fn oci_format_is_accepted_by_runc_and_kubernetes_format_is_a_seccompprofile() {
    preflight();
    let name = "st-e2e-oci";
    let _c = cleanup(&[name]);
    let dir = workdir("oci");
    let script = format!(
        "while true; do /probe direct {}; sleep 0.2; done",
        nr("getcpu")
    );
    busybox(name, &script, None);
    let oci = dir.join("oci.json");
    let rec = Recording::start(
        &[
            name,
            "--restart",
            "--format",
            "oci",
            "-o",
            oci.to_str().unwrap(),
        ],
        &dir,
    );
    let mut rec = rec;
    rec.wait_for("new instance", Duration::from_secs(60));
    rec.wait_for(" getcpu", Duration::from_secs(30));
    let out = rec.stop();
    let seccomp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&oci).expect("profile")).expect("json");
    assert!(
        seccomp["architectures"].is_array() && seccomp.get("archMap").is_none(),
        "{out}"
    );
    // runc takes it as linux.seccomp: the workload runs, an unseen call gets EPERM.
    let work = format!("/probe direct {}", nr("getcpu"));
    let (text, ok) = runc_run(&dir, "st-e2e-oci-ok", &work, &seccomp);
    assert!(
        ok && text.contains("errno=0"),
        "runc under the OCI profile: {text}"
    );
    let (text, _) = runc_run(
        &dir,
        "st-e2e-oci-refused",
        &format!("/rawcall {}", nr("mincore")),
        &seccomp,
    );
    assert!(
        text.contains("errno=1"),
        "mincore not refused under the OCI profile: {text}"
    );

    // The same recording as a Kubernetes resource, and the kubelet file next to it.
    let merged = dir.join("web.json");
    let out = tracer(
        &[
            "merge",
            oci.to_str().unwrap(),
            oci.to_str().unwrap(),
            "--format",
            "kubernetes",
            "-o",
            merged.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let k: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).expect("k8s")).expect("json");
    assert_eq!(
        k["apiVersion"],
        "security-profiles-operator.x-k8s.io/v1beta1"
    );
    assert_eq!(k["kind"], "SeccompProfile");
    assert_eq!(k["spec"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert!(k["spec"]["syscalls"][0]["names"]
        .as_array()
        .is_some_and(|n| n.len() > 20));
    let explained = tracer(&["explain", merged.to_str().unwrap()], &[]);
    assert!(String::from_utf8_lossy(&explained.stdout).contains("Docker's default allows"));
    // The kubelet file: the OCI form (containerd has no archMap), and Docker takes it too.
    let kubelet = dir.join("web.kubelet.json");
    let kj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&kubelet).expect("kubelet")).expect("json");
    assert!(
        kj["architectures"].is_array() && kj.get("archMap").is_none(),
        "{kj}"
    );
    assert!(k["spec"].get("disabled").is_none(), "{k}");
    assert_eq!(errno_under(&kubelet, "st-busybox", "mincore"), "errno=1");
    // -o *.yaml: YAML, which every command reads back.
    let yaml = dir.join("web.yaml");
    let out = tracer(
        &[
            "merge",
            oci.to_str().unwrap(),
            merged.to_str().unwrap(),
            "-o",
            yaml.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&yaml).expect("yaml");
    assert!(
        text.contains("\ndefaultAction: SCMP_ACT_ERRNO\n") && !text.starts_with('{'),
        "{text}"
    );
    let explained = tracer(&["explain", yaml.to_str().unwrap()], &[]);
    assert!(
        explained.status.success(),
        "{}",
        String::from_utf8_lossy(&explained.stderr)
    );
}

#[test]
fn argument_rules_refuse_a_namespace_flag_never_seen() {
    preflight();
    const NEWUTS: &str = "0x04000000";
    const NEWUSER: &str = "0x10000000";
    let name = "st-e2e-args";
    let _c = cleanup(&[name]);
    let dir = workdir("args");
    let profile = dir.join("args.json");
    // With SYS_ADMIN, Docker's default profile allows unshare with any flag: only the learned
    // profile's argument rule can refuse one.
    let admin = ["--cap-add", "SYS_ADMIN"];
    docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        admin[0],
        admin[1],
        "st-busybox",
        "sleep",
        "1000",
    ]);
    let mut rec = Recording::start(&[name, "-o", profile.to_str().unwrap()], &dir);
    let unshare = nr("unshare").to_string();
    let socket = nr("socket").to_string();
    let ok = docker(&["exec", name, "/rawcall", &unshare, NEWUTS]);
    assert_eq!(ok, "errno=0");
    docker(&["exec", name, "/rawcall", &socket, "1", "1", "0"]);
    rec.wait_for(" socket", Duration::from_secs(30));
    let out = rec.stop();
    assert!(
        out.contains("argument rules, only the values seen"),
        "{out}"
    );

    let rules = rules_for(&profile, "unshare");
    assert_eq!(rules.len(), 1, "{rules:?}");
    let arg = &rules[0]["args"][0];
    assert_eq!(arg["op"], "SCMP_CMP_MASKED_EQ", "{rules:?}");
    assert_eq!(arg["valueTwo"], 0x0400_0000, "{rules:?}");
    let rules = rules_for(&profile, "socket");
    assert!(
        rules.iter().all(|r| r["args"][0]["op"] == "SCMP_CMP_EQ"),
        "{rules:?}"
    );

    let learned = seccomp_opt(&profile);
    let under = [admin[0], admin[1], "--security-opt", learned.as_str()];
    let call = |args: &[&str]| {
        rawcall_in_container(
            &under,
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(call(&[&unshare, NEWUTS]), "errno=0", "the flag seen");
    assert_eq!(call(&[&unshare, NEWUSER]), "errno=1", "a flag never seen");
    assert_eq!(call(&[&socket, "1", "1", "0"]), "errno=0", "AF_UNIX, seen");
    assert_eq!(
        call(&[&socket, "2", "1", "0"]),
        "errno=1",
        "AF_INET, never seen"
    );
    // Control: the kernel itself allows it, so the EPERM above is the rule's.
    let control = rawcall_in_container(&admin, &[unshare.clone(), NEWUSER.to_string()]);
    assert_eq!(
        control, "errno=0",
        "unshare(CLONE_NEWUSER) fails even unfiltered"
    );

    // merge keeps the rule, and diff sees no difference.
    let merged = dir.join("merged.json");
    let p = profile.to_str().unwrap();
    let out = tracer(&["merge", p, p, "-o", merged.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        rules_for(&merged, "unshare"),
        rules_for(&profile, "unshare")
    );
    let out = tracer(&["diff", p, merged.to_str().unwrap()], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("allow the same"),
        "{out:?}"
    );
}

/// i386 socketcall is number 102; x86_64's 102 is getuid.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_32_bit_call_is_named_from_the_i386_table() {
    preflight();
    const SOCKETCALL_I386: &str = "102";
    let dir = workdir("compat");
    // A command outside any container: execve, the call, write, exit_group and nothing else.
    let profile = dir.join("rawcall.json");
    let rawcall = "/var/tmp/seccomp-tracer-images/bin/rawcall";
    let out = tracer(
        &[
            "run",
            "-o",
            profile.to_str().unwrap(),
            "--",
            rawcall,
            "-32",
            SOCKETCALL_I386,
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let allowed = allowed_names(&profile);
    assert!(allowed.contains("socketcall"), "{allowed:?}\n{err}");
    assert!(
        !allowed.contains("getuid"),
        "named with the x86_64 table: {allowed:?}"
    );
    assert!(
        err.contains("named from the i386 table: socketcall"),
        "{err}"
    );

    // In a container, and the profile then lets the call through Docker's libseccomp for
    // SCMP_ARCH_X86: socketcall(0, 0) gets its own EINVAL, not the profile's EPERM.
    let name = "st-e2e-compat";
    let _c = cleanup(&[name]);
    let profile = dir.join("compat.json");
    busybox(name, "sleep 1000", None);
    let mut rec = Recording::start(&[name, "-o", profile.to_str().unwrap()], &dir);
    docker(&["exec", name, "/rawcall", "-32", SOCKETCALL_I386]);
    rec.wait_for("socketcall (32-bit)", Duration::from_secs(30));
    rec.stop();
    let learned = seccomp_opt(&profile);
    let args = ["-32".to_string(), SOCKETCALL_I386.to_string()];
    assert_eq!(
        rawcall_in_container(&["--security-opt", &learned], &args),
        "errno=22"
    );
}
