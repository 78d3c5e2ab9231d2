//! CRI helpers: pods and containers run through the test containerd's CRI plugin (see
//! xtask/scripts/engines.sh) the way the kubelet does (host network, cgroup parent
//! `/kubepods/<qos>/pod<uid>`, kubelet labels, a restart as a new container with attempt + 1),
//! removed on drop.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use cri_client::{
    labels,
    runtime::v1::{
        security_profile::ProfileType, ContainerConfig, ContainerMetadata, ImageSpec,
        LinuxContainerConfig, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
        LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig,
        PodSandboxMetadata, SecurityProfile,
    },
    ContainerInfo, CriClient, ExecOutput,
};

/// The test containerd's CRI endpoint.
pub const CRI_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";
/// The namespace of every test pod.
pub const POD_NAMESPACE: &str = "st-e2e";
/// The test images as containerd names them.
pub const CRI_BUSYBOX: &str = "docker.io/library/st-busybox:latest";

/// The QoS class a pod's cgroup sits under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    /// `/kubepods/besteffort/pod<uid>`.
    BestEffort,
    /// `/kubepods/burstable/pod<uid>`.
    Burstable,
}

/// How a container's seccomp profile is given to the runtime.
#[derive(Debug, Clone)]
pub enum CriSeccomp {
    /// The `seccomp` field: `SecurityProfile { Localhost, localhost_ref: PATH }` (CRI since 1.20).
    Localhost(PathBuf),
    /// The deprecated `seccomp_profile_path` field: `localhost/PATH`.
    LocalhostPath(PathBuf),
}

/// A blocking handle on the CRI runtime (the harness is synchronous).
pub struct Cri {
    rt: tokio::runtime::Runtime,
    /// The client, for calls the helpers below do not wrap.
    pub client: CriClient,
}

impl Cri {
    /// Connects to [`CRI_ENDPOINT`]; panics (never skips) when it does not answer.
    pub fn connect() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let client = rt
            .block_on(CriClient::connect(CRI_ENDPOINT, Duration::from_secs(10)))
            .unwrap_or_else(|e| panic!("{e}: run `cargo xtask setup`"));
        Cri { rt, client }
    }

    /// Runs a future of the client to completion.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Removes every test pod named `name` left by an earlier run.
    pub fn remove_pods_named(&self, name: &str) {
        let sel = HashMap::from([
            (labels::POD_NAME.to_string(), name.to_string()),
            (labels::POD_NAMESPACE.to_string(), POD_NAMESPACE.to_string()),
        ]);
        if let Ok(pods) = self.block_on(self.client.list_pod_sandboxes(&sel)) {
            for p in pods {
                let _ = self.block_on(self.client.stop_pod_sandbox(&p.id));
                let _ = self.block_on(self.client.remove_pod_sandbox(&p.id));
            }
        }
    }
}

/// A pod sandbox on the host network, its containers, removed on drop (with its pod cgroups).
pub struct CriPod {
    /// The connection.
    pub cri: Cri,
    /// The pod's name (prefixed `st-e2e-`).
    pub name: String,
    /// Its uid (in its cgroup parent's name).
    pub uid: String,
    /// Its sandbox id.
    pub id: String,
    config: PodSandboxConfig,
}

impl CriPod {
    /// Runs pod `name` in namespace [`POD_NAMESPACE`] under `qos`, after removing a leftover.
    pub fn run(name: &str, qos: Qos) -> Self {
        assert!(name.starts_with("st-e2e-"), "test pods are st-e2e-*");
        let cri = Cri::connect();
        cri.remove_pods_named(name);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        // Shaped like a Kubernetes uid; unique per run so leftovers never collide.
        let uid = format!("5e0c0000-0000-4000-8000-{:012x}", nanos % (1 << 48));
        let qos_dir = match qos {
            Qos::BestEffort => "besteffort",
            Qos::Burstable => "burstable",
        };
        let log_dir = std::env::temp_dir().join(format!("st-e2e-pods/{name}_{uid}"));
        let _ = std::fs::create_dir_all(&log_dir);
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_string(),
                uid: uid.clone(),
                namespace: POD_NAMESPACE.to_string(),
                attempt: 0,
            }),
            log_directory: log_dir.display().to_string(),
            labels: HashMap::from([
                (labels::POD_NAME.to_string(), name.to_string()),
                (labels::POD_NAMESPACE.to_string(), POD_NAMESPACE.to_string()),
                (labels::POD_UID.to_string(), uid.clone()),
                ("app".to_string(), name.to_string()),
            ]),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: format!("/kubepods/{qos_dir}/pod{uid}"),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(host_network()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = cri
            .block_on(cri.client.run_pod_sandbox(config.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        CriPod {
            cri,
            name: name.to_string(),
            uid,
            id,
            config,
        }
    }

    /// The pod's cgroup parent (`/kubepods/<qos>/pod<uid>`).
    pub fn cgroup_parent(&self) -> String {
        self.config
            .linux
            .as_ref()
            .map(|l| l.cgroup_parent.clone())
            .unwrap_or_default()
    }

    /// Creates and starts container `name` (attempt `attempt`) running `cmd` in st-busybox,
    /// under `seccomp` if given; its id.
    // `seccomp_profile_path` is deprecated in CRI but still read by containerd 1.6.
    #[allow(deprecated)]
    pub fn start(
        &self,
        name: &str,
        cmd: &[&str],
        attempt: u32,
        seccomp: Option<CriSeccomp>,
    ) -> Result<String, cri_client::CriError> {
        let mut sc = LinuxContainerSecurityContext {
            namespace_options: Some(host_network()),
            ..Default::default()
        };
        match seccomp {
            Some(CriSeccomp::Localhost(p)) => {
                sc.seccomp = Some(SecurityProfile {
                    profile_type: ProfileType::Localhost as i32,
                    localhost_ref: p.display().to_string(),
                })
            }
            Some(CriSeccomp::LocalhostPath(p)) => {
                sc.seccomp_profile_path = format!("localhost/{}", p.display())
            }
            None => {}
        }
        let mut lbls = self.config.labels.clone();
        lbls.remove("app");
        lbls.insert(labels::CONTAINER_NAME.to_string(), name.to_string());
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.to_string(),
                attempt,
            }),
            image: Some(ImageSpec {
                image: CRI_BUSYBOX.to_string(),
                ..Default::default()
            }),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            labels: lbls,
            log_path: format!("{name}/{attempt}.log"),
            linux: Some(LinuxContainerConfig {
                security_context: Some(sc),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = &self.cri.client;
        let id = self
            .cri
            .block_on(c.create_container(&self.id, config, self.config.clone()))?;
        self.cri.block_on(c.start_container(&id))?;
        Ok(id)
    }

    /// Restarts container `id` the way the kubelet does: stop it, then create and start a new
    /// one of the same name with `attempt`; the new id.
    pub fn restart(&self, id: &str, name: &str, cmd: &[&str], attempt: u32) -> String {
        self.cri
            .block_on(self.cri.client.stop_container(id, 2))
            .unwrap_or_else(|e| panic!("{e}"));
        self.start(name, cmd, attempt, None)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Status and verbose info (pid, cgroups path) of container `id`.
    pub fn status(&self, id: &str) -> ContainerInfo {
        self.cri
            .block_on(self.cri.client.container_status(id))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `ExecSync` of `cmd` in container `id` (10 s at most).
    pub fn exec_sync(&self, id: &str, cmd: &[&str]) -> ExecOutput {
        self.cri
            .block_on(self.cri.client.exec_sync(id, cmd, 10))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The container's log file (as containerd writes it, CRI log format).
    pub fn log_of(&self, name: &str, attempt: u32) -> String {
        let dir = Path::new(&self.config.log_directory);
        std::fs::read_to_string(dir.join(format!("{name}/{attempt}.log"))).unwrap_or_default()
    }
}

impl Drop for CriPod {
    fn drop(&mut self) {
        let _ = self
            .cri
            .block_on(self.cri.client.stop_pod_sandbox(&self.id));
        let _ = self
            .cri
            .block_on(self.cri.client.remove_pod_sandbox(&self.id));
        // runc removes the containers' cgroups, not the pod's (the kubelet would): every
        // hierarchy's pod<uid> directory, once empty.
        let parent = self.cgroup_parent();
        let rel = parent.trim_start_matches('/');
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(rel));
        if let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") {
            for d in dirs.flatten() {
                let _ = std::fs::remove_dir(d.path().join(rel));
            }
        }
        let _ = std::fs::remove_dir_all(&self.config.log_directory);
    }
}

/// Host network (no CNI needed), pod-wide pid and ipc namespaces, as a hostNetwork pod has.
fn host_network() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}
