//! Faults a recording must survive without losing what it learned: a full disk, a closed
//! terminal, a hang-up under `nohup`, the same target named twice, many containers restarted
//! at once. Needs root, BPF and Docker; fails (never skips) without them.

use std::{
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread::sleep,
    time::Duration,
};

use e2e::{allowed_names, busybox, cleanup, nr, preflight, sh, tracer_bin, workdir, PROBE};

/// A cgroup of our own under the cgroup2 root, removed when dropped.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(rel: &str) -> Self {
        let root = seccomp_tracer::target::cgroup::cgroup2_root().expect("cgroup2");
        let p = root.join(rel);
        std::fs::create_dir_all(&p).expect("mkdir cgroup");
        Cgroup(p)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// A process killed when dropped, so that a failing test leaves nothing running.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A shell in cgroup `cg` calling syscall `nr` every 0.2 s until dropped.
fn looping_probe(cg: &Path, nr: u32) -> Killed {
    let script = format!(
        "echo $$ > {}/cgroup.procs && while true; do {PROBE} direct {nr} >/dev/null; sleep 0.2; done",
        cg.display()
    );
    Killed(
        Command::new("sh")
            .args(["-c", &script])
            .spawn()
            .expect("spawn probe loop"),
    )
}

/// A disk full at every checkpoint and at the end: the checkpoints warn, the recording goes
/// on, and the final profile is written to a fallback file whose path is printed.
#[test]
fn a_full_disk_ends_neither_the_recording_nor_loses_the_profile() {
    preflight();
    let dir = workdir("full-disk");
    let mnt = dir.join("tiny");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = sh(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt));
    assert!(out.status.success(), "mount tmpfs: {out:?}");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.clone());
    let cg = Cgroup::new("st-e2e-full/x");
    let probe = looping_probe(&cg.0, nr("getcpu"));
    let profile = mnt.join("x.json");
    // Fill the disk once the destination was found writable.
    let fill = format!(
        "sleep 2; dd if=/dev/zero of={}/fill bs=4k 2>/dev/null; true",
        mnt.display()
    );
    let mut filler = Command::new("sh").args(["-c", &fill]).spawn().unwrap();
    let out = Command::new(tracer_bin())
        .args(["record", "--cgroup"])
        .arg(&cg.0)
        .args([
            "-o",
            profile.to_str().unwrap(),
            "--checkpoint",
            "1",
            "--duration",
            "6",
        ])
        .output()
        .expect("record");
    let _ = filler.wait();
    drop(probe);
    let err = String::from_utf8_lossy(&out.stderr);
    let text = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "the recording ended with an error:\n{text}"
    );
    assert!(
        err.contains("checkpoint failed (tried again later)"),
        "{text}"
    );
    let fallback = err
        .split("the profile was written to ")
        .nth(1)
        .and_then(|r| r.split(" instead").next())
        .unwrap_or_else(|| panic!("no fallback path printed:\n{text}"));
    assert!(
        allowed_names(Path::new(fallback)).contains("getcpu"),
        "{text}"
    );
    let _ = std::fs::remove_file(fallback);
}

/// A closed standard output (an SSH hang-up, `| head`) and a hang-up ignored by `nohup` end
/// nothing: the recording goes on and writes its profile at Ctrl-C.
#[test]
fn a_closed_terminal_and_an_ignored_hangup_keep_the_recording() {
    preflight();
    let dir = workdir("terminal");
    let cg = Cgroup::new("st-e2e-term/x");
    let probe = looping_probe(&cg.0, nr("getcpu"));
    let profile = dir.join("x.json");
    let mut cmd = Command::new(tracer_bin());
    cmd.args(["record", "--cgroup"])
        .arg(&cg.0)
        .args(["-o", profile.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: signal(2) in the child before exec, as nohup does.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("record");
    // The reader goes away: every later line the tool prints meets a closed pipe.
    drop(child.stdout.take());
    sleep(Duration::from_secs(3));
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    sleep(Duration::from_secs(1));
    assert!(
        child.try_wait().unwrap().is_none(),
        "a hang-up ignored by nohup ended the recording"
    );
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    drop(probe);
    assert!(
        status.success(),
        "record failed on a closed stdout: {status}"
    );
    assert!(allowed_names(&profile).contains("getcpu"));
}

/// The same cgroup named twice is one target with one file; two cgroups with the same name
/// get two files.
#[test]
fn targets_named_twice_write_one_file_and_namesakes_two() {
    preflight();
    let dir = workdir("namesakes");
    let a = Cgroup::new("st-e2e-a/x");
    let b = Cgroup::new("st-e2e-b/x");
    let pa = looping_probe(&a.0, nr("getcpu"));
    let pb = looping_probe(&b.0, nr("sysinfo"));
    let out = Command::new(tracer_bin())
        .args(["record", "--cgroup"])
        .arg(&a.0)
        .arg("--cgroup")
        .arg(&b.0)
        .arg("--cgroup")
        .arg(&a.0)
        .args(["-o", dir.to_str().unwrap(), "--duration", "3"])
        .output()
        .expect("record");
    drop((pa, pb));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("recording 2 targets"), "{text}");
    let x = allowed_names(&dir.join("x.json"));
    let x2 = allowed_names(&dir.join("x-2.json"));
    assert!(x.contains("getcpu") && !x.contains("sysinfo"), "{text}");
    assert!(x2.contains("sysinfo") && !x2.contains("getcpu"), "{text}");
}

/// `--restart` restarts every container at once: with four containers that each take their
/// 10 s stop timeout, all are restarted (and their startup observed) within 20 s.
#[test]
fn restart_restarts_every_container_at_once() {
    preflight();
    let names = ["st-e2e-rs-1", "st-e2e-rs-2", "st-e2e-rs-3", "st-e2e-rs-4"];
    let _c = cleanup(&names);
    let dir = workdir("restart-all");
    // sh as pid 1 ignores SIGTERM: each restart waits for the stop timeout.
    for n in names {
        busybox(n, "while true; do sleep 0.2; done", None);
    }
    let mut args = vec!["record"];
    args.extend(names);
    args.extend(["--restart", "--duration", "20", "-o", dir.to_str().unwrap()]);
    let out = Command::new(tracer_bin())
        .args(&args)
        .output()
        .expect("record");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in names {
        assert!(
            text.contains(&format!("{n}: restarted")),
            "{n} was not restarted within the duration:\n{text}"
        );
    }
    assert_eq!(
        text.matches("startup: observed on restart").count(),
        4,
        "{text}"
    );
}

/// A device or a link as destination is refused before recording starts and left as it was
/// (here `/dev/null` in a private mount namespace, so a regression cannot break the host's);
/// `-o -` writes the profile to standard output.
#[test]
fn devices_are_refused_as_destinations_and_dash_means_stdout() {
    preflight();
    let cg = Cgroup::new("st-e2e-dev/x");
    let _probe = looping_probe(&cg.0, nr("getcpu"));
    let script = format!(
        "mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 && \
         {} record --cgroup {} -o /dev/null --duration 1; echo exit=$?; stat -c %F /dev/null",
        tracer_bin().display(),
        cg.0.display()
    );
    let text = e2e::in_private_mount_ns(&script);
    assert!(text.contains("exit=1"), "{text}");
    assert!(text.contains("not a regular file"), "{text}");
    assert!(
        text.contains("character special file"),
        "/dev/null was replaced: {text}"
    );
    let out = Command::new(tracer_bin())
        .args(["record", "--cgroup"])
        .arg(&cg.0)
        .args(["-o", "-", "--duration", "2"])
        .output()
        .expect("record -o -");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let json = &stdout[stdout.find("\n{").expect("a JSON document") + 1..];
    let json = &json[..json.find("\n}\n").expect("its end") + 2];
    let doc: serde_json::Value = serde_json::from_str(json).expect("the profile");
    assert_eq!(doc["defaultAction"], "SCMP_ACT_ERRNO");
    assert!(!Path::new("-").exists(), "a file named - was written");
}

/// In a directory others can write (like /tmp), an unprivileged user plants a link at the
/// destination: the recording refuses it and the file it points to is left as it was.
#[test]
fn a_link_planted_by_another_user_is_never_written_through() {
    preflight();
    let dir = workdir("planted");
    let shared = dir.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let dest = shared.join("x.json");
    let out = sh(Command::new("setpriv").args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "ln",
        "-s",
        victim.to_str().unwrap(),
        dest.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "planting the link as nobody: {out:?}");
    let cg = Cgroup::new("st-e2e-planted/x");
    let _probe = looping_probe(&cg.0, nr("getcpu"));
    let out = Command::new(tracer_bin())
        .args(["record", "--cgroup"])
        .arg(&cg.0)
        .args(["-o", dest.to_str().unwrap(), "--duration", "1"])
        .output()
        .expect("record");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = std::fs::symlink_metadata(&dest).unwrap();
    assert!(
        meta.file_type().is_symlink(),
        "the planted link was replaced"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&shared).unwrap().flatten().collect();
    assert_eq!(leftovers.len(), 1, "temp files left behind: {leftovers:?}");
}
