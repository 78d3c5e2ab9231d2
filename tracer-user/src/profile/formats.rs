//! Pure: one learned profile rendered for each platform (Docker/moby JSON, OCI runtime-spec
//! `linux.seccomp`, Kubernetes Security Profiles Operator resource), and read back from any
//! of them for merge, diff and explain. The documents are typed in `super::docs`; this module
//! picks the format, and holds the format-independent `Profile`.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use super::args::Condition;
use super::docs::{self, DockerProfile, DockerRule, LinuxSeccomp, Rule, SeccompProfile};
use crate::syscalls::Arch;

pub use super::docs::{kube_name, SPO_API_VERSION};

/// errno for everything not allowed; Docker's own default (EPERM).
pub const DEFAULT_ERRNO: u32 = 1;

/// Calls that must fail with ENOSYS rather than EPERM when not allowed, because libc falls back
/// to an older call only on ENOSYS (glibc's pthread_create uses clone3, then clone).
pub const ENOSYS_FALLBACK: &[&str] = &["clone3"];

/// Which document a profile is written as: `--format`, the control protocol's `format`, and
/// the writer's choice. Named `docker`, `oci` and `kubernetes` everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Docker/moby JSON (`docker run --security-opt seccomp=FILE`)
    Docker,
    /// OCI runtime-spec `linux.seccomp` (runc, crun, podman config.json)
    Oci,
    /// Security Profiles Operator SeccompProfile, plus `<name>.kubelet.json` (OCI form) for
    /// kubelet's seccomp/ directory
    Kubernetes,
}

impl Format {
    pub const ALL: [Self; 3] = [Self::Docker, Self::Oci, Self::Kubernetes];

    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Oci => "oci",
            Self::Kubernetes => "kubernetes",
        }
    }

    /// The files written next to a profile in this format.
    pub fn side_files(self) -> &'static [SideFile] {
        match self {
            // The resource goes to the operator; nodes without it take the plain JSON.
            Self::Kubernetes => &[SideFile::Kubelet],
            Self::Docker | Self::Oci => &[],
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown format `{0}`: docker, oci or kubernetes")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// A file written next to a profile, with the same profile in another format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SideFile {
    /// `<name>.kubelet.json`: what kubelet's `seccomp/` directory takes, in the OCI form
    /// (`architectures`, never `archMap`): containerd reads it into the OCI type, which has no
    /// `archMap` (i386 calls would lose their rules), and CRI-O and Docker read it too.
    Kubelet,
}

impl SideFile {
    pub fn format(self) -> Format {
        match self {
            Self::Kubelet => Format::Oci,
        }
    }

    /// Where it goes, next to the profile written at `output`.
    pub fn path(self, output: &Path) -> PathBuf {
        match self {
            Self::Kubelet => kubelet_path(output),
        }
    }
}

/// Whether a profile at `path` is YAML (`.yaml`, `.yml`): written so, and read so. What
/// `kubectl` users keep in git; anything else is JSON.
pub fn is_yaml_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// `web.json` (or `web.yaml`) -> `web.kubelet.json`
pub fn kubelet_path(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!("{stem}.kubelet.json"))
}

/// What a profile says, independent of its format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// Allowed: unconditionally, or only with the argument values in `conditions`.
    pub allowed: BTreeSet<String>,
    /// Of `allowed`, the calls allowed only when one of these conditions holds.
    pub conditions: BTreeMap<String, BTreeSet<Condition>>,
    /// Of `allowed`, those refused by the profile in force while recording.
    pub refused: BTreeSet<String>,
    /// Log instead of refusing what is not allowed (SCMP_ACT_LOG).
    pub complain: bool,
    /// Allow what is not listed (defaultAction SCMP_ACT_ALLOW): `allowed` is not all it
    /// allows. Never learned; only read from a file.
    pub permissive: bool,
}

impl Profile {
    /// The profile a composition describes.
    pub fn from_composition(c: &super::Composition, complain: bool) -> Self {
        Self {
            allowed: c.allowed.iter().map(|n| n.to_string()).collect(),
            conditions: c
                .conditions
                .iter()
                .map(|(n, c)| (n.to_string(), c.clone()))
                .collect(),
            refused: c.refused_included.iter().map(|n| n.to_string()).collect(),
            complain,
            permissive: false,
        }
    }

    /// Whether every call the profile does not list is allowed: its default action allows
    /// (SCMP_ACT_ALLOW, or SCMP_ACT_LOG, which logs and allows). SCMP_ACT_TRACE and
    /// SCMP_ACT_NOTIFY do not: without a tracer or an agent the call fails with ENOSYS.
    pub fn allows_unlisted(&self) -> bool {
        self.permissive || self.complain
    }
}

/// Why a document could not be read as a profile; `at` is where in it, as a JSON path
/// (`syscalls[3].action`, `spec.syscalls[0].names[1]`). These are errors because Docker refuses
/// such a profile too and the container does not start: moby cannot decode it (a field of the
/// wrong type), or runc cannot convert it (an action or operator libseccomp does not have, an
/// empty name, `name` and `names` in one rule). What Docker accepts is a [`FormatWarning`].
/// Strings taken from the document are [`escape`]d.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FormatError {
    #[error("not a seccomp profile: {0}")]
    NotAProfile(&'static str),
    #[error("{at}: unknown action {found}")]
    UnknownAction { at: String, found: String },
    #[error("{at}: unknown operator {found}")]
    UnknownOp { at: String, found: String },
    /// runc: "empty string is not a valid syscall".
    #[error("{at}: an empty syscall name")]
    EmptyName { at: String },
    /// moby: "use either 'name' or 'names'".
    #[error("{at}: both `name` and `names`; Docker takes one or the other")]
    NameAndNames { at: String },
    #[error("{at}: {found} is not a syscall name")]
    NotAName { at: String, found: String },
    /// Any other field of the wrong type, or a required one missing.
    #[error("{at}: {reason}")]
    Malformed { at: String, reason: String },
}

/// What a document says that Docker accepts and ignores: a warning (with where it is), and the
/// profile read without it. Most often a mistake, so it is worth a word; never an error, since
/// Docker runs the container with the profile as it is.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FormatWarning {
    /// A syscall name no architecture has: runc skips a name libseccomp cannot resolve
    /// ("unknown seccomp syscall ... ignored"), so the rule does nothing for it. Most often a
    /// typo. `arch` is the host's, for the message.
    #[error("{at}: unknown syscall \"{}\" on {arch}; ignored", escape(.name))]
    UnknownSyscall {
        at: String,
        name: String,
        arch: &'static str,
    },
    /// `names: null`: moby passes the rule on with no names, runc adds nothing for it.
    #[error("{at}: null instead of a list of syscall names; the rule is ignored")]
    NamesNull { at: String },
    /// No `names` (or an empty list) and no `name`: the same rule naming nothing.
    #[error("{at}: the rule names no syscall; ignored")]
    NoNames { at: String },
}

/// A profile read from a document: its format, what it allows, and what Docker would ignore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub format: Format,
    pub profile: Profile,
    pub warnings: Vec<FormatWarning>,
    /// The native architectures it names (`architectures`, `archMap`) that we have tables for;
    /// empty when it names none (then it is the host's).
    pub arches: Vec<Arch>,
}

/// Profiles for different architectures given to one merge (or none for this host).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ArchError {
    #[error("{a} is for {a_arch} and {b} for {b_arch}: profiles of different architectures cannot be merged")]
    Mixed {
        a: String,
        a_arch: &'static str,
        b: String,
        b_arch: &'static str,
    },
    #[error("{0} names no architecture and this host's is not supported (x86_64 and aarch64 are)")]
    Unknown(String),
}

/// The architecture a profile made of `inputs` (a name for messages, the architectures the
/// file names) is for: one every input names, the host's if it is one of them, or the host's
/// when none names any. An aarch64 profile merged on x86_64 stays aarch64.
pub fn common_arch<'a>(
    inputs: impl IntoIterator<Item = (&'a str, &'a [Arch])>,
    host: Option<Arch>,
) -> Result<Arch, ArchError> {
    let mut common: Option<(&str, Vec<Arch>)> = None;
    let mut last = String::new();
    for (name, arches) in inputs {
        last = escape(name).into_owned();
        if arches.is_empty() {
            continue;
        }
        common = Some(match common {
            None => (name, arches.to_vec()),
            Some((first, c)) => {
                let both: Vec<Arch> = c.iter().copied().filter(|a| arches.contains(a)).collect();
                if both.is_empty() {
                    return Err(ArchError::Mixed {
                        a: escape(first).into_owned(),
                        a_arch: arch_name(c[0]),
                        b: last,
                        b_arch: arch_name(arches[0]),
                    });
                }
                (first, both)
            }
        });
    }
    match (common, host) {
        (Some((_, c)), Some(h)) if c.contains(&h) => Ok(h),
        (Some((_, c)), _) => Ok(c[0]),
        (None, Some(h)) => Ok(h),
        (None, None) => Err(ArchError::Unknown(last)),
    }
}

/// The architectures of ours among seccomp architecture names (`SCMP_ARCH_X86_64`...), in
/// their order; only native ones (an x86_64 profile lists `SCMP_ARCH_X86` too).
fn native_arches<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Arch> {
    let mut out = Vec::new();
    for n in names {
        let arch = [Arch::X86_64, Arch::Aarch64]
            .into_iter()
            .find(|a| a.docker_arches().0 == n);
        if let Some(a) = arch.filter(|a| !out.contains(a)) {
            out.push(a);
        }
    }
    out
}

/// Names libseccomp resolves that none of our tables has: other architectures' calls (ARM,
/// PowerPC, s390, RISC-V) and the socket calls x86's socketcall multiplexes. Docker's default
/// profile lists most of them; a rule naming one is not a typo.
const OTHER_ARCH_NAMES: &[&str] = &[
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "breakpoint",
    "cacheflush",
    "get_tls",
    "multiplexer",
    "recv",
    "riscv_flush_icache",
    "riscv_hwprobe",
    "rtas",
    "s390_guarded_storage",
    "s390_pci_mmio_read",
    "s390_pci_mmio_write",
    "s390_runtime_instr",
    "s390_sthyi",
    "send",
    "set_tls",
    "spu_create",
    "spu_run",
    "subpage_prot",
    "swapcontext",
    "switch_endian",
    "sync_file_range2",
    "sys_debug_setcontext",
    "usr26",
    "usr32",
];

/// Whether libseccomp (and so Docker) knows syscall `name` on some architecture. A profile may
/// name calls of every architecture (Docker's default does): only a name none has is unknown.
pub fn is_syscall_name(name: &str) -> bool {
    [Arch::X86_64, Arch::Aarch64, Arch::I386]
        .into_iter()
        .any(|a| a.number(name).is_some())
        || OTHER_ARCH_NAMES.contains(&name)
}

/// How `arch` is named in messages (as `uname -m` says).
pub fn arch_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64",
        Arch::Aarch64 => "aarch64",
        Arch::I386 => "i386",
    }
}

/// `s` safe to print on a terminal: control characters (C0, DEL, C1: ESC and CSI start terminal
/// escapes) and the invisible or bidirectional formatting ones are written `\u{1b}`. Every
/// string read from a profile goes through this before it is printed. Backslashes are left as
/// they are, so escaping twice changes nothing.
pub fn escape(s: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}' | '\u{feff}')
    }
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The document for `format`; `name` names the Kubernetes resource.
pub fn render(format: Format, arch: Arch, name: &str, p: &Profile) -> Value {
    let doc = match format {
        Format::Docker => serde_json::to_value(DockerProfile::from_profile(arch, p)),
        Format::Oci => serde_json::to_value(LinuxSeccomp::from_profile(arch, p)),
        Format::Kubernetes => serde_json::to_value(SeccompProfile::from_profile(arch, name, p)),
    };
    // Cannot fail: the documents have string keys only and no fallible Serialize impl.
    doc.expect("typed seccomp documents always serialize")
}

/// Reads a profile in any of the formats (an OCI `config.json` too), for a host of `arch`.
/// Docker's format is told from the OCI one by the fields only Docker has (`archMap`, rule
/// comments, `includes`...).
pub fn parse(doc: &Value, arch: Arch) -> Result<Parsed, FormatError> {
    const TOP: &str = "the profile";
    let (format, read, arches) = if doc["kind"] == docs::SPO_KIND {
        has_default_action(&doc["spec"])?;
        let d: SeccompProfile = typed::<_, Rule>(doc, TOP, &doc["spec"]["syscalls"], "spec.")?;
        let arches = native_arches(d.spec.architectures.iter().map(String::as_str));
        (Format::Kubernetes, d.to_profile(arch)?, arches)
    } else {
        let (body, at) = match &doc["linux"]["seccomp"] {
            s @ Value::Object(_) => (s, "linux.seccomp."),
            _ => (doc, ""),
        };
        has_default_action(body)?;
        let whole = at.strip_suffix('.').unwrap_or(TOP);
        if at.is_empty() && docs::looks_like_docker(body) {
            let d: DockerProfile = typed::<_, DockerRule>(body, whole, &body["syscalls"], at)?;
            let names = d.arch_map.iter().map(|m| m.architecture.as_str());
            let arches = native_arches(names.chain(d.architectures.iter().map(String::as_str)));
            (Format::Docker, d.to_profile(arch)?, arches)
        } else {
            let d: LinuxSeccomp = typed::<_, Rule>(body, whole, &body["syscalls"], at)?;
            let arches = native_arches(d.architectures.iter().map(String::as_str));
            (Format::Oci, d.to_profile(at, arch)?, arches)
        }
    };
    Ok(Parsed {
        format,
        profile: read.profile,
        warnings: read.warnings,
        arches,
    })
}

fn has_default_action(body: &Value) -> Result<(), FormatError> {
    match body["defaultAction"] {
        Value::String(_) => Ok(()),
        _ => Err(FormatError::NotAProfile("no defaultAction")),
    }
}

/// `value` (at `at`) as a `T`. When it is not one, the error names the first of `rules` (at
/// `{rules_at}syscalls`) that is not an `R`, or else `value`.
fn typed<'a, T: Deserialize<'a>, R: Deserialize<'a>>(
    value: &'a Value,
    at: &str,
    rules: &'a Value,
    rules_at: &str,
) -> Result<T, FormatError> {
    T::deserialize(value).map_err(|whole| {
        let rule = rules
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .find_map(|(i, r)| R::deserialize(r).err().map(|e| (i, e)));
        let (at, e) = match rule {
            Some((i, e)) => (format!("{rules_at}syscalls[{i}]"), e),
            None => (at.to_string(), whole),
        };
        FormatError::Malformed {
            at,
            reason: e.to_string(),
        }
    })
}

/// Union of profiles (replicas, several runs): allowed anywhere is allowed; a call allowed
/// unconditionally anywhere stays unconditional, otherwise its conditions add up. It logs
/// (complain) or allows (permissive) what it does not list if any input does.
pub fn merge<'a>(profiles: impl IntoIterator<Item = &'a Profile>) -> Profile {
    let mut out = Profile::default();
    let mut unconditional = BTreeSet::new();
    for p in profiles {
        for n in &p.allowed {
            match p.conditions.get(n) {
                Some(c) => out
                    .conditions
                    .entry(n.clone())
                    .or_default()
                    .extend(c.iter().cloned()),
                None => {
                    unconditional.insert(n.clone());
                }
            }
        }
        out.allowed.extend(p.allowed.iter().cloned());
        out.refused.extend(p.refused.iter().cloned());
        out.complain |= p.complain;
        out.permissive |= p.permissive;
    }
    out.conditions.retain(|n, _| !unconditional.contains(n));
    out
}

#[cfg(test)]
mod defaults_and_arches;
#[cfg(test)]
mod references;
#[cfg(test)]
mod tests;
