//! `seccomp-tracer daemon`: kill -9 and container restarts, attaching only while it records,
//! its socket, a soak, label and pattern selection. Needs root, BPF and Docker; fails (never
//! skips) without them.

use std::{
    path::Path,
    process::Command,
    thread::sleep,
    time::{Duration, Instant},
};

use e2e::{
    allowed_names, assert_running, busybox, cleanup, docker, nr, preflight, sh, target_status,
    tracer_bin, workdir, Daemon, SYSCALL_LINKS,
};

#[test]
fn daemon_survives_kill_9_and_follows_a_container_restart() {
    preflight();
    let name = "st-e2e-daemon";
    let _c = cleanup(&[name, "st-e2e-daemon-learned"]);
    let dir = workdir("daemon");
    let script = "while true; do sleep 0.2; done";
    busybox(name, script, None);
    let mut d = Daemon::start(&dir);
    assert!(d.ok(&["add", name]).contains("recording"), "{}", d.text());
    assert!(target_status(&d.status(), name)["running"] == true);

    // A call made only while the daemon is down: the pinned programs keep recording it.
    d.kill9();
    docker(&["exec", name, "/probe", "direct", &nr("getcpu").to_string()]);
    let down = d.client(&["status"]);
    assert!(!down.status.success());
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("the daemon is not running"),
        "{down:?}"
    );
    d.restart();
    assert!(d.text().contains("resumed recording"), "{}", d.text());

    // A call made only after a restart of the container.
    docker(&["restart", "-t", "1", name]);
    let t0 = Instant::now();
    while target_status(&d.status(), name)["restarts"] == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "restart not followed: {}",
            d.text()
        );
        sleep(Duration::from_millis(200));
    }
    docker(&["exec", name, "/probe", "direct", &nr("sysinfo").to_string()]);

    let profile = dir.join("exported.json");
    d.ok(&["export", name, "-o", profile.to_str().unwrap()]);
    let allowed = allowed_names(&profile);
    for call in ["getcpu", "sysinfo", "nanosleep", "execve"] {
        assert!(
            allowed.contains(call),
            "{call} lost: {allowed:?}\n{}",
            d.text()
        );
    }
    // Export did not stop recording, and the profile runs the container.
    assert!(target_status(&d.status(), name)["running"] == true);
    busybox("st-e2e-daemon-learned", script, Some(&profile));
    assert_running("st-e2e-daemon-learned");

    // remove: no longer in status; its profile can still be exported.
    d.ok(&["remove", name]);
    let s = d.status();
    assert!(s["targets"].as_array().unwrap().is_empty(), "{s}");
    d.ok(&["export", name, "-o", profile.to_str().unwrap()]);
    assert!(allowed_names(&profile).contains("getcpu"));
}

/// An idle daemon leaves every syscall on the host alone; `add` attaches the syscall programs,
/// `remove` of the last target detaches them, and a restart with or without `--no-refusals`
/// detaches or attaches refusal detection on the pinned set it takes over.
#[test]
fn daemon_attaches_syscall_programs_only_while_it_records() {
    preflight();
    let name = "st-e2e-hooks";
    let _c = cleanup(&[name]);
    let dir = workdir("daemon-hooks");
    busybox(name, "while true; do sleep 0.2; done", None);
    let mut d = Daemon::start(&dir);
    assert!(
        d.syscall_links().is_empty(),
        "idle, yet attached:\n{}",
        d.text()
    );

    d.ok(&["add", name]);
    assert_eq!(d.syscall_links(), SYSCALL_LINKS, "{}", d.text());
    let probe = |call: &str| docker(&["exec", name, "/probe", "direct", &nr(call).to_string()]);
    probe("getcpu");

    // Refusal detection off: sys_exit is detached from the set the new daemon takes over, and
    // recording goes on.
    d.term();
    d.restart_with(&["--no-refusals"]);
    assert!(d.text().contains("resumed recording"), "{}", d.text());
    assert_eq!(d.syscall_links(), ["link_sys_enter"], "{}", d.text());
    probe("sysinfo");
    probe("mbind");

    // And on again: a refused call is reported.
    d.term();
    d.restart();
    assert_eq!(d.syscall_links(), SYSCALL_LINKS, "{}", d.text());
    probe("mbind");
    d.wait_status("mbind not reported refused", Duration::from_secs(15), |s| {
        target_status(s, name)["refused"]
            .as_array()
            .is_some_and(|r| r.iter().any(|c| c == "mbind"))
    });

    let profile = dir.join("exported.json");
    d.ok(&["export", name, "-o", profile.to_str().unwrap()]);
    let allowed = allowed_names(&profile);
    for call in ["getcpu", "sysinfo"] {
        assert!(
            allowed.contains(call),
            "{call} lost: {allowed:?}\n{}",
            d.text()
        );
    }

    d.ok(&["remove", name]);
    assert!(
        d.syscall_links().is_empty(),
        "nothing to record, yet attached:\n{}",
        d.text()
    );
}

#[test]
fn daemon_socket_is_root_only() {
    preflight();
    let dir = workdir("daemon-socket");
    let d = Daemon::start(&dir);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&d.socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let as_nobody = |socket: &Path| {
        sh(Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(tracer_bin())
            .args(["status", "--socket"])
            .arg(socket))
    };
    let out = as_nobody(&d.socket);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "{out:?}"
    );
    // Even if the socket's mode is widened, the peer-credential check refuses.
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_nobody(&d.socket);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only root may control the daemon"),
        "{out:?}"
    );
}

/// Several containers and a storm of short-lived processes for SOAK_SECS (default 60; run it
/// for hours with SOAK_SECS=14400): the daemon's memory stays flat and every container's
/// unique call is in its export.
#[test]
fn daemon_soak_memory_stays_flat_and_nothing_is_lost() {
    preflight();
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let names = ["st-e2e-soak-0", "st-e2e-soak-1", "st-e2e-soak-2"];
    let _c = cleanup(&names);
    let dir = workdir("soak");
    // Each container forks processes in a loop (the storm) and makes one call of its own.
    let unique = ["getcpu", "sysinfo", "times"];
    for (n, call) in names.iter().zip(unique) {
        let script = format!(
            "while true; do /probe child {} >/dev/null; ls / >/dev/null; true; done",
            nr(call)
        );
        busybox(n, &script, None);
    }
    // A kernel map of 16 cgroups: churn that left dead instances behind would fill it within
    // seconds.
    let d = Daemon::start_env(&dir, &[("SECCOMP_TRACER_TEST_MAX_CGROUPS", "16")]);
    d.ok(&[&["add"][..], &names[..]].concat());
    // Containers matching a pattern come and go all the time.
    d.ok(&["add", "st-e2e-churn-*"]);
    let churn = |k: u32| format!("st-e2e-churn-{k}");
    let _churned = ChurnCleanup;
    sleep(Duration::from_secs(10));
    let rss_start = d.rss_kib();
    let t0 = Instant::now();
    let mut rss_max = rss_start;
    let (mut traced_max, mut k) = (0, 0);
    while t0.elapsed() < Duration::from_secs(secs) {
        busybox(&churn(k), "while true; do sleep 0.2; done", None);
        if k > 0 {
            docker(&["rm", "-f", &churn(k - 1)]);
        }
        k += 1;
        sleep(Duration::from_secs(5));
        rss_max = rss_max.max(d.rss_kib());
        let s = d.status();
        for n in names {
            assert!(target_status(&s, n)["running"] == true, "{s}");
        }
        assert!(
            target_status(&s, &churn(k - 1))["running"] == true,
            "{s}\n{}",
            d.text()
        );
        assert_eq!(
            s["map_full"],
            0,
            "the kernel map filled up: {s}\n{}",
            d.text()
        );
        traced_max = traced_max.max(s["traced_cgroups"].as_u64().unwrap_or(0));
    }
    let s = d.status();
    eprintln!(
        "soak {secs}s, {k} containers created and destroyed: daemon RSS {rss_start} KiB at start, max {rss_max} KiB; kernel map at most {traced_max} cgroups; kernel: {} syscalls, {} drops",
        s["syscalls"], s["ring_drops"]
    );
    assert!(traced_max <= 8, "kernel map occupancy grew to {traced_max}");
    assert!(rss_max < 50 * 1024, "daemon RSS {rss_max} KiB");
    assert!(
        rss_max <= rss_start + 4 * 1024,
        "daemon memory grew from {rss_start} to {rss_max} KiB"
    );
    for (n, call) in names.iter().zip(unique) {
        let p = dir.join(format!("{n}.json"));
        d.ok(&["export", n, "-o", p.to_str().unwrap()]);
        assert!(allowed_names(&p).contains(call), "{call} lost from {n}");
    }
}

/// Removes the churn containers of the soak test.
struct ChurnCleanup;

impl Drop for ChurnCleanup {
    fn drop(&mut self) {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--filter", "name=st-e2e-churn-"])
            .output();
        if let Ok(out) = out {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
    }
}

#[test]
fn daemon_label_and_pattern_take_in_containers_created_later_from_creation() {
    preflight();
    let (by_label, by_pattern) = ("st-e2e-lbl", "st-e2e-pat-1");
    let _c = cleanup(&[by_label, by_pattern]);
    let dir = workdir("daemon-select");
    let d = Daemon::start(&dir);
    let out = d.ok(&["add", "--label", "org.st-e2e=yes"]);
    assert!(out.contains("0 existing containers"), "{out}");
    d.ok(&["add", "st-e2e-pat-*"]);
    // Each makes its call first thing: only tracing from creation sees it.
    let run = |name: &str, label: Option<&str>, call: &str| {
        let script = format!("/probe direct {} >/dev/null; sleep 1000", nr(call));
        let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
        if let Some(l) = label {
            args.extend(["--label", l]);
        }
        args.extend(["st-busybox", "sh", "-c", &script]);
        docker(&args);
    };
    run(by_label, Some("org.st-e2e=yes"), "getcpu");
    run(by_pattern, None, "sysinfo");
    let t0 = Instant::now();
    loop {
        let s = d.status();
        let names: Vec<&str> = s["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        if names.contains(&by_label) && names.contains(&by_pattern) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "not taken in: {s}\n{}",
            d.text()
        );
        sleep(Duration::from_millis(200));
    }
    for (name, call) in [(by_label, "getcpu"), (by_pattern, "sysinfo")] {
        let p = dir.join(format!("{name}.json"));
        d.ok(&["export", name, "-o", p.to_str().unwrap()]);
        let allowed = allowed_names(&p);
        assert!(
            allowed.contains(call),
            "{name}: {call} missing\n{}",
            d.text()
        );
    }
}
