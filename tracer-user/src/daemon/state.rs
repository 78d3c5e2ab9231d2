//! The daemon's state file: every target as the session saves it, and the selectors, written
//! atomically at every checkpoint and read back at start.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::DaemonError;
use crate::{output, record::targets::Snapshot, record::RecordError, target::selector::Selector};

const STATE_VERSION: u32 = 1;

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
    use super::*;

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
