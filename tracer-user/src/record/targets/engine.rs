//! What the engine says about containers: created (taken in by a selector, or followed by
//! the target that wants them) and destroyed (folded, unwatched, retired).

use std::collections::HashMap;

use super::{Target, Targets};
use crate::{
    kernel::{Cgroups, Kernel},
    profile::moby::ContainerSecurity,
    record::RecordError,
    target::{cgroup, engine::Layout, TargetSpec},
};

/// What the engine says of a created container besides its id and name (the CRI's answers).
#[derive(Clone, Copy, Debug, Default)]
pub struct Created<'a> {
    /// Another name targets may know it by (`NAMESPACE/POD/CONTAINER`).
    pub alias: Option<&'a str>,
    /// Its cgroup path, when the engine says it (it cannot always be derived).
    pub cgroup: Option<&'a str>,
}

impl Targets {
    /// A container a selector matches becomes a target of its own (unless it is one already);
    /// [`on_created`](Self::on_created) then follows it. Returns its index if it is new.
    pub fn select(&mut self, name: &str, labels: &HashMap<String, String>) -> Option<usize> {
        let selector = self.selectors.iter().find(|s| s.matches(name, labels))?;
        let known = self
            .list
            .iter()
            .any(|t| t.active && (t.label == name || t.spec == TargetSpec::Container(name.into())));
        if known || name.is_empty() {
            return None;
        }
        let line = format!("{name}: matches {}; recording it", selector.describe());
        self.note(line);
        let mut t = Target::new(TargetSpec::Container(name.into()), name.into());
        t.selected = true;
        Some(self.push(t))
    }

    /// Container `id` was created with name `name`: the targets that want it follow it. Its
    /// cgroup may already exist: adopted under the parent watch from its creation (so nothing
    /// was missed), or, without that watch, started before this event (LATE).
    pub fn on_created(
        &mut self,
        id: &str,
        name: &str,
        seen: Created,
        layout: Layout,
        k: &mut dyn Kernel,
        cg: &dyn Cgroups,
    ) -> Result<(), RecordError> {
        for i in 0..self.list.len() {
            let t = &self.list[i];
            let TargetSpec::Container(wanted) = &t.spec else {
                continue;
            };
            let matches = t.label == name
                || wanted == name
                || wanted == id
                || seen.alias.is_some_and(|a| a == wanted);
            if !t.active || !matches || t.container_id.as_deref() == Some(id) {
                continue;
            }
            let path = match seen.cgroup {
                Some(p) => p.to_string(),
                None => self.container_path(id, layout),
            };
            // The old container's path is not watched any more: it is gone.
            if let Some(old) = self.list[i].path.clone().filter(|p| *p != path) {
                // Not worth stopping for: a stale watch only costs a map entry.
                let _ = k.unwatch(&old);
            }
            k.watch(&path, i as u32)?;
            let t = &mut self.list[i];
            t.label = name.to_string();
            t.container_id = Some(id.to_string());
            t.path = Some(path.clone());
            self.note(format!(
                "{name}: created as {}; following it",
                &id[..id.len().min(12)]
            ));
            let claimed = self
                .provisional
                .keys()
                .copied()
                .find(|&c| self.owner_of(c, k, cg) == Some(i));
            if let Some(c) = claimed {
                self.adopt(i, c, k)?;
                continue;
            }
            if let Ok(cgroup::CgroupId(c)) = cg.id_of(&path) {
                if !self.by_cgroup.contains_key(&c) {
                    self.note(format!("{name}: LATE: it started before its cgroup was watched; its first syscalls were missed"));
                    self.track(i, c, k)?;
                }
            }
        }
        Ok(())
    }

    /// Whether an active target follows container `id`.
    pub fn follows(&self, id: &str) -> bool {
        self.list
            .iter()
            .any(|t| t.active && t.container_id.as_deref() == Some(id))
    }

    /// Container `id`'s seccomp option and capabilities, for the targets that follow it.
    pub fn set_security(&mut self, id: &str, security: &ContainerSecurity) {
        for t in &mut self.list {
            if t.active && t.container_id.as_deref() == Some(id) {
                t.put_security(security.clone());
            }
        }
    }

    /// Container `id` was destroyed: its instances are folded and its path no longer watched;
    /// a target a selector took in is retired (what it learned stays, for export).
    pub fn on_destroyed(&mut self, id: &str, k: &mut dyn Kernel) -> Result<(), RecordError> {
        for i in 0..self.list.len() {
            let t = &self.list[i];
            if !t.active || t.container_id.as_deref() != Some(id) {
                continue;
            }
            if t.selected {
                let line = format!("{}: container destroyed; no longer recorded", t.label);
                self.retire(i, k)?;
                self.note(line);
                continue;
            }
            self.fold_old(i, u64::MAX, k)?;
            if let Some(path) = self.list[i].path.clone() {
                k.unwatch(&path)?;
            }
        }
        Ok(())
    }
}
