//! The daemon's files and its socket under a hostile or careless user: a second daemon on one
//! state directory, a file where the socket goes, a state directory others can write, idle
//! connections, containers created while it was down. Needs root, BPF and Docker; fails
//! (never skips) without them.

use std::{
    os::unix::{fs::PermissionsExt, net::UnixStream},
    process::Command,
    thread::sleep,
    time::{Duration, Instant},
};

use e2e::{
    busybox, cleanup, docker, nr, preflight, rules_for, target_status, tracer, tracer_bin, workdir,
    Daemon,
};

fn daemon_output(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(tracer_bin())
        .arg("daemon")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn daemon");
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "the daemon kept running: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_second_daemon_on_one_state_dir_names_the_first_and_exits() {
    preflight();
    let dir = workdir("two-daemons");
    let d = Daemon::start(&dir);
    let other = dir.join("other.sock");
    let out = daemon_output(&[
        "--state-dir",
        d.state.to_str().unwrap(),
        "--socket",
        other.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("another daemon (pid "), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The first one still answers.
    assert!(d.status()["targets"].is_array());
}

#[test]
fn the_daemon_removes_only_a_stale_socket_and_never_chmods_a_shared_dir() {
    preflight();
    let dir = workdir("daemon-files");
    // A regular file where the socket goes stays, and the daemon says why it will not start.
    let precious = dir.join("precious");
    std::fs::write(&precious, "keep me").unwrap();
    let out = daemon_output(&[
        "--state-dir",
        dir.join("state").to_str().unwrap(),
        "--socket",
        precious.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a socket"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    // A state directory everybody can write (like /tmp) is refused and left as it was.
    let shared = dir.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = daemon_output(&[
        "--state-dir",
        shared.to_str().unwrap(),
        "--socket",
        dir.join("s.sock").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("others can write"),
        "{out:?}"
    );
    let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode, 0o1777,
        "the daemon changed the mode of a directory it did not create"
    );
    // A missing one is created private.
    let d = Daemon::start(&dir);
    let mode = std::fs::metadata(&d.state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn idle_control_connections_neither_block_nor_exhaust_the_daemon() {
    preflight();
    let dir = workdir("idle-conns");
    let d = Daemon::start(&dir);
    let idle: Vec<UnixStream> = (0..300)
        .filter_map(|_| UnixStream::connect(&d.socket).ok())
        .collect();
    assert!(!idle.is_empty());
    // Served while they hang on...
    sleep(Duration::from_secs(6));
    // ...and they were closed after the read timeout, so the daemon answers as before.
    assert!(d.status()["targets"].is_array());
    let fds = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count();
    assert!(fds < 100, "{fds} descriptors open in the daemon");
    drop(idle);
}

/// A container a selector matches, created while the daemon is down, is recorded from its
/// creation once the daemon is back (the pinned programs adopted it meanwhile).
#[test]
fn a_container_created_while_the_daemon_is_down_is_claimed_by_its_selector() {
    preflight();
    let name = "st-e2e-down-1";
    let _c = cleanup(&[name]);
    let dir = workdir("down-selector");
    let mut d = Daemon::start(&dir);
    d.ok(&["add", "st-e2e-down-*"]);
    d.term();
    let script = format!(
        "/probe direct {} >/dev/null; while true; do sleep 0.2; done",
        nr("getcpu")
    );
    busybox(name, &script, None);
    sleep(Duration::from_secs(1));
    d.restart();
    let t0 = Instant::now();
    loop {
        let status = d.status();
        let found = status["targets"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == name));
        if found {
            assert!(target_status(&status, name)["running"] == true);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{name} never claimed: {status}\n{}",
            d.text()
        );
        sleep(Duration::from_millis(500));
    }
    let export = d.ok(&["export", name]);
    assert!(export.contains("\"getcpu\""), "{export}\n{}", d.text());
    assert!(!d.text().contains("LATE"), "{}", d.text());
    let out = tracer(&["status", "--socket", d.socket.to_str().unwrap()], &[]);
    assert!(out.status.success());
}

/// What the kernel recorded without any event (a new argument value of a call already seen)
/// is in the next checkpoint: after kill -9 and the loss of the pinned maps (a reboot), the
/// restarted daemon still has it.
#[test]
fn a_checkpoint_saves_what_no_event_announced() {
    preflight();
    let name = "st-e2e-args";
    let _c = cleanup(&[name]);
    let dir = workdir("ckpt-args");
    busybox(name, "while true; do sleep 0.2; done", None);
    let mut d = Daemon::start(&dir);
    d.ok(&["add", name]);
    let socket = nr("socket").to_string();
    // AF_UNIX first: `socket` is seen (an event)...
    docker(&["exec", name, "/rawcall", &socket, "1", "1", "0"]);
    sleep(Duration::from_secs(3));
    // ...then AF_INET6: a new value of a call already seen, which no event announces.
    docker(&["exec", name, "/rawcall", &socket, "10", "1", "0"]);
    sleep(Duration::from_secs(3));
    d.kill9();
    // A reboot: the pinned maps are gone, only the state file remains.
    let pins = d.pins();
    let _ = std::fs::remove_dir_all(&pins);
    d.restart();
    let profile = dir.join("args.json");
    d.ok(&["export", name, "-o", profile.to_str().unwrap()]);
    let families: Vec<u64> = rules_for(&profile, "socket")
        .iter()
        .filter_map(|r| r["args"][0]["value"].as_u64())
        .collect();
    assert!(
        families.contains(&1) && families.contains(&10),
        "socket families after the reboot: {families:?}\n{}",
        d.text()
    );
}

/// bpffs, when the daemon has to mount it, is mounted 0700 (not the default that lets every
/// user pin there); a pin directory others can write is refused. In a private mount
/// namespace, so that the host's bpffs is not touched.
#[test]
fn bpffs_is_mounted_private_and_a_shared_pin_directory_is_refused() {
    preflight();
    let dir = workdir("bpffs");
    let script = format!(
        "umount /sys/fs/bpf 2>/dev/null; \
         {bin} daemon --state-dir {d}/state --socket {d}/s.sock > {d}/log 2>&1 & pid=$!; \
         for i in $(seq 1 300); do grep -q 'daemon:' {d}/log && break; sleep 0.1; done; \
         echo mode=$(stat -c %a /sys/fs/bpf); kill $pid; wait $pid; \
         umount /sys/fs/bpf; mount -t bpf -o mode=1777 bpf /sys/fs/bpf; \
         mkdir -m 777 /sys/fs/bpf/seccomp-tracer; chmod 777 /sys/fs/bpf/seccomp-tracer; \
         timeout 20 {bin} daemon --state-dir {d}/state2 --socket {d}/s2.sock; echo exit=$?",
        bin = tracer_bin().display(),
        d = dir.display()
    );
    let text = format!(
        "{}{}",
        e2e::in_private_mount_ns(&script),
        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
    );
    // bpffs keeps the sticky bit on its root whatever the mode.
    assert!(
        text.contains("mode=700") || text.contains("mode=1700"),
        "{text}"
    );
    assert!(text.contains("exit=1"), "{text}");
    assert!(text.contains("others can write"), "{text}");
}
