//! `record` of Docker containers: a shell workload, Redis, nginx, `--wait` and re-creation, a
//! late attach, and its errors. Needs root, BPF and Docker; fails (never skips) without them.

use std::{process::Command, thread::sleep, time::Duration};

use e2e::{
    allowed_names, assert_one_line_error, assert_running, assert_unseen_refused, bookworm, busybox,
    cleanup, docker, http_get, ip_of, nr, preflight, redis_load, sh, tracer, tracer_bin, workdir,
    Recording,
};

/// The shell workload's loop: a call only in a second thread, one only in a child process,
/// and mbind, which Docker's default profile refuses.
fn shell_script() -> String {
    format!(
        "i=0; while true; do /probe thread {} child {} direct {} epoll_file 0 > /tmp/probe.new; \
         mv /tmp/probe.new /tmp/probe.out; i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done",
        nr("getcpu"),
        nr("sysinfo"),
        nr("mbind")
    )
}

#[test]
fn shell_workload_threads_children_exec_restart_and_refusals() {
    preflight();
    let name = "st-e2e-sh";
    let _c = cleanup(&[name, "st-e2e-sh-learned"]);
    let dir = workdir("sh");
    let profile = dir.join("sh.json");
    busybox(name, &shell_script(), None);
    let mut rec = Recording::start(&[name, "-o", profile.to_str().unwrap()], &dir);
    rec.wait_for(" getcpu", Duration::from_secs(30));
    // Only in a `docker exec` session.
    docker(&["exec", name, "/probe", "direct", &nr("times").to_string()]);
    docker(&["restart", "-t", "1", name]);
    rec.wait_for("new instance", Duration::from_secs(60));
    sleep(Duration::from_secs(2));
    let out = rec.stop();

    let allowed = allowed_names(&profile);
    for call in ["getcpu", "sysinfo", "times", "execve", "clone"] {
        assert!(
            allowed.contains(call),
            "{call} missing from the profile:\n{out}"
        );
    }
    // Refused by Docker's default profile: reported with its least-privilege fix, and allowed.
    assert!(
        out.contains("REFUSED mbind"),
        "mbind refusal not reported:\n{out}"
    );
    assert!(
        out.contains("--cap-add SYS_NICE"),
        "no capability advice:\n{out}"
    );
    assert!(allowed.contains("mbind"));
    // epoll_ctl on a regular file ran and failed with EPERM on its own: not a refusal.
    assert!(allowed.contains("epoll_ctl"), "{out}");
    assert!(
        !out.contains("REFUSED epoll_ctl"),
        "a plain EPERM was taken for a refusal:\n{out}"
    );
    assert!(out.contains("startup: observed on restart"), "{out}");
    // Runtime set-up calls made before the filter is installed stay out.
    for call in ["pivot_root", "mount", "sethostname"] {
        assert!(
            !allowed.contains(call),
            "{call} (runtime set-up) is in the profile"
        );
    }

    // The same image runs under the learned profile and does the same work...
    busybox("st-e2e-sh-learned", &shell_script(), Some(&profile));
    assert_running("st-e2e-sh-learned");
    let probe = docker(&["exec", "st-e2e-sh-learned", "cat", "/tmp/probe.out"]);
    assert!(
        probe.contains(&format!("nr={} errno=0", nr("getcpu"))),
        "{probe}"
    );
    assert!(
        probe.contains(&format!("nr={} errno=0", nr("mbind"))),
        "{probe}"
    );
    // ...and a call it never made is refused with EPERM.
    assert_unseen_refused(&profile, "st-busybox", &allowed);
}

#[test]
fn redis_under_load_restarted_by_the_restart_flag() {
    preflight();
    let name = "st-e2e-redis";
    let _c = cleanup(&[name, "st-e2e-redis-learned"]);
    let dir = workdir("redis");
    let profile = dir.join("redis.json");
    let cmd = [
        "redis-server",
        "--protected-mode",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    bookworm(name, &cmd, None);
    redis_load(&ip_of(name), 10);
    // --restart: the tool restarts it once right after attaching, so startup is covered.
    let mut rec = Recording::start(&[name, "--restart", "-o", profile.to_str().unwrap()], &dir);
    rec.wait_for("new instance", Duration::from_secs(60));
    assert!(redis_load(&ip_of(name), 3000).contains("PONG"));
    docker(&["exec", name, "/probe", "direct", &nr("times").to_string()]);
    let out = rec.stop();
    assert!(out.contains("startup: observed"), "{out}");
    let allowed = allowed_names(&profile);
    for call in ["bind", "listen", "epoll_wait", "times"] {
        assert!(allowed.contains(call), "{call} missing:\n{out}");
    }

    bookworm("st-e2e-redis-learned", &cmd, Some(&profile));
    assert_running("st-e2e-redis-learned");
    assert!(redis_load(&ip_of("st-e2e-redis-learned"), 500).contains("PONG"));
    assert_unseen_refused(&profile, "st-bookworm", &allowed);
}

/// A fresh container's first start does more than a restart (nginx creates and chowns its
/// temp directories), so a profile for new containers is recorded from creation.
#[test]
fn nginx_recorded_from_creation_with_a_restart_serves_under_its_profile() {
    preflight();
    let name = "st-e2e-nginx";
    let _c = cleanup(&[name, "st-e2e-nginx-learned"]);
    let dir = workdir("nginx");
    let profile = dir.join("nginx.json");
    let cmd = ["nginx", "-g", "daemon off;"];
    let mut rec = Recording::start(&[name, "--wait", "-o", profile.to_str().unwrap()], &dir);
    bookworm(name, &cmd, None);
    rec.wait_for("new instance", Duration::from_secs(60));
    for _ in 0..50 {
        assert!(http_get(&ip_of(name)).contains("200 OK"));
    }
    docker(&["restart", "-t", "2", name]);
    for _ in 0..50 {
        assert!(http_get(&ip_of(name)).contains("200 OK"));
    }
    let out = rec.stop();
    assert!(out.contains("startup: observed (2 new instances"), "{out}");
    let allowed = allowed_names(&profile);
    for call in ["bind", "listen", "accept4", "chown"] {
        assert!(allowed.contains(call), "{call} missing:\n{out}");
    }
    bookworm("st-e2e-nginx-learned", &cmd, Some(&profile));
    assert_running("st-e2e-nginx-learned");
    assert!(http_get(&ip_of("st-e2e-nginx-learned")).contains("200 OK"));
    assert_unseen_refused(&profile, "st-bookworm", &allowed);
}

#[test]
fn wait_records_from_creation_and_follows_recreation() {
    preflight();
    let name = "st-e2e-wait";
    let _c = cleanup(&[name, "st-e2e-wait-learned"]);
    let dir = workdir("wait");
    let profile = dir.join("wait.json");
    let mut rec = Recording::start(&[name, "--wait", "-o", profile.to_str().unwrap()], &dir);
    let loop_ = |call: &str| format!("while true; do /probe direct {}; sleep 0.2; done", nr(call));
    // Freeze the tracer while the container is created and started, so Docker's create event
    // is handled only after the cgroup exists: the kernel must have adopted it anyway.
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(rec.child.id() as i32, libc::SIGSTOP) };
    busybox(name, &loop_("getcpu"), None);
    sleep(Duration::from_millis(500));
    // SAFETY: as above.
    unsafe { libc::kill(rec.child.id() as i32, libc::SIGCONT) };
    rec.wait_for("new instance", Duration::from_secs(30));
    assert!(!rec.text().contains("LATE"), "{}", rec.text());
    rec.wait_for(" getcpu", Duration::from_secs(30));
    // Re-created under the same name, doing something else.
    docker(&["rm", "-f", name]);
    busybox(name, &loop_("sysinfo"), None);
    rec.wait_for(" sysinfo", Duration::from_secs(30));
    // SIGTERM (as from systemd or `docker stop` of a tracer container) also writes the profile.
    let out = rec.stop_with(libc::SIGTERM);
    let allowed = allowed_names(&profile);
    assert!(
        allowed.contains("getcpu") && allowed.contains("sysinfo"),
        "{out}"
    );
    assert!(out.contains("startup: observed"), "{out}");
    // Recorded from creation with --no-runtime-baseline's default off: it starts as is.
    busybox("st-e2e-wait-learned", &loop_("getcpu"), Some(&profile));
    assert_running("st-e2e-wait-learned");
}

#[test]
fn attached_late_without_restart_still_starts_thanks_to_the_runtime_baseline() {
    preflight();
    let name = "st-e2e-late";
    let _c = cleanup(&[name, "st-e2e-late-learned"]);
    let dir = workdir("late");
    let profile = dir.join("late.json");
    // pthread_create: glibc tries clone3 first, which Docker's default answers with ENOSYS.
    let script = format!(
        "while true; do /probe thread {} > /tmp/probe.out; sleep 0.2; done",
        nr("getcpu")
    );
    busybox(name, &script, None);
    let rec = Recording::start(
        &[
            name,
            "--duration",
            "3",
            "--exclude-refused",
            "-o",
            profile.to_str().unwrap(),
        ],
        &dir,
    );
    let mut child = rec.child;
    let status = child.wait().expect("wait");
    let out = std::fs::read_to_string(&rec.log).unwrap_or_default();
    assert!(status.success(), "{out}");
    assert!(out.contains("startup: NOT observed"), "{out}");
    assert!(out.contains("runtime baseline: added"), "{out}");
    assert!(out.contains("REFUSED clone3"), "{out}");
    let allowed = allowed_names(&profile);
    for call in ["setgroups", "capset"] {
        assert!(
            allowed.contains(call),
            "runtime call {call} missing:\n{out}"
        );
    }
    // Refused calls left out: clone3 is answered with ENOSYS, never EPERM.
    assert!(!allowed.contains("clone3"), "{out}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).expect("profile")).expect("json");
    let enosys = doc["syscalls"]
        .as_array()
        .expect("rules")
        .iter()
        .any(|r| r["names"] == serde_json::json!(["clone3"]) && r["errnoRet"] == 38);
    assert!(enosys, "no ENOSYS rule for clone3: {doc}");
    busybox("st-e2e-late-learned", &script, Some(&profile));
    assert_running("st-e2e-late-learned");
    // Threads still start (glibc fell back to clone) and make their call.
    let probe = docker(&["exec", "st-e2e-late-learned", "cat", "/tmp/probe.out"]);
    assert!(
        probe.contains(&format!("nr={} errno=0", nr("getcpu"))),
        "{probe}"
    );
}

#[test]
fn errors_are_one_clear_line_with_a_nonzero_exit() {
    preflight();
    let _c = cleanup(&["st-e2e-err"]);
    docker(&[
        "run",
        "-d",
        "--name",
        "st-e2e-err",
        "--network",
        "none",
        "st-busybox",
        "sleep",
        "600",
    ]);
    let out = tracer(&["record", "st-e2e-no-such-container"], &[]);
    assert_one_line_error(&out, "not found; running:");
    assert!(String::from_utf8_lossy(&out.stderr).contains("st-e2e-err"));
    let out = tracer(
        &["record", "st-e2e-err"],
        &[("DOCKER_HOST", "unix:///nonexistent.sock")],
    );
    assert_one_line_error(&out, "Docker is not reachable");
    let out = tracer(&["record", "--cgroup", "/no/such/cgroup"], &[]);
    assert_one_line_error(&out, "not found");
    let out = tracer(
        &["record", "st-e2e-err", "-o", "/nonexistent-dir/x.json"],
        &[],
    );
    assert_one_line_error(&out, "cannot write /nonexistent-dir/x.json");
    let out = tracer(&["record"], &[]);
    assert_one_line_error(&out, "nothing to record");
    // Not root: drop to nobody with no capabilities.
    let out = sh(Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(tracer_bin())
        .args(["record", "st-e2e-err"]));
    assert_one_line_error(&out, "needs root");
}
