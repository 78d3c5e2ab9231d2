//! Where what a session learned goes: profile documents and their side files, written
//! atomically ([`write`] is the one function that writes a profile and returns every path it
//! wrote; YAML when the path ends in `.yaml` or `.yml`), and what a session ends with
//! ([`Summary`]).

use std::path::{Path, PathBuf};

use super::{config::Output, display, RecordError};
use crate::{
    output,
    profile::{
        formats::{self, Format, Profile, SideFile},
        why::{why_path, WhyFile, MAX_WHY_BYTES},
    },
    syscalls::Arch,
};

/// A profile rendered for one format: its document and, for Kubernetes, the plain OCI JSON
/// kubelet's `seccomp/` directory takes (through containerd or CRI-O).
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub doc: serde_json::Value,
    pub kubelet: Option<serde_json::Value>,
}

impl Rendered {
    /// `profile` as `format` documents; `label` names the Kubernetes resource.
    pub fn new(format: Format, arch: Arch, label: &str, profile: &Profile) -> Self {
        Self {
            doc: formats::render(format, arch, label, profile),
            kubelet: format
                .side_files()
                .iter()
                .find(|&&f| f == SideFile::Kubelet)
                .map(|f| formats::render(f.format(), arch, label, profile)),
        }
    }
}

/// Writes the documents of `r` at `path` (side files next to it); returns the paths written.
/// The document is YAML when `path` ends in `.yaml` or `.yml`; the kubelet file is JSON.
pub fn write(path: &Path, r: &Rendered) -> Result<Vec<PathBuf>, RecordError> {
    if formats::is_yaml_path(path) {
        write_yaml(path, &r.doc)?;
    } else {
        write_json(path, &r.doc)?;
    }
    let mut written = vec![path.to_path_buf()];
    // Standard output takes the document alone.
    if output::is_stdout(path) {
        return Ok(written);
    }
    if let Some(k) = &r.kubelet {
        let side = SideFile::Kubelet.path(path);
        write_json(&side, k)?;
        written.push(side);
    }
    Ok(written)
}

/// The last write of a session: [`write`], tried again a few times (a disk full for a
/// moment, EMFILE), then, if it still fails, to a fallback file in the temp directory (or
/// /dev/shm), whose path is returned with a warning. Fails only if nowhere could be written.
pub fn write_finally(path: &Path, label: &str, r: &Rendered) -> Result<Vec<PathBuf>, RecordError> {
    let mut last = match write(path, r) {
        Ok(w) => return Ok(w),
        Err(e) => e,
    };
    for _ in 0..3 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        match write(path, r) {
            Ok(w) => return Ok(w),
            Err(e) => last = e,
        }
    }
    let ext = if formats::is_yaml_path(path) {
        "yaml"
    } else {
        "json"
    };
    let name = format!("seccomp-tracer-{label}-{}.{ext}", std::process::id());
    for dir in [std::env::temp_dir(), PathBuf::from("/dev/shm")] {
        let fallback = dir.join(&name);
        if let Ok(w) = write(&fallback, r) {
            display::warn(&format!(
                "{last}; the profile was written to {} instead",
                fallback.display()
            ));
            return Ok(w);
        }
    }
    Err(last)
}

/// Writes the provenance side file (`<stem>.why.json`) of the profile at `profile`; returns
/// its path, or `None` for standard output, which takes the profile alone. It is written like
/// the profile (atomically, never through a link), and never over a file that is not a
/// provenance file: the tool did not write that one.
pub fn write_why(profile: &Path, why: &WhyFile) -> Result<Option<PathBuf>, RecordError> {
    if output::is_stdout(profile) {
        return Ok(None);
    }
    let path = why_path(profile);
    if let Some(existing) = read_regular(&path, MAX_WHY_BYTES)? {
        if !WhyFile::is_one(&existing) {
            return Err(RecordError::Refused(format!(
                "{} exists and is not a provenance file; left as it is (first sightings not \
                 written)",
                path.display()
            )));
        }
    }
    write_json(&path, &why.to_json())?;
    Ok(Some(path))
}

/// The bytes of the regular file at `path` if there is one, up to `max` (more is read as
/// `max + 1` bytes); `None` if nothing is there. Other kinds of file, and links, are left for
/// the atomic write to refuse: nothing is opened through them.
fn read_regular(path: &Path, max: u64) -> Result<Option<Vec<u8>>, RecordError> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
        Ok(m) if !m.file_type().is_file() => return Ok(None),
        Ok(_) => {}
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Pretty JSON with a final newline, written atomically.
pub fn write_json(path: &Path, doc: &serde_json::Value) -> Result<(), RecordError> {
    let mut text = serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?;
    text.push(b'\n');
    output::write_atomic(path, &text)?;
    Ok(())
}

/// YAML (one document), written atomically.
pub fn write_yaml(path: &Path, doc: &serde_json::Value) -> Result<(), RecordError> {
    let text = serde_yaml_ng::to_string(doc).map_err(std::io::Error::other)?;
    output::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Where the profile of target `label` goes, one of `count` targets.
pub fn output_for(output: &Output, label: &str, count: usize) -> PathBuf {
    let file = format!("{label}.json");
    match output {
        Output::Default => PathBuf::from(file),
        Output::Path(p) if count == 1 && !p.is_dir() => p.clone(),
        Output::Path(p) => p.join(file),
    }
}

/// The end of a session.
#[derive(Debug, Default)]
pub struct Summary {
    /// What to print.
    pub text: String,
    /// Targets that never ran while recording, so have no profile.
    pub missing: Vec<String>,
    /// Files written.
    pub written: Vec<PathBuf>,
    /// Distinct calls refused (all targets), for `check`'s exit status.
    pub refusals: usize,
    /// The same as `text`, as data (`record --json`, `check --json`): `targets` and `kernel`.
    pub json: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_writes_its_kubelet_copy_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.json");
        let profile = Profile {
            allowed: ["read".to_string()].into(),
            ..Default::default()
        };
        let r = Rendered::new(Format::Kubernetes, Arch::X86_64, "web", &profile);
        let written = write(&p, &r).unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(written[0], p);
        assert_eq!(written[1], dir.path().join("web.kubelet.json"));
        let kubelet: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&written[1]).unwrap()).unwrap();
        assert_eq!(kubelet["defaultAction"], "SCMP_ACT_ERRNO");
        // containerd reads it into the OCI type, which has no archMap.
        assert_eq!(
            kubelet["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert!(kubelet.get("archMap").is_none());
        let docker = Rendered::new(Format::Docker, Arch::X86_64, "web", &profile);
        assert_eq!(write(&p, &docker).unwrap(), vec![p]);
    }

    #[test]
    fn a_yaml_path_gets_yaml_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile {
            allowed: ["read".to_string(), "mbind".to_string()].into(),
            ..Default::default()
        };
        for name in ["web.yaml", "web.YML"] {
            let p = dir.path().join(name);
            let r = Rendered::new(Format::Kubernetes, Arch::X86_64, "web", &profile);
            let written = write(&p, &r).unwrap();
            assert_eq!(written[1], dir.path().join("web.kubelet.json"));
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(
                text.starts_with("apiVersion: security-profiles-operator"),
                "{text}"
            );
            assert!(serde_json::from_str::<serde_json::Value>(&text).is_err());
            let back = crate::profiles::read(&p, Arch::X86_64).unwrap();
            assert_eq!(
                (back.format, back.profile),
                (Format::Kubernetes, profile.clone())
            );
            // The kubelet file stays JSON.
            let k = std::fs::read_to_string(&written[1]).unwrap();
            assert!(serde_json::from_str::<serde_json::Value>(&k).is_ok());
        }
    }

    #[test]
    fn the_why_file_goes_next_to_the_profile_never_over_a_foreign_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.json");
        let why = WhyFile::new(Arch::X86_64, &Default::default());
        let side = dir.path().join("web.why.json");
        assert_eq!(write_why(&p, &why).unwrap(), Some(side.clone()));
        // Ours: replaced.
        assert_eq!(write_why(&p, &why).unwrap(), Some(side.clone()));
        assert_eq!(WhyFile::parse(&std::fs::read(&side).unwrap()).unwrap(), why);
        // Not ours: left as it is.
        std::fs::write(&side, b"my notes").unwrap();
        let e = write_why(&p, &why).unwrap_err().to_string();
        assert!(e.contains("not a provenance file"), "{e}");
        assert_eq!(std::fs::read(&side).unwrap(), b"my notes");
        // A link there is neither followed nor replaced.
        std::fs::remove_file(&side).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, &side).unwrap();
        assert!(write_why(&p, &why).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // Standard output takes the profile alone.
        assert_eq!(write_why(Path::new("-"), &why).unwrap(), None);
    }

    #[test]
    fn outputs_are_a_file_for_one_target_a_directory_for_several() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            output_for(&Output::Default, "web", 1),
            PathBuf::from("web.json")
        );
        let file = dir.path().join("p.json");
        assert_eq!(output_for(&Output::Path(file.clone()), "web", 1), file);
        assert_eq!(
            output_for(&Output::Path(dir.path().into()), "web", 1),
            dir.path().join("web.json")
        );
        assert_eq!(
            output_for(&Output::Path(file.clone()), "web", 2),
            file.join("web.json")
        );
    }
}
