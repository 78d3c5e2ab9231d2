//! The daemon's state file: every target as the session saves it, and the selectors, written
//! atomically at every checkpoint and read back at start.

use std::{
    io::{Read, Write},
    os::{
        fd::AsRawFd,
        unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt},
    },
    path::Path,
};

use serde::{Deserialize, Serialize};

use super::DaemonError;
use crate::{output, record::targets::Snapshot, record::RecordError, target::selector::Selector};

const STATE_VERSION: u32 = 1;

/// Makes `dir` the daemon's private directory: created 0700 when missing (parents too). One
/// that exists is used as it is, never chmodded, but refused when another user owns it or
/// others can write to it (`/tmp`).
pub fn private_dir(dir: &Path) -> Result<(), DaemonError> {
    let io = |source| DaemonError::Io {
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(io)
        }
        Err(e) => Err(io(e)),
        Ok(m) => check_private(&m).map_err(|why| DaemonError::Unsafe {
            path: dir.to_path_buf(),
            why,
        }),
    }
}

/// Why a directory's metadata makes it unfit to hold the daemon's state or pins, if it does.
fn check_private(m: &std::fs::Metadata) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !m.is_dir() {
        return Err("not a directory".into());
    }
    if m.uid() != me {
        return Err(format!("owned by uid {}, not by this user", m.uid()));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "others can write to it (mode {:o}); use a directory only this user can write",
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// The lock of a state directory, held as long as the daemon runs: a second daemon on the
/// same directory is refused with the first one's pid.
pub struct Lock(#[allow(dead_code)] std::fs::File);

impl Lock {
    pub fn take(dir: &Path) -> Result<Self, DaemonError> {
        let path = dir.join("daemon.lock");
        let io = |source| DaemonError::Io {
            path: path.clone(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io)?;
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            return Err(DaemonError::Locked {
                dir: dir.to_path_buf(),
                pid: pid.trim().to_string(),
            });
        }
        // Only for the message of a second daemon: a full disk does not stop this one.
        let _ = f.set_len(0);
        let _ = write!(f, "{}", std::process::id());
        Ok(Self(f))
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    version: u32,
    pub targets: Vec<Snapshot>,
    #[serde(default)]
    pub selectors: Vec<Selector>,
}

impl State {
    pub fn new(targets: Vec<Snapshot>, selectors: Vec<Selector>) -> Self {
        Self {
            version: STATE_VERSION,
            targets,
            selectors,
        }
    }

    /// The state saved at `path`; `None` if there is none.
    pub fn load(path: &Path) -> Result<Option<State>, DaemonError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(DaemonError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Self::parse(&text)
            .map(Some)
            .map_err(|detail| DaemonError::BadState {
                path: path.to_path_buf(),
                detail,
            })
    }

    fn parse(text: &str) -> Result<State, String> {
        let state: State = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if state.version != STATE_VERSION {
            return Err(format!("version {}", state.version));
        }
        Ok(state)
    }

    /// Writes the state at `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), RecordError> {
        let text = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        output::write_atomic(path, &text)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_missing_state_dir_is_created_private_and_a_shared_one_is_refused_untouched() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/state");
        private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        private_dir(&dir).unwrap();
        let shared = base.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = private_dir(&shared).unwrap_err().to_string();
        assert!(e.contains("others can write"), "{e}");
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o1777, "never chmodded");
    }

    #[test]
    fn a_second_daemon_on_one_state_dir_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lock::take(dir.path()).unwrap();
        let e = Lock::take(dir.path()).err().unwrap().to_string();
        assert!(e.contains(&std::process::id().to_string()), "{e}");
        drop(first);
        assert!(Lock::take(dir.path()).is_ok());
    }

    #[test]
    fn state_round_trips_and_other_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        assert!(State::load(&p).unwrap().is_none());
        let s = State::new(
            Vec::new(),
            vec![Selector {
                pattern: Some("web-*".into()),
                labels: vec![],
            }],
        );
        s.save(&p).unwrap();
        let back = State::load(&p).unwrap().unwrap();
        assert_eq!(back.selectors, s.selectors);
        assert!(State::parse(r#"{"version":2,"targets":[]}"#).is_err());
        assert!(State::parse("{").is_err());
        // A state file of the previous layout (no selectors) is read.
        assert!(State::parse(r#"{"version":1,"targets":[]}"#).is_ok());
    }
}
