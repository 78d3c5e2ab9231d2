//! The session's profiles: rendered for a format, and written (at checkpoints, and finally
//! with retries and a fallback).

use std::path::PathBuf;

use super::Session;
use crate::{
    profile::{formats::Profile, why::WhyFile, Composition, Learned},
    record::{
        display,
        sink::{self, Rendered},
        RecordError,
    },
};

impl Session {
    /// Target `i`'s profile as `format` documents.
    pub fn render(
        &self,
        i: usize,
        format: crate::profile::formats::Format,
        complain: bool,
    ) -> Result<(Learned, Composition, Rendered), RecordError> {
        let (learned, c) = self.compose(i)?;
        let profile = Profile::from_composition(&c, complain);
        let r = Rendered::new(format, self.arch, self.targets.get(i).label(), &profile);
        Ok((learned, c, r))
    }

    /// Writes the profile of every target that ran; returns the files written.
    pub fn write_profiles(&self) -> Result<Vec<PathBuf>, RecordError> {
        let mut written = Vec::new();
        if !self.cfg.mode.writes_profiles() {
            return Ok(written);
        }
        for i in 0..self.targets.len() {
            if self.targets.get(i).has_instance() {
                written.extend(self.write_profile(i, false)?.1);
            }
        }
        Ok(written)
    }

    /// Writes target `i`'s profile; returns what it learned and the files written. The last
    /// write of a session (`finally`) is retried and falls back to another place.
    pub fn write_profile(
        &self,
        i: usize,
        finally: bool,
    ) -> Result<((Learned, Composition), Vec<PathBuf>), RecordError> {
        let p = self.cfg.profile;
        let (learned, c, r) = self.render(i, p.format, p.complain)?;
        let t = self.targets.get(i);
        let mut written = if finally {
            sink::write_finally(t.output(), t.label(), &r)?
        } else {
            sink::write(t.output(), &r)?
        };
        // Best-effort, like what it holds: the profile stands without it. Said once, at the end.
        if let Some(profile) = written.first().cloned() {
            match sink::write_why(&profile, &self.why_file(i)) {
                Ok(Some(why)) => written.push(why),
                Ok(None) => {}
                Err(e) if finally => display::warn(&e.to_string()),
                Err(_) => {}
            }
        }
        Ok(((learned, c), written))
    }

    /// Target `i`'s first sightings by name: its `<stem>.why.json`.
    pub fn why_file(&self, i: usize) -> WhyFile {
        WhyFile::new(self.arch, self.targets.get(i).why())
    }
}
