//! `merge`, `diff` and `explain`: reading profile files of any format and reporting on them.
//! The logic is in `profile::formats` and `profile::moby`; this file does the file I/O.

use std::{
    fs::{File, FileType, OpenOptions},
    io::Read,
    os::unix::fs::{FileTypeExt, OpenOptionsExt},
    path::Path,
};

use thiserror::Error;

use crate::{
    profile::{
        args::describe,
        formats::{self, escape, Format, FormatWarning, Parsed, Profile},
        moby::{
            beyond_default, cap_add_name, BeyondDefault, Context, Host, MobyError, MobyProfile,
            Verdict,
        },
        why::{why_path, WhyFile, MAX_WHY_BYTES},
    },
    record::display,
    syscalls::Arch,
};

/// The largest profile file read. Docker's default profile is 13 KiB, a learned one a few; the
/// bound is what a wrong path (a disk image, a log) can make us read into memory.
pub const MAX_PROFILE_BYTES: u64 = 16 << 20;

/// Warnings printed per file; a file with more says how many it left out.
const MAX_WARNINGS: usize = 10;

/// Why a profile file could not be read. Paths are [`escape`]d like the profile's own strings:
/// they end up on the same terminal.
#[derive(Debug, Error)]
pub enum ProfileFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// A FIFO would block until a writer comes, a device may never end: only regular files
    /// (through symlinks) are profiles.
    #[error("{path} is not a regular file ({kind}): give the path of a profile file")]
    NotAFile { path: String, kind: &'static str },
    #[error("{path} is larger than {} MiB: not a seccomp profile", MAX_PROFILE_BYTES >> 20)]
    TooLarge { path: String },
    #[error("{path} is not JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path} is not YAML: {source}")]
    Yaml {
        path: String,
        source: serde_yaml_ng::Error,
    },
    #[error("{path}: {source}")]
    Format {
        path: String,
        source: formats::FormatError,
    },
}

/// What a file of `kind` is, for the error; `None` for a regular file.
fn not_a_file(kind: FileType) -> Option<&'static str> {
    Some(if kind.is_file() {
        return None;
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    })
}

/// The bytes of the profile file at `path`: a regular file (a symlink is followed) of at most
/// [`MAX_PROFILE_BYTES`]. What it is is checked before it is opened (opening a device can have
/// effects), and again on what was opened, without blocking (`O_NONBLOCK`: the path may have
/// become a FIFO in between); the read itself is bounded too, should the file grow.
fn read_bounded(path: &Path) -> Result<Vec<u8>, ProfileFileError> {
    let p = || escape(&path.display().to_string()).into_owned();
    let io = |source| ProfileFileError::Read { path: p(), source };
    let check = |kind: FileType, len: u64| match not_a_file(kind) {
        Some(kind) => Err(ProfileFileError::NotAFile { path: p(), kind }),
        None if len > MAX_PROFILE_BYTES => Err(ProfileFileError::TooLarge { path: p() }),
        None => Ok(()),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    check(meta.file_type(), meta.len())?;
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check(meta.file_type(), meta.len())?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return Err(ProfileFileError::TooLarge { path: p() });
    }
    Ok(bytes)
}

/// The profile in the file at `path`, in any format (YAML when the name ends in `.yaml` or
/// `.yml`, JSON otherwise), read for a host of `arch`; what Docker would ignore in it is in
/// the warnings.
pub fn read(path: &Path, arch: Arch) -> Result<Parsed, ProfileFileError> {
    let bytes = read_bounded(path)?;
    let p = || escape(&path.display().to_string()).into_owned();
    let doc: serde_json::Value = if formats::is_yaml_path(path) {
        serde_yaml_ng::from_slice(&bytes)
            .map_err(|source| ProfileFileError::Yaml { path: p(), source })?
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|source| ProfileFileError::Json { path: p(), source })?
    };
    formats::parse(&doc, arch).map_err(|source| ProfileFileError::Format { path: p(), source })
}

/// [`read`] on this host, its warnings printed on standard error (the first
/// [`MAX_WARNINGS`], then how many more).
pub fn load(path: &Path) -> Result<(Format, Profile), ProfileFileError> {
    let parsed = load_parsed(path)?;
    Ok((parsed.format, parsed.profile))
}

/// [`load`], with the architectures the file names. Unknown names are warned about as the
/// host's (x86_64 when the host is neither: the tables know names of every architecture).
pub fn load_parsed(path: &Path) -> Result<Parsed, ProfileFileError> {
    let arch = Arch::host().unwrap_or(Arch::X86_64);
    let parsed = read(path, arch)?;
    for line in warning_lines(&path.display().to_string(), &parsed.warnings) {
        display::warn(&line);
    }
    Ok(parsed)
}

/// The lines that report `warnings` about the file at `path`.
fn warning_lines(path: &str, warnings: &[FormatWarning]) -> Vec<String> {
    let path = escape(path);
    let mut lines: Vec<String> = warnings
        .iter()
        .take(MAX_WARNINGS)
        .map(|w| format!("warning: {path}: {w}"))
        .collect();
    if warnings.len() > MAX_WARNINGS {
        lines.push(format!(
            "warning: {path}: {} more warnings like these",
            warnings.len() - MAX_WARNINGS
        ));
    }
    lines
}

/// `names`, escaped, comma-separated.
fn list(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let v: Vec<String> = names
        .into_iter()
        .map(|n| escape(n.as_ref()).into_owned())
        .collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// A call's rule in words: `any arguments`, or its conditions.
fn rule_of(p: &Profile, name: &str) -> String {
    match p.conditions.get(name) {
        Some(c) => format!("only {}", describe(name, c)),
        None => "any arguments".into(),
    }
}

/// What one profile allows that the other does not, argument rules included. Every string
/// printed (the names too) is [`escape`]d: it comes from a file.
pub fn diff(a: &Profile, b: &Profile, a_name: &str, b_name: &str) -> String {
    let (a_name, b_name) = (escape(a_name), escape(b_name));
    let only_a: Vec<&String> = a.allowed.difference(&b.allowed).collect();
    let only_b: Vec<&String> = b.allowed.difference(&a.allowed).collect();
    let differ: Vec<&String> = a
        .allowed
        .intersection(&b.allowed)
        .filter(|n| a.conditions.get(*n) != b.conditions.get(*n))
        .collect();
    if only_a.is_empty() && only_b.is_empty() && differ.is_empty() {
        return format!(
            "{a_name} and {b_name} allow the same {} syscalls\n",
            a.allowed.len()
        );
    }
    let mut out = format!(
        "only {a_name} allows ({}): {}\nonly {b_name} allows ({}): {}\n",
        only_a.len(),
        list(&only_a),
        only_b.len(),
        list(&only_b)
    );
    if !differ.is_empty() {
        out.push_str("allowed by both with different argument rules:\n");
        for n in differ {
            out.push_str(&format!(
                "  {}: {a_name}: {}; {b_name}: {}\n",
                escape(n),
                rule_of(a, n),
                rule_of(b, n)
            ));
        }
    }
    out
}

/// A profile against Docker's default, as `explain` reports it (`--json` writes this).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Explained {
    pub profile: String,
    pub arch: &'static str,
    /// `MAJOR.MINOR`, what `minKernel` rules were evaluated against.
    pub kernel: String,
    /// Calls the profile allows (with any arguments or some).
    pub allowed: usize,
    /// Calls of the architecture's table Docker's default allows with any arguments, for a
    /// container with Docker's default capabilities.
    pub default_allows: usize,
    /// What the profile allows beyond Docker's default, by name.
    pub beyond_default: Vec<BeyondDefault>,
    /// Calls Docker's default allows that the profile refuses.
    pub narrower_than_default: usize,
    pub refused_while_recording: Vec<String>,
    pub complain: bool,
}

/// A profile against Docker's default for a container with the default capabilities on
/// `host`: what it allows beyond it and the verdict on each, counts, and what was refused
/// while recording. Every string from the file is [`escape`]d.
pub fn explained(p: &Profile, host: Host, name: &str) -> Result<Explained, MobyError> {
    let default = MobyProfile::docker_default()?;
    let ctx = Context::docker_default(host);
    let allows = default.allowed_names(host.arch, &ctx);
    let beyond = beyond_default(p, default, &ctx)
        .into_iter()
        .map(|b| BeyondDefault {
            name: escape(&b.name).into_owned(),
            ..b
        })
        .collect();
    Ok(Explained {
        profile: escape(name).into_owned(),
        arch: formats::arch_name(host.arch),
        kernel: host.kernel.to_string(),
        allowed: p.allowed.len(),
        default_allows: allows.len(),
        beyond_default: beyond,
        narrower_than_default: allows.iter().filter(|n| !p.allowed.contains(**n)).count(),
        refused_while_recording: p.refused.iter().map(|n| escape(n).into_owned()).collect(),
        complain: p.complain,
    })
}

/// One call beyond Docker's default, in words (`rule` is its argument rule, if any; `first`
/// who made it first).
fn beyond_line(b: &BeyondDefault, rule: &str, first: &str) -> String {
    let why = match &b.verdict {
        Verdict::Capability { capabilities } => {
            let names: Vec<&str> = capabilities.iter().map(|c| cap_add_name(c)).collect();
            match names.as_slice() {
                [one] => format!("Docker's default allows it with --cap-add {one}"),
                [first, rest @ ..] => format!(
                    "Docker's default allows it with --cap-add {first} (least privilege), or {}",
                    rest.join(", ")
                ),
                [] => String::new(),
            }
        }
        Verdict::Never => "no capability makes Docker's default allow it".into(),
        Verdict::Arguments => {
            "Docker's default allows only some argument values of it, fewer than here".into()
        }
    };
    format!("  {}{rule}: {why}{first}\n", b.name)
}

/// [`explained`] in words; with `why` (the profile's `<stem>.why.json`), which program made
/// each call beyond Docker's default first, and when.
pub fn explain(
    p: &Profile,
    host: Host,
    name: &str,
    why: Option<&WhyFile>,
) -> Result<String, MobyError> {
    let e = explained(p, host, name)?;
    let mut out = format!(
        "{}: {} syscalls allowed; Docker's default allows {} with any arguments on {} \
         (Linux {}, default capabilities)\n",
        e.profile, e.allowed, e.default_allows, e.arch, e.kernel
    );
    if p.permissive {
        out.push_str("this profile allows every call not listed (defaultAction SCMP_ACT_ALLOW)\n");
    }
    if e.beyond_default.is_empty() {
        out.push_str("everything it allows, Docker's default allows too\n");
    } else {
        out.push_str("allowed here, not by Docker's default:\n");
        for b in &e.beyond_default {
            // Names that needed escaping are no syscall's: they have no rule to show.
            let rule = p
                .conditions
                .get(b.name.as_str())
                .map(|c| format!(" (only {})", describe(&b.name, c)))
                .unwrap_or_default();
            let first = why
                .map(|w| format!("; {}", w.describe(&b.name, true)))
                .unwrap_or_default();
            out.push_str(&beyond_line(b, &rule, &first));
        }
    }
    if !p.conditions.is_empty() {
        out.push_str("argument rules (allowed only with the values seen):\n");
        for (n, c) in &p.conditions {
            out.push_str(&format!("  {}: {}\n", escape(n), describe(n, c)));
        }
    }
    out.push_str(&format!(
        "refused here, allowed by Docker's default: {} syscalls\n",
        e.narrower_than_default
    ));
    out.push_str(&format!(
        "refused while recording (and allowed here): {}\n",
        list(&e.refused_while_recording)
    ));
    if p.complain {
        out.push_str("complain mode: calls not allowed are logged (SCMP_ACT_LOG), not refused\n");
    }
    Ok(out)
}

/// The provenance side file next to the profile at `profile`, if there is one that can be
/// read: one that cannot (not a regular file, too large, malformed) is ignored with a warning.
pub fn load_why(profile: &Path) -> Option<WhyFile> {
    let path = why_path(profile);
    let shown = escape(&path.display().to_string()).into_owned();
    let ignored = |why: String| {
        display::warn(&format!("{shown}: {why}; first sightings not shown"));
        None
    };
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Ok(m) if m.is_file() && m.len() > MAX_WHY_BYTES => {
            return ignored(format!("larger than {} KiB", MAX_WHY_BYTES >> 10))
        }
        _ => {}
    }
    // Checks what the file is (no FIFO, no device) before and after opening it, like a profile.
    match read_bounded(&path) {
        Ok(bytes) if bytes.len() as u64 > MAX_WHY_BYTES => {
            ignored(format!("larger than {} KiB", MAX_WHY_BYTES >> 10))
        }
        Ok(bytes) => WhyFile::parse(&bytes).map_or_else(|e| ignored(e.to_string()), Some),
        Err(e) => ignored(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
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
        let c = crate::profile::args::condition(
            crate::profile::args::arg_call_of(call).unwrap(),
            value,
        );
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
            e.contains("--cap-add SYS_NICE; first by numa-probe at 2026-11-27 09:41:07 UTC (pid 9, refused)\n"),
            "{e}"
        );
        assert!(
            e.contains(
                "no capability makes Docker's default allow it; first sighting not recorded\n"
            ),
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
            let d = std::env::temp_dir()
                .join(format!("seccomp-tracer-unit-{test}-{}", std::process::id()));
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
            e.contains("  unshare (only CLONE_NEWUTS): Docker's default allows it with --cap-add SYS_ADMIN\n"),
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
}
