//! Guarding an enforced profile: a container under the profile it learned makes a call the
//! training never saw; the daemon says it in an ALERT line, runs `--alert-command` once with the
//! details, writes the refusal to `--events`, and `export --heal` writes a profile under which
//! the call succeeds; `check` alerts the same way. Needs root, BPF and Docker; fails (never
//! skips) without them.

use std::{path::Path, thread::sleep, time::Duration, time::Instant};

use e2e::{
    allowed_names, busybox, cleanup, docker, errno_under, nr, preflight, target_status, unseen,
    workdir, Daemon, Recording,
};

/// A shell line: a copy of the probe named `intruder` makes `call` directly.
fn intrude(call: &str) -> String {
    format!(
        "cp /probe /tmp/intruder && /tmp/intruder direct {}",
        nr(call)
    )
}

/// [`intrude`] in a Docker container.
fn intruder(container: &str, call: &str) -> String {
    docker(&["exec", container, "sh", "-c", &intrude(call)])
}

/// Waits until the daemon's log has `needle`.
fn wait_log(d: &Daemon, needle: &str) {
    let t0 = Instant::now();
    while !d.text().contains(needle) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no `{needle}`:\n{}",
            d.text()
        );
        sleep(Duration::from_millis(200));
    }
}

/// Waits for `path` to have at least `n` lines; its lines.
fn lines_of(path: &Path, n: usize, limit: Duration, context: &dyn Fn() -> String) -> Vec<String> {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            t0.elapsed() < limit,
            "{} has {} lines, not {n}:\n{text}\n{}",
            path.display(),
            lines.len(),
            context()
        );
        sleep(Duration::from_millis(200));
    }
}

/// Learns the profile of a busybox loop that also runs the probe (as `intruder`, making
/// getppid), so that under it the probe runs and only the call chosen later is new.
fn learn(dir: &Path) -> std::path::PathBuf {
    let name = "st-e2e-guard-learn";
    let _c = cleanup(&[name]);
    let profile = dir.join("learned.json");
    busybox(name, "while true; do sleep 0.2; done", None);
    let mut rec = Recording::start(&[name, "-o", profile.to_str().unwrap()], dir);
    rec.wait_for("recording 1 target", Duration::from_secs(60));
    for _ in 0..2 {
        intruder(name, "getppid");
    }
    sleep(Duration::from_secs(1));
    rec.stop();
    profile
}

#[test]
fn a_new_call_under_the_learned_profile_alerts_once_streams_and_heals() {
    preflight();
    let name = "st-e2e-guard";
    let _c = cleanup(&[name]);
    let dir = workdir("guard");
    let learned = learn(&dir);
    let call = unseen(&allowed_names(&learned));

    let events = dir.join("events.jsonl");
    let alerts = dir.join("alerts");
    let alert_cmd = format!(
        "printf '%s|%s|%s|%s|%s\\n' \"$SECCOMP_TRACER_CONTAINER\" \"$SECCOMP_TRACER_SYSCALL\" \
         \"$SECCOMP_TRACER_PROGRAM\" \"$SECCOMP_TRACER_PROFILE\" \"$SECCOMP_TRACER_FIX\" >> {}",
        alerts.display()
    );
    let d = Daemon::start_with(
        &dir,
        &[
            "--events",
            events.to_str().unwrap(),
            "--alert-command",
            &alert_cmd,
        ],
    );
    busybox(name, "while true; do sleep 0.2; done", Some(&learned));
    d.ok(&["add", name]);
    d.wait_status("the guarded container runs", Duration::from_secs(30), |s| {
        target_status(s, name)["running"] == true
    });
    // The same new call, three times: one alert.
    for _ in 0..3 {
        let out = intruder(name, call);
        assert!(out.contains("errno=1"), "{call} not refused: {out}");
    }
    let log = || d.text();
    let got = lines_of(&alerts, 1, Duration::from_secs(30), &log);
    sleep(Duration::from_secs(3));
    let got_later = lines_of(&alerts, 1, Duration::from_secs(1), &log);
    assert_eq!(
        got_later.len(),
        1,
        "the alert ran more than once: {got_later:?}"
    );
    let fields: Vec<&str> = got[0].split('|').collect();
    assert_eq!(
        &fields[..4],
        &[name, call, "intruder", "own-profile"],
        "{got:?}"
    );
    assert!(
        fields[4].contains(&format!("export {name} --heal")),
        "{got:?}"
    );
    let text = d.text();
    assert!(
        text.contains(&format!(
            "{name}  ALERT {call} refused by its profile: intruder (pid "
        )),
        "no alert line:\n{text}"
    );

    let stream = lines_of(&events, 1, Duration::from_secs(10), &log);
    let parsed: Vec<serde_json::Value> = stream
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let refusals: Vec<&serde_json::Value> = parsed
        .iter()
        .filter(|v| v["event"] == "refusal" && v["container"] == name)
        .collect();
    assert_eq!(refusals.len(), 1, "{stream:?}");
    assert_eq!(refusals[0]["syscall"], call);
    assert_eq!(refusals[0]["program"], "intruder");
    assert!(refusals[0]["pid"].as_u64().is_some_and(|p| p > 1));
    d.wait_status("a checkpoint", Duration::from_secs(10), |_| {
        std::fs::read_to_string(&events).is_ok_and(|t| t.contains("\"event\":\"checkpoint\""))
    });

    // status: the learning curve's slope, per container.
    let st = d.status();
    let curve = &target_status(&st, name)["new_calls"];
    let total: u64 = curve
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_u64())
        .sum();
    assert!(total >= 1, "no new calls in the curve: {st}");
    let table = d.ok(&["status"]);
    assert!(table.contains("NEW CALLS"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_default();
    assert!(
        row.contains(" /") && row.chars().any(|c| ('▁'..='█').contains(&c)),
        "no sparkline: {table}"
    );

    let healed = dir.join("healed.json");
    let out = d.client(&["export", name, "--heal", "-o", healed.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(&format!("only healed allows (1): {call}")),
        "the difference is not printed:\n{stdout}"
    );
    assert_eq!(errno_under(&healed, "st-busybox", call), "errno=0");
    assert_eq!(errno_under(&learned, "st-busybox", call), "errno=1");
    // Everything the profile in force allowed, the healed one allows.
    let before = allowed_names(&learned);
    let after = allowed_names(&healed);
    assert!(before.is_subset(&after), "{before:?}\n{after:?}");
    assert_eq!(after.difference(&before).collect::<Vec<_>>(), [call]);
}

#[test]
fn check_alerts_on_a_call_its_profile_refuses() {
    preflight();
    let name = "st-e2e-guard-check";
    let _c = cleanup(&[name]);
    let dir = workdir("guard-check");
    let learned = learn(&dir);
    let call = unseen(&allowed_names(&learned));
    busybox(name, "while true; do sleep 0.2; done", Some(&learned));
    let alerts = dir.join("alerts");
    let cmd = format!("echo \"$SECCOMP_TRACER_SYSCALL\" >> {}", alerts.display());
    let mut check = Recording::start_sub(
        "check",
        &[name, "--events", "-", "--alert-command", &cmd],
        &dir,
        &[],
        "checking 1 target",
    );
    intruder(name, call);
    check.wait_for(
        &format!("ALERT {call} refused by its profile"),
        Duration::from_secs(30),
    );
    let (status, out) = check.interrupt();
    assert_eq!(
        status.code(),
        Some(3),
        "check exits 3 after a refusal:
{out}"
    );
    assert!(
        out.contains("\"event\":\"refusal\""),
        "no event line:\n{out}"
    );
    let got = std::fs::read_to_string(&alerts).unwrap_or_default();
    assert_eq!(got.trim(), call, "{out}");
}

/// `record --json`: standard output is the summary alone, as one JSON document; the live lines
/// go to standard error.
#[test]
fn record_json_prints_the_summary_as_one_document() {
    preflight();
    let name = "st-e2e-guard-json";
    let _c = cleanup(&[name]);
    let dir = workdir("guard-json");
    let profile = dir.join("j.json");
    busybox(name, "while true; do sleep 0.2; done", None);
    let out = e2e::tracer(
        &[
            "record",
            name,
            "--duration",
            "3",
            "--json",
            "-o",
            profile.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let t = &v["targets"][0];
    assert_eq!(t["name"], name, "{v}");
    assert_eq!(t["profile"], profile.to_str().unwrap(), "{v}");
    let allowed: std::collections::BTreeSet<String> = t["allowed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        allowed,
        allowed_names(&profile),
        "the summary and the file agree"
    );
    assert_eq!(t["syscalls"], allowed.len());
    assert_eq!(t["startup"], "missed", "{v}");
    assert!(
        v["kernel"]["syscalls"].as_u64().is_some_and(|n| n > 0),
        "{v}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("recording 1 target"),
        "live lines on stderr:\n{err}"
    );
}

/// Podman keeps the profile's path (`seccomp=/path`), not its content: the daemon reads the
/// file, alerts the same way, and heals it.
#[test]
fn podman_a_new_call_under_the_learned_profile_alerts_and_heals() {
    use e2e::{podman_errno_under, PodmanContainer};
    preflight();
    let dir = workdir("guard-podman");
    let learner =
        PodmanContainer::busybox("st-e2e-guard-pl", "while true; do sleep 0.2; done", None);
    let learned = dir.join("learned.json");
    let rec = Recording::start(
        &[
            &learner.name,
            "--engine",
            "podman",
            "-o",
            learned.to_str().unwrap(),
        ],
        &dir,
    );
    for _ in 0..2 {
        learner.exec(&["sh", "-c", &intrude("getppid")]);
    }
    sleep(Duration::from_secs(1));
    rec.stop();
    drop(learner);
    let call = unseen(&allowed_names(&learned));

    let d = Daemon::start_with(&dir, &["--engine", "podman"]);
    let c = PodmanContainer::busybox(
        "st-e2e-guard-p",
        "while true; do sleep 0.2; done",
        Some(&learned),
    );
    d.ok(&["add", &c.name]);
    d.wait_status("the guarded container runs", Duration::from_secs(30), |s| {
        target_status(s, &c.name)["running"] == true
    });
    let out = c.exec(&["sh", "-c", &intrude(call)]);
    assert!(out.contains("errno=1"), "{call} not refused: {out}");
    wait_log(
        &d,
        &format!("{}  ALERT {call} refused by its profile: intruder", c.name),
    );
    let healed = dir.join("healed.json");
    let out = d.client(&["export", &c.name, "--heal", "-o", healed.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(podman_errno_under(&healed, call), "errno=0");
    assert_eq!(podman_errno_under(&learned, call), "errno=1");
}

/// Through the CRI, the filter in force is the runtime spec's and the kubelet's choice
/// (Localhost) says it is the pod's own: the daemon alerts and heals it, and a pod under the
/// healed kubelet file makes the call.
#[test]
fn cri_a_new_call_under_the_learned_localhost_profile_alerts_and_heals() {
    use e2e::{CriPod, CriSeccomp, Qos, POD_NAMESPACE};
    preflight();
    let dir = workdir("guard-cri");
    let lp = CriPod::run("st-e2e-guard-cl", Qos::BestEffort);
    let cmd = ["sh", "-c", "while true; do sleep 0.2; done"];
    let lid = lp.start("app", &cmd, 0, None).expect("container starts");
    let learned = dir.join("web.json");
    let rec = Recording::start(
        &[
            "--engine",
            "cri",
            &format!("{POD_NAMESPACE}/{}/app", lp.name),
            "--format",
            "kubernetes",
            "-o",
            learned.to_str().unwrap(),
        ],
        &dir,
    );
    for _ in 0..2 {
        let e = lp.exec_sync(&lid, &["sh", "-c", &intrude("getppid")]);
        assert_eq!(e.exit_code, 0, "{e:?}");
    }
    sleep(Duration::from_secs(1));
    rec.stop();
    drop(lp);
    let kubelet = dir.join("web.kubelet.json");
    let call = unseen(&allowed_names(&kubelet));

    let d = Daemon::start_with(&dir, &["--engine", "cri"]);
    let pod = CriPod::run("st-e2e-guard-c", Qos::BestEffort);
    let id = pod
        .start("app", &cmd, 0, Some(CriSeccomp::Localhost(kubelet.clone())))
        .expect("the container starts under its learned profile");
    let target = format!("{POD_NAMESPACE}/{}/app", pod.name);
    d.ok(&["add", &target]);
    d.wait_status("the guarded container runs", Duration::from_secs(30), |s| {
        s["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["running"] == true)
    });
    let e = pod.exec_sync(&id, &["sh", "-c", &intrude(call)]);
    let out = String::from_utf8_lossy(&e.stdout).into_owned();
    assert!(out.contains("errno=1"), "{call} not refused: {e:?}");
    wait_log(
        &d,
        &format!("ALERT {call} refused by its profile: intruder"),
    );
    let name = d.status()["targets"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let healed = dir.join("healed.json");
    // The filter in force is the runtime spec's OCI object: healed in that form, it is a file
    // for the kubelet's directory as it is.
    let out = d.client(&["export", &name, "--heal", "-o", healed.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let hp = CriPod::run("st-e2e-guard-ch", Qos::BestEffort);
    let hid = hp
        .start("app", &cmd, 0, Some(CriSeccomp::Localhost(healed.clone())))
        .expect("the container starts under the healed profile");
    let e = hp.exec_sync(&hid, &["/rawcall", &nr(call).to_string()]);
    let out = String::from_utf8_lossy(&e.stdout).into_owned();
    assert!(
        out.contains("errno=0"),
        "{call} under the healed profile: {e:?}"
    );
}
