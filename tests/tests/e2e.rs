//! End-to-end tests against a real Docker engine and the real kernel programs. They need root,
//! BPF and Docker, and fail (never skip) without them. Run through `cargo xtask test`, which
//! installs and starts everything and builds the images st-busybox and st-bookworm offline.

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use seccomp_tracer::syscalls::Arch;

fn tracer_bin() -> PathBuf {
    match std::env::var_os("SECCOMP_TRACER") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/seccomp-tracer"),
    }
}

fn nr(name: &str) -> u32 {
    Arch::host()
        .and_then(|a| a.number(name))
        .unwrap_or_else(|| panic!("no syscall {name} on this architecture"))
}

fn preflight() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the end-to-end tests need root"
    );
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .map(|o| o.status.success());
    assert!(
        matches!(ok, Ok(true)),
        "Docker is not running: run `cargo xtask test`"
    );
    assert!(
        tracer_bin().exists(),
        "{} is not built",
        tracer_bin().display()
    );
}

fn sh(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Runs docker with `args`; panics with its stderr if it fails.
fn docker(args: &[&str]) -> String {
    let out = sh(Command::new("docker").args(args));
    assert!(
        out.status.success(),
        "docker {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes the named containers when dropped, so a failing test leaves nothing behind.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
    }
}

fn cleanup(names: &[&str]) -> Cleanup {
    let c = Cleanup(names.iter().map(|s| s.to_string()).collect());
    for n in &c.0 {
        let _ = Command::new("docker").args(["rm", "-f", n]).output();
    }
    c
}

fn workdir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("seccomp-tracer-e2e-{test}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A running `seccomp-tracer record`, its output going to a file we can poll.
struct Recording {
    child: Child,
    log: PathBuf,
}

impl Recording {
    fn start(args: &[&str], dir: &Path) -> Self {
        let log = dir.join("record.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(tracer_bin())
            .arg("record")
            .args(args)
            .stdout(file.try_clone().expect("dup"))
            .stderr(file)
            .spawn()
            .expect("spawn seccomp-tracer");
        let mut r = Self { child, log };
        r.wait_for("recording ", Duration::from_secs(120));
        r
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&mut self, needle: &str, limit: Duration) {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if self.text().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "seccomp-tracer exited ({status}) before `{needle}`:\n{}",
                    self.text()
                );
            }
            sleep(Duration::from_millis(100));
        }
        panic!("no `{needle}` after {limit:?}:\n{}", self.text());
    }

    /// Ctrl-C, then the whole output; panics unless it exits 0.
    fn stop(self) -> String {
        self.stop_with(libc::SIGINT)
    }

    fn stop_with(mut self, signal: i32) -> String {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let status = self.child.wait().expect("wait");
        let text = self.text();
        assert!(
            status.success(),
            "seccomp-tracer failed ({status}):\n{text}"
        );
        text
    }
}

fn allowed_names(profile: &Path) -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(profile).unwrap_or_else(|e| panic!("{}: {e}", profile.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("profile is JSON");
    assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
    v["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
        .flat_map(|r| r["names"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(String::from))
        .collect()
}

/// Starts `sh -c script` in st-busybox without network, under `profile` if given.
fn busybox(name: &str, script: &str, profile: Option<&Path>) {
    let opt = profile.map(seccomp_opt);
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    if let Some(opt) = &opt {
        args.extend(["--security-opt", opt.as_str()]);
    }
    args.extend(["st-busybox", "sh", "-c", script]);
    docker(&args);
}

/// Starts `cmd` in st-bookworm, under `profile` if given.
fn bookworm(name: &str, cmd: &[&str], profile: Option<&Path>) {
    let opt = profile.map(seccomp_opt);
    let mut args = vec!["run", "-d", "--name", name];
    if let Some(opt) = &opt {
        args.extend(["--security-opt", opt.as_str()]);
    }
    args.push("st-bookworm");
    args.extend(cmd);
    docker(&args);
}

/// A harmless call the workload never made gets EPERM under its profile.
fn assert_unseen_refused(profile: &Path, image: &str, allowed: &BTreeSet<String>) {
    let call = unseen(allowed);
    assert_eq!(
        errno_under(profile, image, call),
        "errno=1",
        "{call} not refused"
    );
}

fn seccomp_opt(profile: &Path) -> String {
    format!("seccomp={}", profile.display())
}

/// `/rawcall NR` in `image` under `profile`: the errno the profile gives a call never made.
fn errno_under(profile: &Path, image: &str, syscall: &str) -> String {
    docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        &seccomp_opt(profile),
        image,
        "/rawcall",
        &nr(syscall).to_string(),
    ])
}

/// A harmless call the profile does not allow (so the check that it is refused means something).
fn unseen(allowed: &BTreeSet<String>) -> &'static str {
    [
        "getcpu",
        "mincore",
        "sched_getaffinity",
        "getrusage",
        "times",
        "sysinfo",
        "getpriority",
    ]
    .into_iter()
    .find(|n| !allowed.contains(*n))
    .expect("some harmless call is not allowed")
}

fn ip_of(container: &str) -> String {
    let ip = docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", container]);
    assert!(!ip.is_empty(), "{container} has no IP address");
    ip
}

fn connect(addr: &str) -> TcpStream {
    let t0 = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                return s;
            }
            Err(e) if t0.elapsed() > Duration::from_secs(30) => panic!("connect {addr}: {e}"),
            Err(_) => sleep(Duration::from_millis(200)),
        }
    }
}

/// `n` SET/GET round trips to Redis; returns the last reply.
fn redis_load(ip: &str, n: usize) -> String {
    let mut s = connect(&format!("{ip}:6379"));
    let mut buf = [0u8; 4096];
    let mut last = String::new();
    for i in 0..n {
        let cmd = format!(
            "*3\r\n$3\r\nSET\r\n$5\r\nkey{:02}\r\n$5\r\nv{:04}\r\n*1\r\n$4\r\nPING\r\n",
            i % 100,
            i % 10000
        );
        s.write_all(cmd.as_bytes()).expect("redis write");
        let mut got = String::new();
        while !got.contains("PONG") {
            let k = s.read(&mut buf).expect("redis read");
            assert!(k > 0, "redis closed the connection");
            got.push_str(&String::from_utf8_lossy(&buf[..k]));
        }
        last = got;
    }
    last
}

fn http_get(ip: &str) -> String {
    let mut s = connect(&format!("{ip}:80"));
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        .expect("http write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn assert_running(container: &str) {
    sleep(Duration::from_secs(2));
    let state = docker(&[
        "inspect",
        "-f",
        "{{.State.Running}} {{.State.ExitCode}}",
        container,
    ]);
    let logs = sh(Command::new("docker").args(["logs", container]));
    assert_eq!(
        state,
        "true 0",
        "{container} does not run under the learned profile; logs:\n{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
}

/// The shell workload's loop: a call only in a second thread, one only in a child process,
/// and mbind, which Docker's default profile refuses.
fn shell_script() -> String {
    format!(
        "i=0; while true; do /probe thread {} child {} direct {} epoll_file 0 > /tmp/probe.out; \
         i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done",
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

/// Runs `seccomp-tracer ARGS` to completion.
fn tracer(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(tracer_bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    sh(&mut cmd)
}

fn assert_one_line_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success: {err}"
    );
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
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

/// Runs the host's probe binary with `args` inside cgroup `cg` (joined before the exec); it
/// must succeed.
fn probe_in_cgroup(cg: &Path, args: &str) {
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec {PROBE} {args}",
        cg.display()
    );
    let out = sh(Command::new("sh").args(["-c", &script]));
    assert!(
        out.status.success(),
        "probe {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The probe fixture built for the host by the images script.
const PROBE: &str = "/var/tmp/seccomp-tracer-images/bin/probe";

#[test]
fn cgroup_target_records_a_process_outside_docker() {
    preflight();
    let dir = workdir("cgroup");
    let root = seccomp_tracer::target::cgroup::cgroup2_root().expect("cgroup2");
    let cg = root.join("seccomp-tracer-e2e");
    let _ = std::fs::create_dir(&cg);
    let profile = dir.join("cg.json");
    let rec = Recording::start(
        &[
            "--cgroup",
            cg.to_str().unwrap(),
            "-o",
            profile.to_str().unwrap(),
        ],
        &dir,
    );
    probe_in_cgroup(&cg, &format!("thread {}", nr("getcpu")));
    // Host processes have no seccomp filter: their calls count as the target's own.
    sleep(Duration::from_millis(500));
    let text = rec.stop();
    let _ = std::fs::remove_dir(&cg);
    let allowed = allowed_names(&profile);
    assert!(allowed.contains("getcpu"), "{text}");
    assert!(text.contains("without a seccomp filter"), "{text}");
}

/// A task that installs its seccomp filter itself: its calls before are set-up, left out; its
/// calls after are the profile, and so is a sibling thread's call right after a TSYNC install,
/// made before the installing thread makes another call. With and without refusal detection:
/// the kernel ends an install at its sys_exit, or else at the task's next call.
#[test]
fn calls_after_a_task_installs_its_filter_are_told_from_set_up() {
    preflight();
    let root = seccomp_tracer::target::cgroup::cgroup2_root().expect("cgroup2");
    let cg = root.join("seccomp-tracer-e2e-install");
    let _ = std::fs::create_dir(&cg);
    for refusals in [true, false] {
        let dir = workdir(if refusals {
            "install"
        } else {
            "install-no-refusals"
        });
        let profile = dir.join("installs.json");
        let mut args = vec![
            "--cgroup",
            cg.to_str().unwrap(),
            "-o",
            profile.to_str().unwrap(),
            "--no-runtime-baseline",
        ];
        if !refusals {
            args.push("--no-refusals");
        }
        let rec = Recording::start(&args, &dir);
        for probe_args in [
            format!(
                "direct {} tsync_filter {} direct {}",
                nr("getcpu"),
                nr("times"),
                nr("sysinfo")
            ),
            format!(
                "direct {} prctl_filter 0 direct {}",
                nr("getcpu"),
                nr("getrusage")
            ),
        ] {
            probe_in_cgroup(&cg, &probe_args);
        }
        sleep(Duration::from_millis(500));
        let text = rec.stop();
        let allowed = allowed_names(&profile);
        for call in ["times", "sysinfo", "getrusage"] {
            assert!(
                allowed.contains(call),
                "refusals {refusals}: {call}, made after the install, missing: {allowed:?}\n{text}"
            );
        }
        assert!(
            !allowed.contains("getcpu"),
            "refusals {refusals}: getcpu, made before the install, is in: {allowed:?}\n{text}"
        );
    }
    let _ = std::fs::remove_dir(&cg);
}

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
}

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

/// The rules of `profile` that name `call`, with their `args`.
fn rules_for(profile: &Path, call: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(profile).expect("profile");
    let v: serde_json::Value = serde_json::from_str(&text).expect("profile is JSON");
    v["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .filter(|r| {
            r["names"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n == call))
        })
        .cloned()
        .collect()
}

/// `docker run st-busybox /rawcall ARGS...` with `opts`; its "errno=E" line.
fn rawcall_in_container(opts: &[&str], args: &[String]) -> String {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend(opts);
    a.extend(["st-busybox", "/rawcall"]);
    a.extend(args.iter().map(String::as_str));
    docker(&a)
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

/// A `seccomp-tracer daemon` with its own state directory and socket; killed when dropped.
struct Daemon {
    child: Child,
    log: PathBuf,
    socket: PathBuf,
    state: PathBuf,
}

/// The syscall programs' links, pinned by a daemon while it records.
const SYSCALL_LINKS: [&str; 2] = ["link_sys_enter", "link_sys_exit"];

impl Daemon {
    fn start(dir: &Path) -> Self {
        let socket = dir.join("ctl.sock");
        let state = dir.join("state");
        let log = dir.join("daemon.log");
        let mut d = Daemon {
            child: Self::spawn(&log, &socket, &state, &[]),
            log,
            socket,
            state,
        };
        d.wait_ready();
        d
    }

    fn spawn(log: &Path, socket: &Path, state: &Path, extra: &[&str]) -> Child {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        Command::new(tracer_bin())
            .args(["daemon", "--checkpoint", "2", "--socket"])
            .arg(socket)
            .arg("--state-dir")
            .arg(state)
            .args(extra)
            .stdout(file.try_clone().expect("dup"))
            .stderr(file)
            .spawn()
            .expect("spawn the daemon")
    }

    fn wait_ready(&mut self) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(120) {
            if self.client(&["status"]).status.success() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the daemon exited ({status}):\n{}", self.text());
            }
            sleep(Duration::from_millis(200));
        }
        panic!("the daemon never answered:\n{}", self.text());
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn client(&self, args: &[&str]) -> Output {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--socket", self.socket.to_str().unwrap()]);
        tracer(&a, &[])
    }

    /// Runs a client command that must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.client(args);
        assert!(
            out.status.success(),
            "{args:?}: {}\ndaemon log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).expect("status --json is JSON")
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.restart_with(&[]);
    }

    fn restart_with(&mut self, extra: &[&str]) {
        self.child = Self::spawn(&self.log, &self.socket, &self.state, extra);
        self.wait_ready();
    }

    /// SIGTERM, and the daemon's exit.
    fn term(&mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }

    /// The bpffs directory of its pins, from its start-up line.
    fn pins(&self) -> PathBuf {
        let text = self.text();
        let pins = text
            .rsplit("(/sys/fs/bpf/")
            .next()
            .and_then(|r| r.split(')').next())
            .unwrap_or_else(|| panic!("no pin directory in the log:\n{text}"));
        Path::new("/sys/fs/bpf").join(pins)
    }

    /// Which of [`SYSCALL_LINKS`] are pinned: the syscall programs attached. (A pinned link
    /// the daemon holds no descriptor of is detached when unpinned.)
    fn syscall_links(&self) -> Vec<&'static str> {
        let pins = self.pins();
        SYSCALL_LINKS
            .into_iter()
            .filter(|l| pins.join(l).exists())
            .collect()
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("daemon status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.term();
        // The pins keep the programs attached after the daemon stops (by design): remove them,
        // as a user uninstalling would.
        if self.text().contains("(/sys/fs/bpf/") {
            if let Some(state_pins) = self.pins().parent() {
                let _ = std::fs::remove_dir_all(state_pins);
            }
        }
    }
}

fn target_status<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in {status}"))
}

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
    let t0 = Instant::now();
    while !target_status(&d.status(), name)["refused"]
        .as_array()
        .is_some_and(|r| r.iter().any(|c| c == "mbind"))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "mbind not reported refused: {}\n{}",
            d.status(),
            d.text()
        );
        sleep(Duration::from_millis(200));
    }

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
    let d = Daemon::start(&dir);
    d.ok(&[&["add"][..], &names[..]].concat());
    sleep(Duration::from_secs(10));
    let rss_start = d.rss_kib();
    let t0 = Instant::now();
    let mut rss_max = rss_start;
    while t0.elapsed() < Duration::from_secs(secs) {
        sleep(Duration::from_secs(5));
        rss_max = rss_max.max(d.rss_kib());
        let s = d.status();
        for n in names {
            assert!(target_status(&s, n)["running"] == true, "{s}");
        }
    }
    let s = d.status();
    eprintln!(
        "soak {secs}s: daemon RSS {rss_start} KiB at start, max {rss_max} KiB; kernel: {} syscalls, {} drops",
        s["syscalls"], s["ring_drops"]
    );
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

/// Calls that are harmless with all-zero arguments (most fail with EFAULT or EINVAL, after
/// passing sys_enter like any call).
const STORM_CALLS: [&str; 24] = [
    "getcpu",
    "getpriority",
    "getitimer",
    "getrusage",
    "sysinfo",
    "times",
    "getsid",
    "getpgid",
    "capget",
    "sched_getscheduler",
    "sched_get_priority_max",
    "getresuid",
    "getresgid",
    "clock_getres",
    "getrlimit",
    "sigaltstack",
    "rt_sigpending",
    "ioprio_get",
    "get_mempolicy",
    "membarrier",
    "getgroups",
    "sched_getaffinity",
    "uname",
    "gettimeofday",
];

/// 1,000 traced cgroups, each with a process making its own mix of calls, all at once: many
/// thousands of first sightings in a burst, more than the ring buffer holds. The bitmaps are
/// the authority, so however many events drop, no cgroup's profile may lose a call.
#[test]
fn a_storm_across_1000_cgroups_loses_no_syscall() {
    preflight();
    const N: usize = 1000;
    let dir = workdir("storm");
    let root = seccomp_tracer::target::cgroup::cgroup2_root().expect("cgroup2");
    let parent = root.join("seccomp-tracer-e2e-storm");
    let _ = std::fs::create_dir(&parent);
    let cgroups: Vec<PathBuf> = (0..N)
        .map(|i| {
            let cg = parent.join(format!("c{i:04}"));
            let _ = std::fs::create_dir(&cg);
            cg
        })
        .collect();
    let out = dir.join("profiles");
    std::fs::create_dir_all(&out).expect("profiles dir");
    let mut args: Vec<String> = Vec::new();
    for cg in &cgroups {
        args.extend(["--cgroup".to_string(), cg.display().to_string()]);
    }
    args.extend(["-o".to_string(), out.display().to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let rec = Recording::start(&argv, &dir);

    // Cgroup i makes calls i % 24, (i + 7) % 24 and (i + 13) % 24, each from its own process.
    let rawcall = "/var/tmp/seccomp-tracer-images/bin/rawcall";
    let mix = |i: usize| [i % 24, (i + 7) % 24, (i + 13) % 24].map(|k| STORM_CALLS[k]);
    // Each subshell moves itself ("0" is the writer) into its cgroup, then runs its calls.
    let mut script = format!("R={rawcall}\n");
    for (i, cg) in cgroups.iter().enumerate() {
        let calls: Vec<String> = mix(i).iter().map(|c| format!("$R {}", nr(c))).collect();
        script += &format!(
            "(echo 0 > {}/cgroup.procs && {}) >/dev/null 2>&1 &\n",
            cg.display(),
            calls.join("; ")
        );
    }
    script += "wait\n";
    let script_file = dir.join("storm.sh");
    std::fs::write(&script_file, script).expect("script");
    let t0 = Instant::now();
    let status = sh(Command::new("sh").arg(&script_file)).status;
    assert!(status.success());
    let burst = t0.elapsed();
    sleep(Duration::from_millis(500));
    let text = rec.stop();
    let mut lost = Vec::new();
    for (i, cg) in cgroups.iter().enumerate() {
        let name = cg.file_name().unwrap().to_str().unwrap();
        let allowed = allowed_names(&out.join(format!("{name}.json")));
        for call in mix(i) {
            if !allowed.contains(call) {
                lost.push(format!("{name}:{call}"));
            }
        }
    }
    for cg in &cgroups {
        let _ = std::fs::remove_dir(cg);
    }
    let _ = std::fs::remove_dir(&parent);
    let summary = text.lines().rev().find(|l| l.contains("ring-buffer drops"));
    eprintln!(
        "storm: {N} cgroups in {burst:?}; {}",
        summary.unwrap_or("?")
    );
    assert!(
        lost.is_empty(),
        "lost {} calls: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
}
