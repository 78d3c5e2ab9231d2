//! `run` (trace a command and its descendants) and `check` (what the current profile refuses).
//! Needs root, BPF and Docker; fails (never skips) without them.

use std::{
    path::Path,
    process::Command,
    thread::sleep,
    time::{Duration, Instant},
};

use e2e::{allowed_names, busybox, cleanup, nr, preflight, tracer, tracer_bin, workdir, PROBE};

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

/// A command that cannot start leaves an existing profile as it was.
#[test]
fn run_of_a_command_that_cannot_start_keeps_the_existing_profile() {
    preflight();
    let dir = workdir("run-typo");
    let profile = dir.join("kept.json");
    std::fs::write(&profile, "{\"kept\": true}\n").unwrap();
    let out = tracer(
        &[
            "run",
            "-o",
            profile.to_str().unwrap(),
            "--",
            "/typo-no-such-program",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("starting `/typo-no-such-program`"));
    assert_eq!(
        std::fs::read_to_string(&profile).unwrap(),
        "{\"kept\": true}\n",
        "the existing profile was replaced or deleted"
    );
}

/// SIGTERM to `run` goes to the command, as with timeout(1): `run` waits for it, writes the
/// profile, removes its cgroup and exits 128 + 15.
#[test]
fn sigterm_to_run_is_forwarded_to_the_command_and_its_cgroup_removed() {
    preflight();
    let dir = workdir("run-term");
    let profile = dir.join("sh.json");
    let marker = dir.join("started");
    let script = format!(
        "touch {}; {PROBE} direct {} >/dev/null; exec sleep 313",
        marker.display(),
        nr("getcpu")
    );
    let child = Command::new(tracer_bin())
        .args([
            "run",
            "-o",
            profile.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn run");
    let t0 = Instant::now();
    while !marker.exists() && t0.elapsed() < Duration::from_secs(60) {
        sleep(Duration::from_millis(100));
    }
    assert!(marker.exists(), "the command never started");
    sleep(Duration::from_millis(500));
    let cgroup = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            right
                .starts_with("cgroup2 ")
                .then(|| left.split_whitespace().nth(4).map(String::from))?
        })
        .map(|root| Path::new(&root).join(format!("seccomp-tracer-run-{}", child.id())))
        .expect("cgroup2 mount");
    assert!(
        cgroup.exists(),
        "{} missing while running",
        cgroup.display()
    );
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let done = Instant::now();
    let out = child.wait_with_output().expect("wait run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(done.elapsed() < Duration::from_secs(30), "run hung: {err}");
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(allowed_names(&profile).contains("getcpu"), "{err}");
    assert!(!cgroup.exists(), "cgroup {} leaked", cgroup.display());
    let orphans = Command::new("pgrep")
        .args(["-fx", "sleep 313"])
        .output()
        .unwrap();
    assert!(orphans.stdout.is_empty(), "the command was orphaned: {err}");
}
