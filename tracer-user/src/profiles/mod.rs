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

/// What one profile allows that the other does not, as `diff --json` writes it. Every string
/// (the names too) is [`escape`]d: it comes from a file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProfileDiff {
    /// The first profile's path, as given.
    pub a: String,
    /// The second profile's path, as given.
    pub b: String,
    /// Both allow the same calls with the same argument rules.
    pub identical: bool,
    /// How many calls both allow (with the same rules or not).
    pub allowed_by_both: usize,
    /// Calls only `a` allows, sorted.
    pub only_in_a: Vec<String>,
    /// Calls only `b` allows, sorted.
    pub only_in_b: Vec<String>,
    /// Calls both allow, with different argument rules, sorted by name.
    pub argument_rules_differ: Vec<RuleDifference>,
}

/// A call both profiles allow, with different argument rules.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleDifference {
    pub name: String,
    /// Its rule in `a`, in words: `any arguments`, or `only ...` (`only AF_UNIX, AF_INET`).
    pub a: String,
    /// Its rule in `b`, the same way.
    pub b: String,
}

/// What one profile allows that the other does not, argument rules included.
pub fn differences(a: &Profile, b: &Profile, a_name: &str, b_name: &str) -> ProfileDiff {
    let names = |set: std::collections::btree_set::Difference<'_, String>| -> Vec<String> {
        set.map(|n| escape(n).into_owned()).collect()
    };
    let only_in_a = names(a.allowed.difference(&b.allowed));
    let only_in_b = names(b.allowed.difference(&a.allowed));
    let argument_rules_differ: Vec<RuleDifference> = a
        .allowed
        .intersection(&b.allowed)
        .filter(|n| a.conditions.get(*n) != b.conditions.get(*n))
        .map(|n| RuleDifference {
            name: escape(n).into_owned(),
            a: rule_of(a, n),
            b: rule_of(b, n),
        })
        .collect();
    ProfileDiff {
        a: escape(a_name).into_owned(),
        b: escape(b_name).into_owned(),
        identical: only_in_a.is_empty() && only_in_b.is_empty() && argument_rules_differ.is_empty(),
        allowed_by_both: a.allowed.intersection(&b.allowed).count(),
        only_in_a,
        only_in_b,
        argument_rules_differ,
    }
}

/// [`differences`] in words.
pub fn diff(a: &Profile, b: &Profile, a_name: &str, b_name: &str) -> String {
    let d = differences(a, b, a_name, b_name);
    let (a_name, b_name) = (&d.a, &d.b);
    if d.identical {
        return format!(
            "{a_name} and {b_name} allow the same {} syscalls\n",
            d.allowed_by_both
        );
    }
    let mut out = format!(
        "only {a_name} allows ({}): {}\nonly {b_name} allows ({}): {}\n",
        d.only_in_a.len(),
        list(&d.only_in_a),
        d.only_in_b.len(),
        list(&d.only_in_b)
    );
    if !d.argument_rules_differ.is_empty() {
        out.push_str("allowed by both with different argument rules:\n");
        for r in &d.argument_rules_differ {
            out.push_str(&format!(
                "  {}: {a_name}: {}; {b_name}: {}\n",
                r.name, r.a, r.b
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
mod tests;
