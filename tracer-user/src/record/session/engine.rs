//! What the session does with the engine: containers created (a selector may take them in,
//! targets follow them), the provisional cgroups it is asked about, the containers listed again
//! after a gap in its events, `--restart`, and the parent directories watched for new
//! containers (the engine's, or through the CRI, the targets' pods).

use super::{Engine, Session};
use crate::{
    record::config::Config,
    record::{display, targets::Created, RecordError},
    target::{
        cri,
        engine::{EngineClient, EngineKind},
        TargetSpec,
    },
};

impl Engine {
    /// The engine `cfg` names (`--engine`, `--runtime-endpoint`), or the one that has its
    /// containers, connected.
    pub(super) async fn connect(cfg: &Config) -> Result<Self, RecordError> {
        let endpoint = cfg.runtime_endpoint.as_deref();
        let client = match cfg.engine {
            Some(kind) => EngineClient::connect(kind, endpoint).await?,
            None => {
                let names: Vec<&str> = cfg
                    .targets
                    .iter()
                    .filter_map(|t| match t {
                        TargetSpec::Container(n) => Some(n.as_str()),
                        _ => None,
                    })
                    .collect();
                EngineClient::detect(&names, endpoint).await?
            }
        };
        if cfg.restart && client.kind() == EngineKind::Cri {
            return Err(RecordError::Refused(
                "--restart is not supported with the CRI: the kubelet owns the containers \
                 (delete the pod or roll out its workload while recording; restarts are followed)"
                    .into(),
            ));
        }
        let (info, layout) = client.daemon_info().await?;
        Ok(Self {
            client,
            info,
            layout,
        })
    }

    /// `specs` with each pod (through the CRI) as each of its containers.
    pub(super) async fn expand(
        &self,
        specs: &[TargetSpec],
    ) -> Result<Vec<TargetSpec>, RecordError> {
        let mut out = Vec::new();
        for spec in specs {
            match spec {
                TargetSpec::Container(n) => out.extend(
                    self.client
                        .expand(n)
                        .await?
                        .into_iter()
                        .map(TargetSpec::Container),
                ),
                _ => out.push(spec.clone()),
            }
        }
        Ok(out)
    }
}

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

    /// Watches where the engine creates containers: its parent directory, or through the
    /// CRI, where each pod has a directory of its own, the targets' pods.
    pub(super) fn watch_parents(&mut self) -> Result<(), RecordError> {
        let Some(e) = &self.engine else {
            return Ok(());
        };
        {
            // Through the CRI, each pod has a directory of its own: the targets' pods are
            // watched (as many as the kernel has parent slots for), so that a container the
            // kubelet restarts is traced from its creation.
            let parents: Vec<String> = if e.layout.engine == EngineKind::Cri {
                let mut pods: Vec<String> = self
                    .targets
                    .iter()
                    .filter_map(|t| Some(t.path()?.rsplit_once('/')?.0.to_string()))
                    .filter(|p| !p.is_empty())
                    .collect();
                pods.dedup();
                pods
            } else {
                self.targets
                    .container_parent(e.layout)
                    .into_iter()
                    .collect()
            };
            for parent in parents {
                if !self.kernel.watch_parent(&parent)? {
                    display::warn(&format!(
                        "too many cgroup parents to watch; {parent} is not (its containers' \
                         restarts are followed from the next listing)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Through the CRI, a target waited for (its container not created yet) in a pod that
    /// exists: the pod's directory is watched, so the container is traced from its creation.
    pub(super) async fn watch_waited_pods(&mut self) -> Result<(), RecordError> {
        let Some(e) = self
            .engine
            .clone()
            .filter(|e| e.layout.engine == EngineKind::Cri)
        else {
            return Ok(());
        };
        let waited: Vec<String> = self
            .targets
            .iter()
            .filter(|t| t.path().is_none())
            .filter_map(|t| match t.spec() {
                TargetSpec::Container(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        for name in waited {
            if let Some(dir) = e.client.pod_dir(&name).await {
                if !self.kernel.watch_parent(&dir)? {
                    display::warn(&format!(
                        "too many cgroup parents to watch; {dir} is not (its containers' \
                         first calls may be missed)"
                    ));
                }
            }
        }
        Ok(())
    }
}
