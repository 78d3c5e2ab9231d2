//! The kernel's map as the truth: targets reconciled with it, and folded instances dropped
//! from it only once a checkpoint saved them.

use std::time::Instant;

use super::Targets;
use crate::{
    kernel::{Cgroups, Kernel},
    record::RecordError,
};

impl Targets {
    /// After a checkpoint saved what they held: drops the folded cgroups from the kernel map.
    pub fn release_folded(&mut self, k: &mut dyn Kernel) -> Result<(), RecordError> {
        while let Some(id) = self.folded_out.pop() {
            if let Err(e) = k.remove_cgroup(id) {
                self.folded_out.push(id);
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Makes the kernel's map the truth: a cgroup in it that no target owns (its adoption
    /// event was dropped from the ring buffer, or came while nobody listened) is adopted by
    /// the target whose watched path it is, or else traced provisionally from `now` until the
    /// engine says whose it is.
    pub fn reconcile(
        &mut self,
        now: Instant,
        k: &mut dyn Kernel,
        cg: &dyn Cgroups,
    ) -> Result<(), RecordError> {
        for id in k.cgroups()? {
            if self.by_cgroup.contains_key(&id)
                || self.provisional.contains_key(&id)
                || self.folded_out.contains(&id)
            {
                continue;
            }
            let owner = self.list.iter().position(|t| {
                t.active
                    && t.path
                        .as_deref()
                        .is_some_and(|p| cg.id_of(p).is_ok_and(|c| c.0 == id))
            });
            match owner {
                Some(i) => {
                    let line = format!(
                        "{}: instance cgroup {id} found in the kernel's map (its event was dropped)",
                        self.list[i].label
                    );
                    self.note(line);
                    self.adopt(i, id, k)?;
                }
                None => {
                    self.provisional.insert(id, now);
                }
            }
        }
        Ok(())
    }
}
