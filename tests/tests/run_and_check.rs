//! `run` (trace a command and its descendants) and `check` (what the current profile refuses).
//! Needs root, BPF and Docker; fails (never skips) without them.

use std::path::Path;

use e2e::{allowed_names, busybox, cleanup, nr, preflight, tracer, workdir, PROBE};

#[test]
fn run_traces_a_command_and_its_descendants_and_passes_its_exit_status() {
    preflight();
    let dir = workdir("run");
    let profile = dir.join("sh.json");
    let script = format!(
        "{PROBE} thread {} child {} >/dev/null; ({PROBE} direct {} >/dev/null &); exit 7",
        nr("getcpu"),
        nr("sysinfo"),
        nr("times")
    );
    let out = tracer(
        &[
            "run",
            "-o",
            profile.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &script,
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(7),
        "exit status not passed through: {err}"
    );
    let allowed = allowed_names(&profile);
    // From the first syscall (execve) on, in every thread, child and background grandchild.
    for call in ["execve", "getcpu", "sysinfo", "times", "exit_group"] {
        assert!(allowed.contains(call), "{call} missing: {err}");
    }
    assert!(err.contains("startup: observed"), "{err}");
    let out = tracer(&["run", "--", "/nonexistent-program"], &[]);
    assert!(!out.status.success());
    assert!(
        !Path::new("nonexistent-program.json").exists(),
        "empty profile left behind"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("starting `/nonexistent-program`"));
}

#[test]
fn check_reports_what_the_current_profile_refuses() {
    preflight();
    let name = "st-e2e-check";
    let _c = cleanup(&[name]);
    let script = format!(
        "while true; do /probe direct {} >/dev/null; sleep 0.2; done",
        nr("mbind")
    );
    busybox(name, &script, None);
    let out = tracer(&["check", name, "--duration", "3"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("REFUSED mbind") && text.contains("--cap-add SYS_NICE"),
        "{text}"
    );
    assert!(
        !text.contains(" execve\n"),
        "check shows refusals only: {text}"
    );
    assert!(
        !Path::new(&format!("{name}.json")).exists(),
        "check wrote a profile"
    );
}
