//! Unit tests of profile files: loading, diff, explain and provenance side files.
use super::*;

fn p(names: &[&str]) -> Profile {
    Profile {
        allowed: names.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn diff_both_ways() {
    let d = diff(&p(&["read", "mbind"]), &p(&["read", "write"]), "a", "b");
    assert_eq!(d, "only a allows (1): mbind\nonly b allows (1): write\n");
    assert!(diff(&p(&["read"]), &p(&["read"]), "a", "b").contains("the same 1"));
}

/// x86_64 on Linux 6.8.
fn host() -> Host {
    Host {
        arch: Arch::X86_64,
        kernel: crate::privileges::KernelVersion { major: 6, minor: 8 },
    }
}

#[test]
fn explain_names_the_capability() {
    let mut prof = p(&["read", "mbind", "keyctl", "bpf", "ptrace"]);
    prof.refused.insert("mbind".into());
    let e = explain(&prof, host(), "db.json", None).unwrap();
    assert!(
        e.contains("  mbind: Docker's default allows it with --cap-add SYS_NICE\n"),
        "{e}"
    );
    assert!(e.contains("  bpf: Docker's default allows it with --cap-add BPF (least privilege), or SYS_ADMIN\n"), "{e}");
    assert!(
        e.contains("  keyctl: no capability makes Docker's default allow it\n"),
        "{e}"
    );
    assert!(!e.contains("ptrace"), "allowed from Linux 4.8: {e}");
    assert!(
        e.contains("refused while recording (and allowed here): mbind"),
        "{e}"
    );
    let n = explained(&prof, host(), "db.json").unwrap().default_allows;
    assert!(e.starts_with(&format!("db.json: 5 syscalls allowed; Docker's default allows {n} with any arguments on x86_64 (Linux 6.8, default capabilities)\n")), "{e}");
}

#[test]
fn explain_json_has_the_verdicts() {
    let prof = p(&["read", "mbind", "move_pages", "socket"]);
    let v = serde_json::to_value(explained(&prof, host(), "db.json").unwrap()).unwrap();
    assert_eq!(
        v["beyond_default"],
        serde_json::json!([
            {"name": "mbind", "verdict": "capability", "capabilities": ["CAP_SYS_NICE"]},
            {"name": "move_pages", "verdict": "never"},
            {"name": "socket", "verdict": "arguments"}
        ])
    );
    assert_eq!(v["allowed"], 4);
    assert_eq!(v["arch"], "x86_64");
    assert_eq!(v["kernel"], "6.8");
}

fn with_rule(names: &[&str], call: &str, value: u64) -> Profile {
    let mut prof = p(names);
    let c =
        crate::profile::args::condition(crate::profile::args::arg_call_of(call).unwrap(), value);
    prof.conditions
        .insert(call.into(), [c].into_iter().collect());
    prof
}

#[test]
fn diff_reports_argument_rules() {
    let a = with_rule(&["read", "socket"], "socket", 1);
    let b = p(&["read", "socket"]);
    let d = diff(&a, &b, "a", "b");
    assert!(
        d.contains("  socket: a: only AF_UNIX; b: any arguments"),
        "{d}"
    );
    assert!(diff(&a, &a, "a", "b").contains("the same 2"));
}

/// `diff --json`: the same information as the text, under the documented names.
#[test]
fn diff_as_json_has_both_sides_and_the_rule_differences() {
    let a = with_rule(&["read", "socket", "mbind"], "socket", 1);
    let b = p(&["read", "socket", "write", "keyctl"]);
    let v = serde_json::to_value(differences(&a, &b, "a.json", "b\u{1b}.json")).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "a": "a.json",
            "b": "b\\u{1b}.json",
            "identical": false,
            "allowed_by_both": 2,
            "only_in_a": ["mbind"],
            "only_in_b": ["keyctl", "write"],
            "argument_rules_differ": [
                {"name": "socket", "a": "only AF_UNIX", "b": "any arguments"}
            ]
        })
    );
    let same = differences(&a, &a, "a", "b");
    assert!(same.identical && same.only_in_a.is_empty() && same.argument_rules_differ.is_empty());
    assert_eq!(same.allowed_by_both, 3);
    // Rules alone make two profiles differ.
    assert!(
        !differences(
            &a,
            &with_rule(&["read", "socket", "mbind"], "socket", 2),
            "a",
            "b"
        )
        .identical
    );
}

#[test]
fn reports_escape_what_came_from_a_file() {
    let mut a = p(&["read", "\u{1b}[2J"]);
    a.refused.insert("\u{9b}31m".into());
    a.allowed.insert("\u{9b}31m".into());
    let d = diff(&a, &p(&["read"]), "a\u{7}.json", "b.json");
    assert_eq!(
        d,
        "only a\\u{7}.json allows (2): \\u{1b}[2J, \\u{9b}31m\nonly b.json allows (0): (none)\n"
    );
    let e = explain(&a, host(), "\u{1b}]0;x\u{7}", None).unwrap();
    assert!(!e.contains(['\u{1b}', '\u{9b}', '\u{7}']), "{e:?}");
    assert!(e.starts_with("\\u{1b}]0;x\\u{7}: 3 syscalls"), "{e}");
    assert!(
        e.lines()
            .next()
            .unwrap()
            .ends_with(" on x86_64 (Linux 6.8, default capabilities)"),
        "{e}"
    );
    assert!(
        e.contains("refused while recording (and allowed here): \\u{9b}31m\n"),
        "{e}"
    );
}

#[test]
fn explain_says_which_program_made_a_call_first_when_it_knows() {
    let prof = p(&["read", "mbind", "keyctl"]);
    let why = WhyFile::parse(
        br#"{"version": 1, "arch": "x86_64", "calls": {"mbind": {"program": "numa-probe",
            "pid": 9, "first_seen": "2026-11-27T09:41:07Z", "refused": true}}}"#,
    )
    .unwrap();
    let e = explain(&prof, host(), "db.json", Some(&why)).unwrap();
    assert!(
        e.contains(
            "--cap-add SYS_NICE; first by numa-probe at 2026-11-27 09:41:07 UTC (pid 9, refused)\n"
        ),
        "{e}"
    );
    assert!(
        e.contains("no capability makes Docker's default allow it; first sighting not recorded\n"),
        "{e}"
    );
    // Without the side file, as before.
    assert!(!explain(&prof, host(), "db.json", None)
        .unwrap()
        .contains("first"));
}

#[test]
fn the_why_file_is_read_only_when_it_is_a_small_regular_provenance_file() {
    let dir = Scratch::new("why-files");
    let profile = dir.0.join("db.json");
    let side = dir.0.join("db.why.json");
    assert_eq!(load_why(&profile), None, "none there");
    let good = WhyFile::new(Arch::X86_64, &Default::default());
    std::fs::write(&side, serde_json::to_vec(&good.to_json()).unwrap()).unwrap();
    assert_eq!(load_why(&profile), Some(good));
    std::fs::write(&side, b"{not json").unwrap();
    assert_eq!(load_why(&profile), None, "malformed: ignored");
    let f = File::create(&side).unwrap();
    f.set_len(MAX_WHY_BYTES + 1).unwrap();
    assert_eq!(load_why(&profile), None, "too large: ignored");
    std::fs::remove_file(&side).unwrap();
    let c = std::ffi::CString::new(side.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert_eq!(load_why(&profile), None, "a FIFO is not opened for reading");
}

#[test]
fn warnings_are_capped_per_file() {
    let w = |i: usize| FormatWarning::UnknownSyscall {
        at: format!("syscalls[{i}].names[0]"),
        name: "fooo".into(),
        arch: "x86_64",
    };
    let lines = warning_lines("p\u{1b}.json", &(0..25).map(w).collect::<Vec<_>>());
    assert_eq!(lines.len(), MAX_WARNINGS + 1);
    assert_eq!(
        lines[0],
        "warning: p\\u{1b}.json: syscalls[0].names[0]: unknown syscall \"fooo\" on x86_64; ignored"
    );
    assert_eq!(
        lines[MAX_WARNINGS],
        "warning: p\\u{1b}.json: 15 more warnings like these"
    );
    assert_eq!(warning_lines("p", &[w(0)]).len(), 1);
    assert!(warning_lines("p", &[]).is_empty());
}

/// A directory of its own under the temporary one, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let d =
            std::env::temp_dir().join(format!("seccomp-tracer-unit-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn only_regular_files_up_to_the_limit_are_read() {
    let dir = Scratch::new("profile-files");
    let err = |path: &Path| read_bounded(path).unwrap_err().to_string();
    let good = dir.0.join("good.json");
    std::fs::write(&good, "{}").unwrap();
    let fifo = dir.0.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(err(&fifo)
        .ends_with("fifo is not a regular file (a FIFO): give the path of a profile file"));
    assert_eq!(
        err(Path::new("/dev/zero")),
        "/dev/zero is not a regular file (a character device): give the path of a profile file"
    );
    assert!(err(&dir.0).contains("(a directory)"));
    let link = dir.0.join("link.json");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    assert_eq!(read_bounded(&link).unwrap(), b"{}");
    // At the limit is read; one byte more is not.
    let big = dir.0.join("big.json");
    let f = File::create(&big).unwrap();
    f.set_len(MAX_PROFILE_BYTES).unwrap();
    assert_eq!(read_bounded(&big).unwrap().len() as u64, MAX_PROFILE_BYTES);
    f.set_len(MAX_PROFILE_BYTES + 1).unwrap();
    assert!(err(&big).ends_with("big.json is larger than 16 MiB: not a seccomp profile"));
    assert!(err(&dir.0.join("missing")).starts_with("cannot read "));
}

#[test]
fn explain_knows_dockers_argument_rules() {
    // clone without namespace flags is within Docker's default; with one it is not.
    let e = explain(&with_rule(&["clone"], "clone", 0), host(), "x", None).unwrap();
    assert!(
        e.contains("everything it allows, Docker's default allows too"),
        "{e}"
    );
    assert!(e.contains("  clone: no namespace flag"), "{e}");
    let e = explain(
        &with_rule(&["unshare"], "unshare", 0x0400_0000),
        host(),
        "x",
        None,
    )
    .unwrap();
    assert!(
        e.contains(
            "  unshare (only CLONE_NEWUTS): Docker's default allows it with --cap-add SYS_ADMIN\n"
        ),
        "{e}"
    );
    let e = explain(&with_rule(&["socket"], "socket", 40), host(), "x", None).unwrap();
    assert!(
        e.contains("  socket (only AF_VSOCK): Docker's default allows only some argument values of it, fewer than here\n"),
        "{e}"
    );
    let e = explain(&with_rule(&["socket"], "socket", 1), host(), "x", None).unwrap();
    assert!(
        e.contains("everything it allows, Docker's default allows too"),
        "{e}"
    );
}
