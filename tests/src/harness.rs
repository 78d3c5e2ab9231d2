//! The tool under test: where its binary is, running it, a recording in progress, and reading
//! the profiles it writes.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use seccomp_tracer::syscalls::Arch;

/// The seccomp-tracer binary: `$SECCOMP_TRACER`, else the workspace's debug build.
pub fn tracer_bin() -> PathBuf {
    match std::env::var_os("SECCOMP_TRACER") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/seccomp-tracer"),
    }
}

/// The host architecture's number of syscall `name`; panics if it has none.
pub fn nr(name: &str) -> u32 {
    Arch::host()
        .and_then(|a| a.number(name))
        .unwrap_or_else(|| panic!("no syscall {name} on this architecture"))
}

/// Every test's first call: fails (never skips) without root, a running Docker engine and a
/// built tracer.
pub fn preflight() {
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

/// Runs `cmd` to completion; panics only if it cannot be started.
pub fn sh(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// A fresh, empty temporary directory for `test`.
pub fn workdir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("seccomp-tracer-e2e-{test}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Runs `seccomp-tracer ARGS` to completion.
pub fn tracer(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(tracer_bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    sh(&mut cmd)
}

/// A running `seccomp-tracer record`, its output going to a file we can poll.
pub struct Recording {
    /// The `seccomp-tracer record` process.
    pub child: Child,
    /// Its standard output and error.
    pub log: PathBuf,
}

impl Recording {
    /// Starts `seccomp-tracer record ARGS`, logging into `dir`; returns once it records.
    pub fn start(args: &[&str], dir: &Path) -> Self {
        Self::start_env(args, dir, &[])
    }

    /// Like [`start`](Self::start), with environment variables (the test knobs).
    pub fn start_env(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_sub("record", args, dir, env, "recording ")
    }

    /// `seccomp-tracer SUB ARGS` (record, check), returning once its output has `ready`.
    pub fn start_sub(
        sub: &str,
        args: &[&str],
        dir: &Path,
        env: &[(&str, &str)],
        ready: &str,
    ) -> Self {
        let log = dir.join(format!("{sub}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(tracer_bin())
            .arg(sub)
            .args(args)
            .envs(env.iter().copied())
            .stdout(file.try_clone().expect("dup"))
            .stderr(file)
            .spawn()
            .expect("spawn seccomp-tracer");
        let mut r = Self { child, log };
        r.wait_for(ready, Duration::from_secs(120));
        r
    }

    /// Its output so far.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its output contains `needle`; panics after `limit` or if it exits first.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) {
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
    pub fn stop(self) -> String {
        self.stop_with(libc::SIGINT)
    }

    /// Ctrl-C; its exit status and whole output.
    pub fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().expect("wait");
        (status, self.text())
    }

    /// Sends `signal`, then the whole output; panics unless it exits 0.
    pub fn stop_with(mut self, signal: i32) -> String {
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

/// The calls a Docker-format `profile` allows; asserts its default action refuses.
pub fn allowed_names(profile: &Path) -> BTreeSet<String> {
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

/// The rules of `profile` that name `call`, with their `args`.
pub fn rules_for(profile: &Path, call: &str) -> Vec<serde_json::Value> {
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

/// A harmless call the profile does not allow (so the check that it is refused means something).
pub fn unseen(allowed: &BTreeSet<String>) -> &'static str {
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

/// A failure with one line on stderr that contains `needle`, and no panic.
pub fn assert_one_line_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success: {err}"
    );
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Runs shell `script` in a private mount namespace (what it mounts leaves the host's mounts
/// alone); its standard output and error, together.
pub fn in_private_mount_ns(script: &str) -> String {
    let out = sh(Command::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
    ]));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
