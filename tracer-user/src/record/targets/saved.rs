//! Targets as the daemon's state file keeps them, and taking them up again after a restart.

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Target, Targets};
use crate::{
    kernel::{Cgroups, Kernel},
    profile::{why::Why, Learned},
    record::RecordError,
    target::{cgroup, TargetSpec},
};

/// One target as a daemon saves it. Removed targets are kept (inactive) so that target
/// indexes, which the pinned watch map uses as tags, mean the same after a restart.
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub name: String,
    pub active: bool,
    pub container_id: Option<String>,
    pub path: Option<String>,
    /// Cgroups traced at the checkpoint; still in the pinned map if the kernel kept recording.
    pub live: Vec<u64>,
    /// Everything learned up to the checkpoint, live cgroups included.
    pub learned: Learned,
    pub fresh: u32,
    pub restarts: u32,
    pub known_ids: Vec<String>,
    /// Last first sighting and its time (seconds since the epoch).
    pub last_new: Option<(String, u64)>,
    pub events: u64,
    /// Taken in by a selector.
    #[serde(default)]
    pub selected: bool,
    /// Which program made each call first (absent from state saved before it was kept).
    #[serde(default)]
    pub why: Why,
    /// The same, for calls made without a seccomp filter.
    #[serde(default)]
    pub why_setup: Why,
    /// When it was first traced and its instances were (absent from older state).
    #[serde(default)]
    pub history: super::History,
    /// Calls refused under its own profile (absent from older state).
    #[serde(default)]
    pub refused_own: std::collections::BTreeSet<String>,
}

/// Nanoseconds since the Unix epoch.
pub fn epoch_ns(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

/// Seconds since the Unix epoch.
pub fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Targets {
    /// Every target as a daemon saves it, what the kernel holds for live cgroups included.
    pub fn snapshot(&self, k: &dyn Kernel) -> Result<Vec<Snapshot>, RecordError> {
        (0..self.list.len())
            .map(|i| {
                let t = &self.list[i];
                Ok(Snapshot {
                    name: t.label.clone(),
                    active: t.active,
                    container_id: t.container_id.clone(),
                    path: t.path.clone(),
                    live: t.live.clone(),
                    learned: self.learned(i, k)?,
                    fresh: t.fresh,
                    restarts: t.restarts,
                    known_ids: t.known_ids.clone(),
                    last_new: t
                        .last_new
                        .as_ref()
                        .map(|(n, at)| (n.clone(), epoch_secs(*at))),
                    events: t.events,
                    selected: t.selected,
                    why: t.why.clone(),
                    why_setup: t.why_setup.clone(),
                    history: t.history.clone(),
                    refused_own: t.refused_own.clone(),
                })
            })
            .collect()
    }

    /// Takes up a saved target (`current`: as resolved now, for an active one): what it
    /// learned, the cgroups the kernel kept tracing while nobody listened, its instance now.
    pub fn restore(
        &mut self,
        saved: Snapshot,
        current: Option<Target>,
        k: &mut dyn Kernel,
        cg: &dyn Cgroups,
    ) -> Result<usize, RecordError> {
        let spec = TargetSpec::Container(saved.name.clone());
        let mut t = current.unwrap_or_else(|| Target::new(spec, saved.name.clone()));
        t.active = saved.active;
        // What was learned before is not new: no line, event or alert again for it. Under its
        // own profile, only what that profile refused is old news (a call Docker's default
        // refused while learning is news when the learned profile refuses it).
        let own = t.under() == super::Under::OwnProfile;
        let tables = [
            (&saved.learned.native, 0, Some(self.arch)),
            (&saved.learned.compat, 1u32 << 31, self.arch.compat()),
        ];
        for (calls, bit, table) in tables {
            for nr in calls.allowed.iter() {
                t.shown.insert(nr | bit);
            }
            for nr in calls.refused.iter() {
                let name = table.and_then(|a| a.name(nr));
                if !own || name.is_some_and(|n| saved.refused_own.contains(n)) {
                    t.shown_refused.insert(nr | bit);
                }
            }
        }
        t.folded = saved.learned;
        t.fresh = saved.fresh;
        t.restarts = saved.restarts;
        t.known_ids = saved.known_ids;
        t.events = saved.events;
        t.selected = saved.selected;
        t.why.merge(&saved.why);
        t.why_setup.merge(&saved.why_setup);
        t.history.merge(&saved.history);
        t.refused_own.extend(saved.refused_own);
        t.last_new = saved
            .last_new
            .map(|(n, at)| (n, SystemTime::UNIX_EPOCH + Duration::from_secs(at)));
        if t.container_id.is_none() {
            t.container_id = saved.container_id;
        }
        if t.path.is_none() {
            t.path = saved.path;
        }
        let i = self.push(t);
        if !saved.active {
            return Ok(i);
        }
        for id in saved.live {
            if k.record(id)?.is_some() {
                self.track(i, id, k)?;
            }
        }
        self.attach(i, k, cg)?;
        let current = self.list[i].path.as_deref().and_then(|p| cg.id_of(p).ok());
        if let Some(cgroup::CgroupId(id)) = current {
            self.fold_old(i, id, k)?;
        }
        let n = self.list[i].live.len();
        let line = format!(
            "{}: resumed ({n} cgroup{} traced)",
            self.list[i].label,
            if n == 1 { "" } else { "s" }
        );
        self.note(line);
        Ok(i)
    }

    /// Cgroups in the kernel's map that no target owns (adopted while nobody listened):
    /// provisional from `now`, to be claimed or dropped after the usual delay.
    pub fn adopt_orphans(&mut self, now: Instant, k: &dyn Kernel) -> Result<(), RecordError> {
        for id in k.cgroups()? {
            if !self.by_cgroup.contains_key(&id) {
                self.provisional.entry(id).or_insert(now);
            }
        }
        Ok(())
    }
}
