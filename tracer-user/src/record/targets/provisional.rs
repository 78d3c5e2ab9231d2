//! Provisional cgroups: ones the kernel adopted under a watched parent before anyone knew
//! whose they are; a target claims them (its container's id names them) or they expire.

use std::time::Instant;

use super::{Targets, PROVISIONAL_FOR};
use crate::{
    kernel::{Cgroups, Kernel},
    record::RecordError,
};

impl Targets {
    /// The active container target whose current container id names cgroup `id` (a child of
    /// a watched parent).
    pub fn owner_of(&self, id: u64, k: &dyn Kernel, cg: &dyn Cgroups) -> Option<usize> {
        let leaf = k
            .parents()
            .iter()
            .find_map(|parent| cg.child_named(parent, id))?;
        self.list.iter().position(|t| {
            t.active
                && t.is_container()
                && !t.live.contains(&id)
                && t.container_id.as_deref().is_some_and(|c| leaf.contains(c))
        })
    }

    /// A cgroup the kernel adopted under a watched parent: ours if a target claims it, else
    /// traced provisionally from `now`.
    pub fn provisional_from(
        &mut self,
        id: u64,
        now: Instant,
        k: &mut dyn Kernel,
        cg: &dyn Cgroups,
    ) -> Result<(), RecordError> {
        match self.owner_of(id, k, cg) {
            Some(i) => self.adopt(i, id, k),
            None => {
                self.provisional.entry(id).or_insert(now);
                Ok(())
            }
        }
    }

    /// The provisional cgroups and their names under the watched parents (a container's
    /// cgroup is named after its id), for asking the engine whose they are.
    pub fn provisional_names(&self, k: &dyn Kernel, cg: &dyn Cgroups) -> Vec<(u64, String)> {
        let parents = k.parents();
        self.provisional
            .keys()
            .filter_map(|&id| {
                let name = parents.iter().find_map(|p| cg.child_named(p, id))?;
                Some((id, name))
            })
            .collect()
    }

    /// Stops tracing provisional cgroups nobody claimed within [`PROVISIONAL_FOR`] of `now`.
    pub fn expire_provisional(
        &mut self,
        now: Instant,
        k: &mut dyn Kernel,
    ) -> Result<(), RecordError> {
        let stale: Vec<u64> = self
            .provisional
            .iter()
            .filter(|(_, &since)| now.saturating_duration_since(since) > PROVISIONAL_FOR)
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            self.provisional.remove(&id);
            self.pending.remove(&id);
            k.remove_cgroup(id)?;
        }
        Ok(())
    }
}
