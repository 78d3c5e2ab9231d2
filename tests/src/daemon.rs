//! A `seccomp-tracer daemon` under test, and reading its status.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output},
    thread::sleep,
    time::{Duration, Instant},
};

use crate::harness::{tracer, tracer_bin};

/// A `seccomp-tracer daemon` with its own state directory and socket; killed when dropped.
pub struct Daemon {
    child: Child,
    log: PathBuf,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its state directory.
    pub state: PathBuf,
}

/// The syscall programs' links, pinned by a daemon while it records.
pub const SYSCALL_LINKS: [&str; 2] = ["link_sys_enter", "link_sys_exit"];

impl Daemon {
    /// Starts a daemon with its socket, state and log in `dir`; returns once it answers.
    pub fn start(dir: &Path) -> Self {
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

    /// Like [`start`](Self::start), with `extra` daemon arguments.
    pub fn start_with(dir: &Path, extra: &[&str]) -> Self {
        let socket = dir.join("ctl.sock");
        let state = dir.join("state");
        let log = dir.join("daemon.log");
        let mut d = Daemon {
            child: Self::spawn(&log, &socket, &state, extra),
            log,
            socket,
            state,
        };
        d.wait_ready();
        d
    }

    fn spawn(log: &Path, socket: &Path, state: &Path, extra: &[&str]) -> Child {
        Self::spawn_env(log, socket, state, extra, &[])
    }

    fn spawn_env(
        log: &Path,
        socket: &Path,
        state: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Child {
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
            .envs(env.iter().copied())
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

    /// Its log so far.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs the client command `seccomp-tracer ARGS` against its socket.
    pub fn client(&self, args: &[&str]) -> Output {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--socket", self.socket.to_str().unwrap()]);
        tracer(&a, &[])
    }

    /// Runs a client command that must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.client(args);
        assert!(
            out.status.success(),
            "{args:?}: {}\ndaemon log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `status --json`, parsed.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).expect("status --json is JSON")
    }

    /// Waits up to `limit` for `status --json` to satisfy `ok`; fails saying `what` otherwise.
    pub fn wait_status(
        &self,
        what: &str,
        limit: std::time::Duration,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) {
        let t0 = std::time::Instant::now();
        loop {
            let s = self.status();
            if ok(&s) {
                return;
            }
            assert!(t0.elapsed() < limit, "{what}: {s}\n{}", self.text());
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// SIGKILL, and the daemon's exit: no clean-up of its own.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same socket and state; returns once it answers.
    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    /// Starts it again with `extra` daemon arguments; returns once it answers.
    /// Like [`start`](Self::start), with environment variables (the test knobs).
    pub fn start_env(dir: &Path, env: &[(&str, &str)]) -> Self {
        let socket = dir.join("ctl.sock");
        let state = dir.join("state");
        let log = dir.join("daemon.log");
        let mut d = Daemon {
            child: Self::spawn_env(&log, &socket, &state, &[], env),
            log,
            socket,
            state,
        };
        d.wait_ready();
        d
    }

    pub fn restart_with(&mut self, extra: &[&str]) {
        self.child = Self::spawn(&self.log, &self.socket, &self.state, extra);
        self.wait_ready();
    }

    /// SIGTERM, and the daemon's exit.
    pub fn term(&mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }

    /// The bpffs directory of its pins, from its start-up line.
    pub fn pins(&self) -> PathBuf {
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
    pub fn syscall_links(&self) -> Vec<&'static str> {
        let pins = self.pins();
        SYSCALL_LINKS
            .into_iter()
            .filter(|l| pins.join(l).exists())
            .collect()
    }

    /// Its resident memory, in KiB.
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn rss_kib(&self) -> u64 {
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

/// The entry for target `name` in a `status --json` document; panics if it is absent.
pub fn target_status<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in {status}"))
}
