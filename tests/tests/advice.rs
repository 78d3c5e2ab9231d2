//! Advice against Docker's default profile (moby's default.json, evaluated as dockerd does):
//! `explain`'s verdicts in text and `--json` (no Docker or root needed), and the REFUSED lines
//! of a container that runs under a profile of its own (root, BPF and Docker). Fails (never
//! skips) without them.

use std::time::Duration;

use e2e::{busybox, cleanup, nr, preflight, tracer, tracer_bin, workdir, Recording};

/// A Docker profile in `dir` allowing `names` with any arguments; its path.
fn allowing(dir: &std::path::Path, names: &[&str]) -> String {
    let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let text = format!(
        r#"{{ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
             "archMap": [{{ "architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"] }}],
             "syscalls": [{{ "names": [{}], "action": "SCMP_ACT_ALLOW" }}] }}"#,
        list.join(", ")
    );
    let p = dir.join("app.json");
    std::fs::write(&p, text).expect("write the profile");
    p.to_str().expect("UTF-8 path").to_string()
}

#[test]
fn explain_json_gives_dockers_verdicts_least_privilege_first() {
    assert!(
        tracer_bin().exists(),
        "{} is not built",
        tracer_bin().display()
    );
    let dir = workdir("advice-explain");
    let names = [
        "read",
        "ptrace",
        "clock_adjtime",
        "name_to_handle_at",
        "bpf",
        "move_pages",
        "mbind",
        "fanotify_init",
        "socket",
    ];
    let profile = allowing(&dir, &names);
    // On a kernel of 4.8 or later, as Docker's rule for ptrace says.
    let out = tracer(&["explain", "--json", "--kernel", "6.8", &profile], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("explain --json is JSON");
    assert_eq!(
        doc["beyond_default"],
        serde_json::json!([
            {"name": "bpf", "verdict": "capability", "capabilities": ["CAP_BPF", "CAP_SYS_ADMIN"]},
            {"name": "fanotify_init", "verdict": "capability", "capabilities": ["CAP_SYS_ADMIN"]},
            {"name": "mbind", "verdict": "capability", "capabilities": ["CAP_SYS_NICE"]},
            {"name": "move_pages", "verdict": "never"},
            {"name": "socket", "verdict": "arguments"}
        ]),
        "{stdout}"
    );
    assert_eq!(doc["allowed"], names.len(), "{stdout}");
    // The text says the same.
    let out = tracer(&["explain", "--kernel", "6.8", &profile], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "  bpf: Docker's default allows it with --cap-add BPF (least privilege), or SYS_ADMIN\n",
        "  mbind: Docker's default allows it with --cap-add SYS_NICE\n",
        "  move_pages: no capability makes Docker's default allow it\n",
        "  socket: Docker's default allows only some argument values of it",
    ] {
        assert!(text.contains(line), "{line:?} missing: {text}");
    }
    for allowed in ["ptrace", "clock_adjtime", "name_to_handle_at"] {
        assert!(
            !text.contains(&format!("  {allowed}")),
            "{allowed} listed: {text}"
        );
    }
    // Before 4.8 Docker's default needs CAP_SYS_PTRACE for ptrace.
    let out = tracer(&["explain", "--json", "--kernel", "4.4", &profile], &[]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ptrace = doc["beyond_default"]
        .as_array()
        .and_then(|a| a.iter().find(|b| b["name"] == "ptrace").cloned());
    assert_eq!(
        ptrace,
        Some(
            serde_json::json!({"name": "ptrace", "verdict": "capability", "capabilities": ["CAP_SYS_PTRACE"]})
        ),
        "{doc}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Refuses getcpu, which Docker's default allows, and mbind, which it allows with
/// CAP_SYS_NICE; its path in `dir`.
fn own_profile(dir: &std::path::Path) -> std::path::PathBuf {
    let profile = dir.join("own.json");
    std::fs::write(
        &profile,
        r#"{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            { "names": ["getcpu", "mbind"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 } ] }"#,
    )
    .expect("write the profile");
    profile
}

/// A loop that calls getcpu and mbind.
fn refused_calls() -> String {
    format!(
        "while true; do /probe direct {} >/dev/null; /probe direct {} >/dev/null; sleep 0.2; done",
        nr("getcpu"),
        nr("mbind")
    )
}

const OWN_REFUSES_GETCPU: &str = "REFUSED getcpu: the container's own profile \
    (--security-opt seccomp) refuses it; Docker's default would allow it with this container's \
    capabilities";

#[test]
fn a_refusal_under_the_containers_own_profile_says_so() {
    preflight();
    let name = "st-e2e-own-profile";
    let _c = cleanup(&[name]);
    let dir = workdir("advice-own-profile");
    let profile = own_profile(&dir);
    let script = refused_calls();
    busybox(name, &script, Some(&profile));
    let out = tracer(&["check", name, "--duration", "3"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    // `check` guards the profile in force: each refusal is an alert, its fix the hint.
    for needle in [
        "ALERT getcpu refused by its profile: probe (pid ",
        "; fix: the container's own profile (--security-opt seccomp) refuses it; Docker's \
         default would allow it with this container's capabilities",
        "ALERT mbind refused by its profile: probe (pid ",
        "; fix: the container's own profile (--security-opt seccomp) refuses it; Docker's \
         default would allow it with --cap-add SYS_NICE",
        "    getcpu: the container's own profile (--security-opt seccomp) refuses it",
    ] {
        assert!(text.contains(needle), "{needle:?} missing: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_container_created_while_recording_is_judged_by_its_own_profile() {
    preflight();
    let name = "st-e2e-own-profile-wait";
    let _c = cleanup(&[name]);
    let dir = workdir("advice-own-profile-wait");
    let profile = own_profile(&dir);
    let out = dir.join("learned.json");
    let mut rec = Recording::start(&[name, "--wait", "-o", out.to_str().unwrap()], &dir);
    busybox(name, &refused_calls(), Some(&profile));
    rec.wait_for("REFUSED getcpu", Duration::from_secs(60));
    rec.wait_for("REFUSED mbind", Duration::from_secs(30));
    let text = rec.stop();
    assert!(text.contains(OWN_REFUSES_GETCPU), "{text}");
    assert!(
        text.contains("    mbind: the container's own profile (--security-opt seccomp) refuses it; Docker's default would allow it with --cap-add SYS_NICE"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
