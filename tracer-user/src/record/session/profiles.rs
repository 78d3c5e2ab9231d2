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
            match sink::write_why(&profile, &self.why_file(i, Some(&c))) {
                Ok(Some(why)) => written.push(why),
                Ok(None) => {}
                Err(e) if finally => display::warn(&e.to_string()),
                Err(_) => {}
            }
        }
        Ok(((learned, c), written))
    }

    /// Target `i`'s first sightings by name: its `<stem>.why.json`. Those made without a
    /// seccomp filter count only where such calls are in the profile `c` describes (`run`, an
    /// unconfined target): a container's runtime makes its set-up calls first, not its program.
    pub fn why_file(&self, i: usize, c: Option<&Composition>) -> WhyFile {
        let t = self.targets.get(i);
        let with_setup = c.is_some_and(|c| c.unconfined || self.cfg.mode.includes_setup());
        let h = t.history();
        let now = crate::record::targets::epoch_secs(std::time::SystemTime::now());
        if !with_setup {
            return WhyFile::new(self.arch, t.why()).with_history(h.since, &h.instances, now);
        }
        let mut why = t.why().clone();
        why.merge(t.why_setup());
        WhyFile::new(self.arch, &why).with_history(h.since, &h.instances, now)
    }
}
