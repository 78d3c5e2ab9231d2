//! Podman helpers (rootful, cgroupfs manager, crun: see xtask/scripts/engines.sh): containers of
//! the test images without network, removed on drop, and where their cgroups are.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::harness::{nr, sh};

/// Runs podman with `args`; panics with its output if it fails.
pub fn podman(args: &[&str]) -> String {
    let out = sh(Command::new("podman").args(args));
    assert!(
        out.status.success(),
        "podman {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A Podman container, removed (with a leftover of the same name) now and again on drop.
pub struct PodmanContainer {
    /// Its name (prefixed `st-e2e-`).
    pub name: String,
}

impl PodmanContainer {
    /// Claims `name`, removing a container of that name left by an earlier run.
    pub fn claim(name: &str) -> Self {
        assert!(name.starts_with("st-e2e-"), "test containers are st-e2e-*");
        let _ = Command::new("podman").args(["rm", "-f", name]).output();
        PodmanContainer {
            name: name.to_string(),
        }
    }

    /// Starts `sh -c script` in st-busybox, `--network none`, under `profile` if given.
    pub fn busybox(name: &str, script: &str, profile: Option<&Path>) -> Self {
        let c = Self::claim(name);
        let opt = profile.map(|p| format!("seccomp={}", p.display()));
        let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
        if let Some(opt) = &opt {
            args.extend(["--security-opt", opt.as_str()]);
        }
        args.extend(["st-busybox", "sh", "-c", script]);
        podman(&args);
        c
    }

    /// Its full id.
    pub fn id(&self) -> String {
        podman(&["inspect", "-f", "{{.Id}}", &self.name])
    }

    /// Its init process's pid on the host (0 when not running).
    pub fn pid(&self) -> u32 {
        let pid = podman(&["inspect", "-f", "{{.State.Pid}}", &self.name]);
        pid.parse()
            .unwrap_or_else(|e| panic!("pid `{pid}` of {}: {e}", self.name))
    }

    /// `podman exec NAME ARGS...`; its standard output.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut a = vec!["exec", self.name.as_str()];
        a.extend(args);
        podman(&a)
    }
}

impl Drop for PodmanContainer {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.name])
            .output();
    }
}

/// `/rawcall NR` of `syscall` in st-busybox under `profile`, through Podman: its "errno=E" line.
pub fn podman_errno_under(profile: &Path, syscall: &str) -> String {
    podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        &format!("seccomp={}", profile.display()),
        "st-busybox",
        "/rawcall",
        &nr(syscall).to_string(),
    ])
}

/// Where the cgroup2 hierarchy is mounted (`/sys/fs/cgroup/unified` on a hybrid host).
pub fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map(|f| PathBuf::from(f[1]))
        .expect("no cgroup2 hierarchy mounted")
}

/// The cgroup2 path of process `pid` (its `0::` line), relative to the hierarchy's root.
pub fn cgroup2_path_of(pid: u32) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/cgroup: {e}"));
    cg.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("process {pid} has no cgroup2 path:\n{cg}"))
        .to_string()
}

/// The cgroup path of process `pid` in the v1 hierarchy of `controller`, if it has one.
pub fn cgroup_v1_path_of(pid: u32, controller: &str) -> Option<String> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    cg.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        ctrls
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_string())
    })
}
