//! Which container engine names the targets (Docker or Podman), where each puts a container's
//! cgroup, and one client type the session uses whatever the engine: every method answers as
//! the Docker client does, so the session's logic has one shape.

use std::collections::HashMap;

use futures_util::{stream::BoxStream, StreamExt};

use super::{
    cri::CriEngine,
    docker::{Container, DaemonInfo, DockerClient, LifecycleEvent},
    podman::PodmanClient,
    TargetError,
};

/// A container engine, as `--engine` names it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Docker,
    Podman,
    /// A Kubernetes node's runtime (containerd, CRI-O) through the CRI.
    Cri,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "Docker",
            Self::Podman => "Podman",
            Self::Cri => "the CRI runtime",
        }
    }
}

/// Where an engine puts container cgroups: the engine and its cgroup manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub engine: EngineKind,
    /// The systemd cgroup manager (scopes under a slice) rather than cgroupfs.
    pub systemd: bool,
}

impl Layout {
    pub const DOCKER: Self = Self {
        engine: EngineKind::Docker,
        systemd: false,
    };

    /// Container `id`'s cgroup path (relative to the cgroup2 root), given another container's
    /// path of the same engine (the same layout, wherever its parent is) or, without one, the
    /// engine's default parent.
    pub fn container_path(self, id: &str, sibling: Option<(&str, &str)>) -> String {
        if let Some((sibling_id, sibling_path)) = sibling {
            if sibling_path.contains(sibling_id) {
                return sibling_path.replace(sibling_id, id);
            }
        }
        match (self.engine, self.systemd) {
            (EngineKind::Docker, false) => format!("/docker/{id}"),
            (EngineKind::Docker, true) => format!("/system.slice/docker-{id}.scope"),
            (EngineKind::Podman, false) => format!("/libpod_parent/libpod-{id}"),
            (EngineKind::Podman, true) => format!("/machine.slice/libpod-{id}.scope"),
            // Under each pod's own cgroup: the engine says where (Container::cgroup).
            (EngineKind::Cri, false) => format!("/kubepods/{id}"),
            (EngineKind::Cri, true) => format!("/kubepods.slice/cri-containerd-{id}.scope"),
        }
    }
}

/// A connected engine client.
#[derive(Clone)]
pub enum EngineClient {
    Docker(DockerClient),
    Podman(PodmanClient),
    Cri(Box<CriEngine>),
}

macro_rules! each {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            EngineClient::Docker($c) => $e,
            EngineClient::Podman($c) => $e,
            EngineClient::Cri($c) => $e,
        }
    };
}

/// The same, for what only engines that can run a throwaway container do.
macro_rules! runs {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            EngineClient::Docker($c) => $e,
            EngineClient::Podman($c) => $e,
            EngineClient::Cri(_) => Err(TargetError::Engine(
                "the CRI runs no container outside a pod".into(),
            )),
        }
    };
}

impl EngineClient {
    /// Connects to `kind` (for the CRI: at `endpoint`, default containerd's then CRI-O's).
    pub async fn connect(kind: EngineKind, endpoint: Option<&str>) -> Result<Self, TargetError> {
        Ok(match kind {
            EngineKind::Docker => Self::Docker(DockerClient::connect().await?),
            EngineKind::Podman => Self::Podman(PodmanClient::connect().await?),
            EngineKind::Cri => Self::Cri(Box::new(CriEngine::connect(endpoint).await?)),
        })
    }

    /// Without `--engine`: the engine that has the containers `names` (Docker first when
    /// several have none of them, or no names are given); a name found in several engines is
    /// an error that says where.
    pub async fn detect(names: &[&str], endpoint: Option<&str>) -> Result<Self, TargetError> {
        let mut present = Vec::new();
        let mut unreachable = Vec::new();
        // Docker counts as there but unreachable only where it is set up (a socket, or
        // DOCKER_HOST): a Podman-only host's typo is "not found", not "Docker is down".
        let docker_expected = std::env::var_os("DOCKER_HOST").is_some()
            || std::path::Path::new("/var/run/docker.sock").exists();
        match DockerClient::connect().await {
            Ok(c) => present.push(Self::Docker(c)),
            Err(e) if docker_expected => unreachable.push(e),
            Err(_) => {}
        }
        if PodmanClient::installed() {
            match PodmanClient::connect().await {
                Ok(c) => present.push(Self::Podman(c)),
                Err(e) => unreachable.push(e),
            }
        }
        if endpoint.is_some() || CriEngine::present() {
            match CriEngine::connect(endpoint).await {
                Ok(c) => present.push(Self::Cri(Box::new(c))),
                Err(e) => unreachable.push(e),
            }
        }
        if present.is_empty() {
            return Err(unreachable
                .into_iter()
                .next()
                .unwrap_or_else(|| TargetError::EngineUnreachable("no engine found".into())));
        }
        let mut holders: Vec<(usize, Vec<&str>)> = Vec::new();
        for (i, engine) in present.iter().enumerate() {
            let mut found = Vec::new();
            for &n in names {
                if engine.find(n).await?.is_some() {
                    found.push(n);
                }
            }
            if !found.is_empty() {
                holders.push((i, found));
            }
        }
        for &n in names {
            let places: Vec<&str> = holders
                .iter()
                .filter(|(_, found)| found.contains(&n))
                .map(|(i, _)| present[*i].kind().name())
                .collect();
            if places.len() > 1 {
                return Err(TargetError::Ambiguous {
                    name: n.to_string(),
                    engines: places.join(" and "),
                });
            }
        }
        if holders.len() > 1 {
            let per: Vec<String> = holders
                .iter()
                .map(|(i, found)| format!("{} in {}", found.join(", "), present[*i].kind().name()))
                .collect();
            return Err(TargetError::Engine(format!(
                "the containers are in different engines ({}); record each engine's with its own --engine",
                per.join("; ")
            )));
        }
        // Found nowhere that answers: it may be in an engine that does not answer.
        if holders.is_empty() && !names.is_empty() {
            if let Some(e) = unreachable.into_iter().next() {
                return Err(e);
            }
        }
        let pick = holders.first().map_or(0, |(i, _)| *i);
        Ok(present.swap_remove(pick))
    }

    pub fn kind(&self) -> EngineKind {
        match self {
            Self::Docker(_) => EngineKind::Docker,
            Self::Podman(_) => EngineKind::Podman,
            Self::Cri(_) => EngineKind::Cri,
        }
    }

    /// The cgroup directory of the pod `name` names (the CRI's), to watch for its containers.
    pub async fn pod_dir(&self, name: &str) -> Option<String> {
        match self {
            Self::Cri(c) => c.pod_dir(name).await.ok().flatten(),
            _ => None,
        }
    }

    /// The targets `name` stands for: for the CRI, `NAMESPACE/POD` is each of its containers.
    pub async fn expand(&self, name: &str) -> Result<Vec<String>, TargetError> {
        match self {
            Self::Cri(c) => c.expand(name).await,
            _ => Ok(vec![name.to_string()]),
        }
    }

    pub async fn running_names(&self) -> Vec<String> {
        each!(self, c => c.running_names().await)
    }

    pub async fn list_all(
        &self,
    ) -> Result<Vec<(String, String, HashMap<String, String>)>, TargetError> {
        each!(self, c => c.list_all().await)
    }

    pub async fn find(&self, name_or_id: &str) -> Result<Option<Container>, TargetError> {
        each!(self, c => c.find(name_or_id).await)
    }

    /// The engine facts that shape cgroup paths and the runtime's behaviour.
    pub async fn daemon_info(&self) -> Result<(DaemonInfo, Layout), TargetError> {
        let info = each!(self, c => c.daemon_info().await)?;
        let layout = Layout {
            engine: self.kind(),
            systemd: info.cgroup_driver == "systemd",
        };
        Ok((info, layout))
    }

    pub async fn restart(&self, id: &str) -> Result<(), TargetError> {
        each!(self, c => c.restart(id).await)
    }

    pub fn lifecycle(&self) -> BoxStream<'static, Result<LifecycleEvent, TargetError>> {
        each!(self, c => c.lifecycle().boxed())
    }

    pub async fn ensure_image(
        &self,
        reference: &str,
        path: &str,
        content: &[u8],
    ) -> Result<(), TargetError> {
        runs!(self, c => c.ensure_image(reference, path, content).await)
    }

    pub async fn create(
        &self,
        name: &str,
        image: &str,
        cmd: &[&str],
        label: (&str, &str),
    ) -> Result<String, TargetError> {
        runs!(self, c => c.create(name, image, cmd, label).await)
    }

    pub async fn remove_exited(&self, label: (&str, &str)) -> Result<(), TargetError> {
        runs!(self, c => c.remove_exited(label).await)
    }

    pub async fn start(&self, id: &str) -> Result<(), TargetError> {
        runs!(self, c => c.start(id).await)
    }

    pub async fn wait(&self, id: &str) -> Result<(), TargetError> {
        runs!(self, c => c.wait(id).await)
    }

    pub async fn remove(&self, id: &str) -> Result<(), TargetError> {
        runs!(self, c => c.remove(id).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_follow_each_engines_layout() {
        let l = |engine, systemd| Layout { engine, systemd };
        assert_eq!(
            l(EngineKind::Docker, false).container_path("n", None),
            "/docker/n"
        );
        assert_eq!(
            l(EngineKind::Docker, true).container_path("n", None),
            "/system.slice/docker-n.scope"
        );
        assert_eq!(
            l(EngineKind::Podman, false).container_path("n", None),
            "/libpod_parent/libpod-n"
        );
        assert_eq!(
            l(EngineKind::Podman, true).container_path("n", None),
            "/machine.slice/libpod-n.scope"
        );
        // A sibling's path wins: a custom parent (--cgroup-parent, a pod's) is kept.
        assert_eq!(
            l(EngineKind::Podman, false).container_path("new", Some(("old", "/custom/libpod-old"))),
            "/custom/libpod-new"
        );
        assert_eq!(
            Layout::DOCKER.container_path("new", Some(("old", "/system.slice/docker-old.scope"))),
            "/system.slice/docker-new.scope"
        );
    }
}
