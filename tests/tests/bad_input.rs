//! Bad input: profile files that are not files (a FIFO, /dev/zero, a directory) or too large,
//! profiles with unknown names and actions, names that are terminal escapes, and a kernel too
//! old for the programs. Needs neither Docker nor root; fails (never skips) without a built
//! tracer.

use std::{
    ffi::CString,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use e2e::{assert_one_line_error, tracer, tracer_bin, workdir};

/// Fails (never skips) without the binary under test.
fn built() {
    assert!(
        tracer_bin().exists(),
        "{} is not built",
        tracer_bin().display()
    );
}

/// A temporary directory of its own, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        built();
        Self(workdir(test))
    }

    /// Writes `text` to `name` in the directory; its path as a string.
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write a profile");
        path_str(&p)
    }

    fn path(&self, name: &str) -> String {
        path_str(&self.0.join(name))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 temp path").to_string()
}

/// `seccomp-tracer ARGS` with 2 GiB of address space and 20 s: reading /dev/zero whole, or
/// waiting for a FIFO's writer, fails the test instead of taking the machine or hanging it.
fn tracer_bounded(args: &[&str]) -> Output {
    let mut cmd = Command::new(tracer_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches only the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn seccomp-tracer");
    let t0 = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "seccomp-tracer {args:?} still running after 20 s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn profile(rules: &str) -> String {
    format!(r#"{{ "defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{rules}] }}"#)
}

const READ: &str = r#"{ "names": ["read", "write"], "action": "SCMP_ACT_ALLOW" }"#;

#[test]
fn profile_files_must_be_regular_files_of_at_most_16_mib() {
    let dir = Scratch::new("bad-input-files");
    let good = dir.file("good.json", &profile(READ));
    let fifo = dir.path("fifo.json");
    let c = CString::new(fifo.as_str()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let out = dir.path("merged.json");
    let cases: [(&[&str], &str); 6] = [
        (
            &["explain", "/dev/zero"],
            "/dev/zero is not a regular file (a character device)",
        ),
        (
            &["diff", &good, &fifo],
            &format!("{fifo} is not a regular file (a FIFO)"),
        ),
        (
            &["explain", "/tmp"],
            "/tmp is not a regular file (a directory)",
        ),
        (
            &["merge", &good, "/dev/zero", "-o", &out],
            "/dev/zero is not a regular file",
        ),
        (
            &["merge", &good, &fifo, "-o", &out],
            "is not a regular file (a FIFO)",
        ),
        (&["explain", &dir.path("missing.json")], "cannot read"),
    ];
    for (args, needle) in cases {
        assert_one_line_error(&tracer_bounded(args), needle);
    }
    assert!(!Path::new(&out).exists(), "merge wrote {out} anyway");

    // Larger than the limit: refused by its size, before it is read.
    let big = dir.path("big.json");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(17 << 20))
        .expect("sparse file");
    assert_one_line_error(&tracer_bounded(&["explain", &big]), "is larger than 16 MiB");

    // A symlink to a profile is read through.
    let link = dir.path("link.json");
    std::os::unix::fs::symlink(&good, &link).expect("symlink");
    let res = tracer_bounded(&["diff", &good, &link]);
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(res.status.success(), "{res:?}");
    assert!(stdout.contains("allow the same 2 syscalls"), "{stdout}");
}

#[test]
fn unknown_names_are_a_located_warning_and_other_mistakes_a_located_error() {
    let dir = Scratch::new("bad-input-names");
    let arch = std::env::consts::ARCH;
    // What Docker accepts and ignores is a warning that says where; the command goes on.
    let typo = dir.file(
        "typo.json",
        &profile(&format!(
            r#"{READ}, {{ "names": ["getpid", "fooo"], "action": "SCMP_ACT_ALLOW" }},
               {{ "names": null, "action": "SCMP_ACT_ALLOW" }}"#
        )),
    );
    let out = tracer(&["explain", &typo], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.trim(),
        format!(
            "seccomp-tracer: warning: {typo}: syscalls[1].names[1]: unknown syscall \"fooo\" on \
             {arch}; ignored\n\
             seccomp-tracer: warning: {typo}: syscalls[2].names: null instead of a list of \
             syscall names; the rule is ignored"
        )
    );
    // Ignored as Docker ignores it: not counted as allowed.
    assert!(stdout.contains(": 3 syscalls allowed;"), "{stdout}");
    // merge goes on too, without the name.
    let merged = dir.path("merged.json");
    let out = tracer(&["merge", &typo, &typo, "-o", &merged], &[]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&merged).expect("merged");
    assert!(!text.contains("fooo") && text.contains("getpid"), "{text}");
    // i386 names (a 32-bit call in a 64-bit container) are names.
    if arch == "x86_64" {
        let compat = dir.file(
            "compat.json",
            &profile(r#"{ "names": ["socketcall", "_llseek"], "action": "SCMP_ACT_ALLOW" }"#),
        );
        let out = tracer(&["explain", &compat], &[]);
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    }

    // What Docker refuses is an error that says where.
    let cases = [
        (
            profile(&format!(
                r#"{READ}, {{ "names": ["read"], "action": "SCMP_ACT_NOPE" }}"#
            )),
            "syscalls[1].action: unknown action SCMP_ACT_NOPE",
        ),
        (
            r#"{ "defaultAction": "SCMP_ACT_MAYBE", "syscalls": [] }"#.to_string(),
            "defaultAction: unknown action SCMP_ACT_MAYBE",
        ),
        (
            profile(&format!(
                r#"{READ}, {{ "names": ["read", ""], "action": "SCMP_ACT_ALLOW" }}"#
            )),
            "syscalls[1].names[1]: an empty syscall name",
        ),
    ];
    let good = dir.file("good.json", &profile(READ));
    for (text, needle) in cases {
        let p = dir.file("bad.json", &text);
        for args in [vec!["explain", &p], vec!["diff", &good, &p]] {
            assert_one_line_error(&tracer(&args, &[]), &format!("{p}: {needle}"));
        }
    }
}

#[test]
fn names_from_a_profile_never_reach_the_terminal_as_escapes() {
    let dir = Scratch::new("bad-input-escapes");
    // ESC [2J clears the screen; CSI (U+009B) is ESC [ on many terminals.
    let clear = dir.file(
        "clear.json",
        r#"{ "defaultAction": "SCMP_ACT_ERRNO", "archMap": [], "syscalls": [
            { "names": ["read", "\u001b[2J", "\u009b2J"], "action": "SCMP_ACT_ALLOW",
              "comment": "refused by the profile in force while recording" } ] }"#,
    );
    let plain = dir.file("plain.json", &profile(READ));
    let action = dir.file(
        "action.json",
        &profile(r#"{ "names": ["read"], "action": "SCMP_ACT_\u001b[2J" }"#),
    );
    for args in [
        vec!["explain", &clear],
        vec!["diff", &clear, &plain],
        vec!["diff", &plain, &clear],
        vec!["explain", &action],
    ] {
        let out = tracer(&args, &[]);
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.chars().any(|c| c == '\u{1b}' || c == '\u{9b}'),
                "{args:?}: a raw escape on {stream}: {text:?}"
            );
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(r"\u{1b}[2J"), "{args:?}: {err}");
    }
}

#[test]
fn tracing_commands_refuse_a_kernel_older_than_5_15() {
    built();
    // setarch's UNAME26 personality makes uname(2) say 2.6.<minor + 60>.
    let mut release = Command::new("setarch");
    let release = e2e::sh(release.args(["--uname-2.6", "uname", "-r"]));
    let release = String::from_utf8_lossy(&release.stdout).trim().to_string();
    assert!(
        release.starts_with("2.6."),
        "setarch --uname-2.6: {release}"
    );
    for cmd in ["record", "check"] {
        let out = e2e::sh(
            Command::new("setarch")
                .arg("--uname-2.6")
                .arg(tracer_bin())
                .args([cmd, "--cgroup", "/no/such/cgroup"]),
        );
        assert_one_line_error(
            &out,
            &format!("Linux {release} is too old: seccomp-tracer needs Linux 5.15 or later"),
        );
    }
}
