//! What the session does with the engine: containers created (a selector may take them in,
//! targets follow them), the provisional cgroups it is asked about, the containers listed again
//! after a gap in its events, and `--restart`.

use super::Session;
use crate::record::{display, RecordError};
use crate::{record::targets::Created, target::cri};

impl Session {
    /// A container was created: a selector may take it in, and targets that want it follow it.
    pub(super) fn on_created(
        &mut self,
        id: &str,
        name: &str,
        labels: &std::collections::HashMap<String, String>,
    ) -> Result<(), RecordError> {
        let Some(layout) = self.engine.as_ref().map(|e| e.layout) else {
            return Ok(());
        };
        self.targets.select(name, labels);
        let seen = Created {
            alias: labels.get(cri::NAME_LABEL).map(String::as_str),
            cgroup: labels.get(cri::CGROUP_LABEL).map(String::as_str),
        };
        let r = self.targets.on_created(
            id,
            name,
            seen,
            layout,
            self.kernel.as_mut(),
            self.cgroups.as_ref(),
        );
        self.show_notes();
        r
    }

    /// Asks Docker for the seccomp option and capabilities of container `id` when a target
    /// follows it: its refusal hints are decided from them.
    pub(super) async fn learn_security(&mut self, id: &str) {
        let Some(e) = self.engine.as_ref().filter(|_| self.targets.follows(id)) else {
            return;
        };
        match e.client.find(id).await {
            Ok(Some(c)) => self.targets.set_security(id, &c.security),
            Ok(None) => {}
            Err(err) => display::warn(&format!("asking Docker about container {id}: {err}")),
        }
    }

    /// Asks the engine whose the provisional cgroups are, and follows those of targets (or
    /// of containers a selector takes in) as if their creation had just been announced.
    pub(super) async fn claim_provisional(&mut self) -> Result<(), RecordError> {
        let names = self
            .targets
            .provisional_names(self.kernel.as_ref(), self.cgroups.as_ref());
        let Some(e) = self.engine.as_ref().filter(|_| !names.is_empty()) else {
            return Ok(());
        };
        let containers = match e.client.list_all().await {
            Ok(c) => c,
            Err(err) => {
                display::warn(&format!(
                    "asking {} whose new cgroups are: {err}",
                    e.client.kind().name()
                ));
                return Ok(());
            }
        };
        for (id, name, labels) in containers {
            if names.iter().any(|(_, leaf)| leaf.contains(id.as_str())) {
                self.on_created(&id, &name, &labels)?;
                self.learn_security(&id).await;
            }
        }
        Ok(())
    }

    /// Containers that exist now and that targets or selectors want, as if their creation
    /// had just been announced: for the gaps in Docker's event stream (start-up, reconnects,
    /// the daemon's downtime).
    pub async fn rematch(&mut self) {
        let Some(e) = self.engine.as_ref() else {
            return;
        };
        let containers = match e.client.list_all().await {
            Ok(c) => c,
            Err(err) => {
                display::warn(&format!(
                    "listing {}'s containers: {err}",
                    e.client.kind().name()
                ));
                return;
            }
        };
        for (id, name, labels) in containers {
            let r = self.on_created(&id, &name, &labels);
            self.warn_on(r);
            self.learn_security(&id).await;
        }
    }

    /// `--restart`: restarts every container target once, concurrently, in the background.
    pub(super) fn restart_containers(&self) {
        let Some(e) = &self.engine else {
            return;
        };
        let ids: Vec<(String, String)> = self
            .targets
            .iter()
            .filter_map(|t| Some((t.container_id()?.to_string(), t.label().to_string())))
            .collect();
        // All at once: each waits up to its stop timeout, and a serial loop would leave most
        // unrestarted within a short --duration.
        for (id, label) in ids {
            let client = e.client.clone();
            tokio::spawn(async move {
                match client.restart(&id).await {
                    Ok(()) => display::say(&format!("{label}: restarted")),
                    Err(e) => display::warn(&format!("restarting {label}: {e}")),
                }
            });
        }
    }
}
