//! Docker helpers: containers of the test images st-busybox and st-bookworm, their removal,
//! and running a call under a profile.

use std::{collections::BTreeSet, path::Path, process::Command, thread::sleep, time::Duration};

use crate::harness::{nr, sh, unseen};

/// Runs docker with `args`; panics with its stderr if it fails.
pub fn docker(args: &[&str]) -> String {
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
pub struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
    }
}

/// Removes the named containers left by an earlier run now, and again when the guard drops.
pub fn cleanup(names: &[&str]) -> Cleanup {
    let c = Cleanup(names.iter().map(|s| s.to_string()).collect());
    for n in &c.0 {
        let _ = Command::new("docker").args(["rm", "-f", n]).output();
    }
    c
}

/// Starts `sh -c script` in st-busybox without network, under `profile` if given.
pub fn busybox(name: &str, script: &str, profile: Option<&Path>) {
    let opt = profile.map(seccomp_opt);
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    if let Some(opt) = &opt {
        args.extend(["--security-opt", opt.as_str()]);
    }
    args.extend(["st-busybox", "sh", "-c", script]);
    docker(&args);
}

/// Starts `cmd` in st-bookworm, under `profile` if given.
pub fn bookworm(name: &str, cmd: &[&str], profile: Option<&Path>) {
    let opt = profile.map(seccomp_opt);
    let mut args = vec!["run", "-d", "--name", name];
    if let Some(opt) = &opt {
        args.extend(["--security-opt", opt.as_str()]);
    }
    args.push("st-bookworm");
    args.extend(cmd);
    docker(&args);
}

/// The `--security-opt` value that runs a container under `profile`.
pub fn seccomp_opt(profile: &Path) -> String {
    format!("seccomp={}", profile.display())
}

/// A harmless call the workload never made gets EPERM under its profile.
pub fn assert_unseen_refused(profile: &Path, image: &str, allowed: &BTreeSet<String>) {
    let call = unseen(allowed);
    assert_eq!(
        errno_under(profile, image, call),
        "errno=1",
        "{call} not refused"
    );
}

/// `/rawcall NR` in `image` under `profile`: the errno the profile gives a call never made.
pub fn errno_under(profile: &Path, image: &str, syscall: &str) -> String {
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

/// `docker run st-busybox /rawcall ARGS...` with `opts`; its "errno=E" line.
pub fn rawcall_in_container(opts: &[&str], args: &[String]) -> String {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend(opts);
    a.extend(["st-busybox", "/rawcall"]);
    a.extend(args.iter().map(String::as_str));
    docker(&a)
}

/// The container's address on Docker's default bridge.
pub fn ip_of(container: &str) -> String {
    let ip = docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", container]);
    assert!(!ip.is_empty(), "{container} has no IP address");
    ip
}

/// After two seconds, the container still runs and has not exited; panics with its logs.
pub fn assert_running(container: &str) {
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
