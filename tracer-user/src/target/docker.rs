//! The Docker Engine API, through bollard: resolving containers by name or id prefix, the
//! daemon's cgroup layout, container lifecycle events, and the throwaway container that
//! reveals the runtime's own calls.

use std::collections::HashMap;

use bollard::{
    errors::Error as BollardError,
    models::{ContainerCreateBody, HostConfig},
    query_parameters::{
        CreateContainerOptions, CreateImageOptions, EventsOptions, ListContainersOptions,
        RemoveContainerOptions, RestartContainerOptions,
    },
    Docker,
};
use futures_util::{Stream, StreamExt};

use super::TargetError;
use crate::profile::moby::ContainerSecurity;

/// A container as the tracer needs it.
#[derive(Clone, Debug)]
pub struct Container {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    /// Main process, when running.
    pub pid: Option<u32>,
    /// Its seccomp option and capabilities (what decides which calls are refused).
    pub security: ContainerSecurity,
    /// Its cgroup path (relative to the cgroup2 root), when the engine says it (CRI); else it
    /// is the main process's, or derived from the engine's layout.
    pub cgroup: Option<String>,
}

/// A lifecycle event of some container.
#[derive(Clone, Debug)]
pub struct LifecycleEvent {
    pub action: String,
    pub id: String,
    pub name: String,
    /// The container's labels (Docker sends them with every event).
    pub labels: HashMap<String, String>,
}

/// The daemon facts that shape cgroup paths and the runtime's behaviour.
#[derive(Clone, Debug)]
pub struct DaemonInfo {
    pub cgroup_driver: String,
    /// Identifies daemon + runtime + kernel, for caching what was learned about the runtime.
    pub runtime_key: String,
    /// The OCI runtime containers get by default (`runc`, `crun`...).
    pub default_runtime: String,
}

fn unreachable(e: BollardError) -> TargetError {
    TargetError::DockerUnreachable(e.to_string())
}

fn api(e: BollardError) -> TargetError {
    TargetError::Docker(e.to_string())
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A connected client.
#[derive(Clone)]
pub struct DockerClient {
    docker: Docker,
}

impl DockerClient {
    /// Connects (honouring DOCKER_HOST) and agrees on an API version with the daemon.
    pub async fn connect() -> Result<Self, TargetError> {
        let docker = Docker::connect_with_local_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Self { docker })
    }

    /// Names of the running containers, for error messages.
    pub async fn running_names(&self) -> Vec<String> {
        let opts = ListContainersOptions {
            all: false,
            ..Default::default()
        };
        let mut names: Vec<String> = match self.docker.list_containers(Some(opts)).await {
            Ok(list) => list
                .into_iter()
                .filter_map(|c| c.names?.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// Every container (running or not): id, name and labels.
    pub async fn list_all(
        &self,
    ) -> Result<Vec<(String, String, HashMap<String, String>)>, TargetError> {
        let opts = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let list = self.docker.list_containers(Some(opts)).await.map_err(api)?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let name = c.names?.into_iter().next()?;
                Some((
                    c.id?,
                    name.trim_start_matches('/').to_string(),
                    c.labels.unwrap_or_default().into_iter().collect(),
                ))
            })
            .collect())
    }

    /// The container called `name_or_id` (a unique id prefix is enough), or `None`.
    pub async fn find(&self, name_or_id: &str) -> Result<Option<Container>, TargetError> {
        match self.docker.inspect_container(name_or_id, None).await {
            Ok(c) => {
                let state = c.state.unwrap_or_default();
                let pid = match (state.running, state.pid) {
                    (Some(true), Some(p)) if p > 0 => u32::try_from(p).ok(),
                    _ => None,
                };
                let hc = c.host_config.unwrap_or_default();
                let security = ContainerSecurity::from_host_config(
                    &hc.security_opt.unwrap_or_default(),
                    &hc.cap_add.unwrap_or_default(),
                    &hc.cap_drop.unwrap_or_default(),
                    hc.privileged.unwrap_or_default(),
                );
                Ok(Some(Container {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .name
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    pid,
                    security,
                    cgroup: None,
                }))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api(e)),
        }
    }

    /// Like [`find`](Self::find), but a missing container is an error listing the running ones.
    pub async fn resolve(&self, name_or_id: &str) -> Result<Container, TargetError> {
        match self.find(name_or_id).await? {
            Some(c) => Ok(c),
            None => Err(TargetError::NoContainer {
                name: name_or_id.to_string(),
                running: self.running_names().await,
            }),
        }
    }

    pub async fn daemon_info(&self) -> Result<DaemonInfo, TargetError> {
        let info = self.docker.info().await.map_err(api)?;
        let default_runtime = info.default_runtime.unwrap_or_default();
        let runtime_key = format!(
            "docker {} runtime {default_runtime} runc {} containerd {} kernel {}",
            info.server_version.unwrap_or_default(),
            info.runc_commit.and_then(|c| c.id).unwrap_or_default(),
            info.containerd_commit
                .and_then(|c| c.id)
                .unwrap_or_default(),
            info.kernel_version.unwrap_or_default(),
        );
        Ok(DaemonInfo {
            cgroup_driver: info
                .cgroup_driver
                .map(|d| d.to_string())
                .unwrap_or_else(|| "cgroupfs".into()),
            runtime_key,
            default_runtime,
        })
    }

    pub async fn restart(&self, id: &str) -> Result<(), TargetError> {
        let opts = RestartContainerOptions {
            t: Some(10),
            ..Default::default()
        };
        self.docker
            .restart_container(id, Some(opts))
            .await
            .map_err(api)
    }

    /// Container lifecycle events (create, start, die, destroy...) from now on.
    pub fn lifecycle(&self) -> impl Stream<Item = Result<LifecycleEvent, TargetError>> + use<> {
        let mut filters = HashMap::new();
        filters.insert("type".to_string(), vec!["container".to_string()]);
        let opts = EventsOptions {
            filters: Some(filters),
            ..Default::default()
        };
        self.docker.events(Some(opts)).map(|ev| {
            let ev = ev.map_err(api)?;
            let actor = ev.actor.unwrap_or_default();
            let mut labels: HashMap<String, String> =
                actor.attributes.unwrap_or_default().into_iter().collect();
            let name = labels.remove("name").unwrap_or_default();
            labels.remove("image");
            Ok(LifecycleEvent {
                action: ev.action.unwrap_or_default(),
                id: actor.id.unwrap_or_default(),
                name,
                labels,
            })
        })
    }

    /// Imports a one-file image (`path` in the root, executable) unless it exists already.
    pub async fn ensure_image(
        &self,
        reference: &str,
        path: &str,
        content: &[u8],
    ) -> Result<(), TargetError> {
        if self.docker.inspect_image(reference).await.is_ok() {
            return Ok(());
        }
        let tarball = super::one_file_image(path, content)
            .map_err(|e| TargetError::Docker(format!("building image archive: {e}")))?;
        let (repo, tag) = reference.split_once(':').unwrap_or((reference, "latest"));
        // POST /images/create?fromSrc=- is `docker import`.
        let opts = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo.into()),
            tag: Some(tag.into()),
            ..Default::default()
        };
        let mut stream =
            self.docker
                .create_image(Some(opts), Some(bollard::body_full(tarball.into())), None);
        while let Some(item) = stream.next().await {
            item.map_err(api)?;
        }
        Ok(())
    }

    /// Creates (without starting) a container that runs `cmd` in `image`, with no network,
    /// carrying `label` (key=value).
    pub async fn create(
        &self,
        name: &str,
        image: &str,
        cmd: &[&str],
        label: (&str, &str),
    ) -> Result<String, TargetError> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            labels: Some(HashMap::from([(label.0.to_string(), label.1.to_string())])),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(api)?;
        Ok(created.id)
    }

    /// Removes the stopped containers that carry `label` (key=value).
    pub async fn remove_exited(&self, label: (&str, &str)) -> Result<(), TargetError> {
        let filters = HashMap::from([
            (
                "label".to_string(),
                vec![format!("{}={}", label.0, label.1)],
            ),
            (
                "status".to_string(),
                vec!["exited".to_string(), "created".to_string()],
            ),
        ]);
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        for c in self.docker.list_containers(Some(opts)).await.map_err(api)? {
            if let Some(id) = c.id {
                self.remove(&id).await?;
            }
        }
        Ok(())
    }

    pub async fn start(&self, id: &str) -> Result<(), TargetError> {
        self.docker.start_container(id, None).await.map_err(api)
    }

    /// Waits until container `id` exits.
    pub async fn wait(&self, id: &str) -> Result<(), TargetError> {
        let mut s = self.docker.wait_container(id, None);
        while let Some(r) = s.next().await {
            match r {
                Ok(_) => {}
                // bollard reports a non-zero exit code as an error; the exit itself is what we want.
                Err(BollardError::DockerContainerWaitError { .. }) => break,
                Err(e) => return Err(api(e)),
            }
        }
        Ok(())
    }

    pub async fn remove(&self, id: &str) -> Result<(), TargetError> {
        let opts = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api(e)),
        }
    }
}
