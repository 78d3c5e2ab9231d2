//! Provenance ("why is this call here?"): the program that made a call first, and when, in the
//! summary, in `<stem>.why.json` next to the profile, in `explain`, and through a daemon's
//! kill -9 and restart. Needs root, BPF and Docker; fails (never skips) without them.

use std::{path::Path, thread::sleep, time::Duration};

use e2e::{
    busybox, cleanup, docker, nr, preflight, target_status, tracer, workdir, Daemon, Recording,
    PROBE,
};

/// A copy of the probe under a name of its own makes mbind, which Docker's default profile
/// refuses (EPERM): its first sighting is a refusal made by `numa-probe`.
fn numa_probe(container: &str) {
    let script = format!(
        "cp /probe /tmp/numa-probe && /tmp/numa-probe direct {}",
        nr("mbind")
    );
    docker(&["exec", container, "sh", "-c", &script]);
}

/// The `calls.mbind` entry of the why file next to `profile`, checked to be numa-probe's.
fn assert_mbind_by_numa_probe(profile: &Path, context: &str) {
    let side = profile.with_file_name(format!(
        "{}.why.json",
        profile.file_stem().unwrap().to_string_lossy()
    ));
    let text = std::fs::read_to_string(&side)
        .unwrap_or_else(|e| panic!("{}: {e}\n{context}", side.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("why file is JSON");
    assert_eq!(v["version"], 1, "{text}");
    let m = &v["calls"]["mbind"];
    assert_eq!(m["program"], "numa-probe", "{text}\n{context}");
    assert_eq!(m["refused"], true, "{text}");
    assert!(m["pid"].as_u64().is_some_and(|p| p > 1), "{text}");
    let at = m["first_seen"].as_str().unwrap_or_default();
    assert!(at.len() == 20 && at.ends_with('Z'), "{text}");
    // The profile itself carries none of it.
    let doc = std::fs::read_to_string(profile).expect("profile");
    assert!(!doc.contains("numa-probe"), "{doc}");
}

#[test]
fn the_summary_the_why_file_and_explain_name_the_program_that_made_a_call_first() {
    preflight();
    let name = "st-e2e-why";
    let _c = cleanup(&[name]);
    let dir = workdir("why");
    let profile = dir.join("why.json");
    busybox(name, "while true; do sleep 0.2; done", None);
    let mut rec = Recording::start(&[name, "-o", profile.to_str().unwrap()], &dir);
    numa_probe(name);
    rec.wait_for("REFUSED mbind", Duration::from_secs(30));
    let out = rec.stop();

    assert!(
        out.contains("mbind: first by numa-probe at "),
        "no provenance in the summary:\n{out}"
    );
    assert_mbind_by_numa_probe(&profile, &out);

    let e = tracer(&["explain", profile.to_str().unwrap()], &[]);
    let text = String::from_utf8_lossy(&e.stdout);
    assert!(e.status.success(), "{e:?}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("mbind:"))
        .unwrap_or_else(|| panic!("mbind not explained:\n{text}"));
    assert!(line.contains("; first by numa-probe at 20"), "{text}");
}

/// `run` traces a program with no seccomp filter: its calls are first sightings all the same.
#[test]
fn run_names_the_program_that_made_a_call_first() {
    preflight();
    let dir = workdir("why-run");
    let prog = dir.join("numa-probe");
    std::fs::copy(PROBE, &prog).expect("copy the probe");
    let profile = dir.join("numa.json");
    let out = tracer(
        &[
            "run",
            "-o",
            profile.to_str().unwrap(),
            "--",
            prog.to_str().unwrap(),
            "direct",
            &nr("mbind").to_string(),
        ],
        &[],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("mbind: first by numa-probe at "), "{text}");
    let why: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("numa.why.json")).expect("why"))
            .expect("JSON");
    assert_eq!(why["calls"]["mbind"]["program"], "numa-probe", "{why}");
    assert_eq!(why["calls"]["mbind"]["refused"], false, "{why}");
}

#[test]
fn provenance_survives_a_daemon_kill_9_and_restart_and_is_exported() {
    preflight();
    let name = "st-e2e-why-daemon";
    let _c = cleanup(&[name]);
    let dir = workdir("why-daemon");
    busybox(name, "while true; do sleep 0.2; done", None);
    let mut d = Daemon::start(&dir);
    d.ok(&["add", name]);
    numa_probe(name);
    d.wait_status("mbind not reported refused", Duration::from_secs(15), |s| {
        target_status(s, name)["refused"]
            .as_array()
            .is_some_and(|r| r.iter().any(|c| c == "mbind"))
    });
    // Two checkpoints (every 2 s), then no goodbye: what the last one saved is all there is.
    sleep(Duration::from_secs(5));
    d.kill9();
    let state = std::fs::read_to_string(d.state.join("state.json")).expect("state file");
    assert!(
        state.contains(r#""program":"numa-probe""#),
        "the checkpoint did not keep it:\n{state}"
    );
    d.restart();
    assert!(d.text().contains("resumed recording"), "{}", d.text());

    let profile = dir.join("exported.json");
    d.ok(&["export", name, "-o", profile.to_str().unwrap()]);
    assert_mbind_by_numa_probe(&profile, &d.text());
}
