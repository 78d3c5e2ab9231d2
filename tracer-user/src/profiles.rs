//! `merge`, `diff` and `explain`: reading profile files of any format and reporting on them.
//! The logic is in `profile::formats` and `profile::advice`; this file does the file I/O.

use std::{
    collections::BTreeSet,
    fs::{File, FileType, OpenOptions},
    io::Read,
    os::unix::fs::{FileTypeExt, OpenOptionsExt},
    path::Path,
};

use thiserror::Error;

use crate::{
    profile::{
        advice::{docker_default, docker_default_allows, docker_default_covers},
        args::describe,
        formats::{self, escape, Format, FormatWarning, Parsed, Profile},
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

/// A profile against Docker's default: what it allows beyond it, why the default refuses
/// those and the capability that would allow them, its argument rules, counts, and what was
/// refused while recording. Every string printed is [`escape`]d.
pub fn explain(p: &Profile, arch: Arch, name: &str) -> String {
    explain_with(p, arch, name, None)
}

/// [`explain`], and with `why` (the profile's `<stem>.why.json`), which program made each
/// call beyond Docker's default first, and when.
pub fn explain_with(p: &Profile, arch: Arch, name: &str, why: Option<&WhyFile>) -> String {
    let name = escape(name);
    let default = docker_default_allows(arch);
    let mut out = format!(
        "{name}: {} syscalls allowed; Docker's default allows {} unconditionally on {}\n",
        p.allowed.len(),
        default.len(),
        formats::arch_name(arch)
    );
    if p.permissive {
        out.push_str("this profile allows every call not listed (defaultAction SCMP_ACT_ALLOW)\n");
    }
    let no_conditions = Default::default();
    let beyond: Vec<&String> = p
        .allowed
        .iter()
        .filter(|n| !docker_default_covers(n, p.conditions.get(*n).unwrap_or(&no_conditions)))
        .collect();
    if beyond.is_empty() {
        out.push_str("everything it allows, Docker's default allows too\n");
    } else {
        out.push_str("allowed here, refused by Docker's default:\n");
        for n in beyond {
            let Some(adv) = docker_default(n) else {
                continue;
            };
            let fix = match adv.capability {
                Some(cap) => format!("Docker's default allows it with --cap-add {cap}"),
                None => "no capability makes Docker's default allow it".into(),
            };
            let rule = match p.conditions.get(n) {
                Some(c) => format!(" (only {})", describe(n, c)),
                None => String::new(),
            };
            let first = why.map(|w| format!("; {}", w.describe(n, true)));
            let first = first.unwrap_or_default();
            out.push_str(&format!(
                "  {}{rule}: {}; {fix}{first}\n",
                escape(n),
                adv.reason
            ));
        }
    }
    if !p.conditions.is_empty() {
        out.push_str("argument rules (allowed only with the values seen):\n");
        for (n, c) in &p.conditions {
            out.push_str(&format!("  {}: {}\n", escape(n), describe(n, c)));
        }
    }
    let narrower: BTreeSet<&str> = default
        .iter()
        .copied()
        .filter(|n| !p.allowed.contains(*n))
        .collect();
    out.push_str(&format!(
        "refused here, allowed by Docker's default: {} syscalls\n",
        narrower.len()
    ));
    out.push_str(&format!(
        "refused while recording (and allowed here): {}\n",
        list(&p.refused)
    ));
    if p.complain {
        out.push_str("complain mode: calls not allowed are logged (SCMP_ACT_LOG), not refused\n");
    }
    out
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

    #[test]
    fn explain_names_the_capability() {
        let mut prof = p(&["read", "mbind", "keyctl"]);
        prof.refused.insert("mbind".into());
        let e = explain(&prof, Arch::X86_64, "db.json");
        assert!(e.contains("mbind: modifies kernel memory and NUMA settings; Docker's default allows it with --cap-add SYS_NICE"), "{e}");
        assert!(
            e.contains("keyctl: the kernel keyring is not namespaced; no capability"),
            "{e}"
        );
        assert!(
            e.contains("refused while recording (and allowed here): mbind"),
            "{e}"
        );
        let n = docker_default_allows(Arch::X86_64).len();
        assert!(n > 250 && n < 400, "{n}");
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
        let e = explain(&a, Arch::X86_64, "\u{1b}]0;x\u{7}");
        assert!(!e.contains(['\u{1b}', '\u{9b}', '\u{7}']), "{e:?}");
        assert!(e.starts_with("\\u{1b}]0;x\\u{7}: 3 syscalls"), "{e}");
        assert!(e.lines().next().unwrap().ends_with(" on x86_64"), "{e}");
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
        let e = explain_with(&prof, Arch::X86_64, "db.json", Some(&why));
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
        assert_eq!(
            explain_with(&prof, Arch::X86_64, "db.json", None),
            explain(&prof, Arch::X86_64, "db.json")
        );
        assert!(!explain(&prof, Arch::X86_64, "db.json").contains("first"));
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
        let e = explain(&with_rule(&["clone"], "clone", 0), Arch::X86_64, "x");
        assert!(
            e.contains("everything it allows, Docker's default allows too"),
            "{e}"
        );
        assert!(e.contains("  clone: no namespace flag"), "{e}");
        let e = explain(
            &with_rule(&["unshare"], "unshare", 0x0400_0000),
            Arch::X86_64,
            "x",
        );
        assert!(
            e.contains("  unshare (only CLONE_NEWUTS): creates or joins namespaces; Docker's default allows it with --cap-add SYS_ADMIN"),
            "{e}"
        );
    }
}
