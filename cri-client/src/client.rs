//! The CRI client: a gRPC channel over the runtime's unix socket, with a timeout on connecting
//! and on every call, and typed errors that name the endpoint and the call.

use std::{collections::HashMap, time::Duration};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Uri};

use crate::{
    endpoint::{Endpoint, EndpointError},
    info::{parse_verbose_info, InfoError, VerboseInfo},
    runtime::v1::{
        image_service_client::ImageServiceClient, runtime_service_client::RuntimeServiceClient,
        Container, ContainerConfig, ContainerFilter, ContainerStatus, ContainerStatusRequest,
        CreateContainerRequest, ExecSyncRequest, Image, ImageSpec, ImageStatusRequest,
        ListContainersRequest, ListPodSandboxRequest, PodSandbox, PodSandboxConfig,
        PodSandboxFilter, PodSandboxStatusRequest, RemoveContainerRequest, RemovePodSandboxRequest,
        RunPodSandboxRequest, StartContainerRequest, StopContainerRequest, StopPodSandboxRequest,
        VersionRequest, VersionResponse,
    },
};

/// What can go wrong talking to a CRI runtime.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// The endpoint is malformed.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// Nothing answers at the socket (or not in time).
    #[error("cannot connect to the CRI runtime at {endpoint}: {reason}")]
    Connect {
        /// The endpoint tried.
        endpoint: String,
        /// Why it failed.
        reason: String,
    },
    /// Something answers but is not a CRI v1 runtime (e.g. a containerd without its CRI plugin).
    #[error("{endpoint} does not serve the CRI v1 API: {status}")]
    NotCri {
        /// The endpoint tried.
        endpoint: String,
        /// The runtime's answer to `Version`.
        status: Box<tonic::Status>,
    },
    /// A call failed.
    #[error("CRI {call} at {endpoint} failed: {} ({:?})", status.message(), status.code())]
    Call {
        /// The RPC's name.
        call: &'static str,
        /// The endpoint called.
        endpoint: String,
        /// The runtime's answer.
        status: Box<tonic::Status>,
    },
    /// A call succeeded but its answer lacks what it must carry.
    #[error("CRI {call} at {endpoint}: the answer has no {what}")]
    Incomplete {
        /// The RPC's name.
        call: &'static str,
        /// The endpoint called.
        endpoint: String,
        /// The missing part.
        what: &'static str,
    },
    /// The verbose info of a container cannot be read.
    #[error("container {id}: {source}")]
    Info {
        /// The container's id.
        id: String,
        /// What is wrong with its info.
        source: InfoError,
    },
}

/// A container's status with what its verbose info says (pid, cgroups path).
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    /// The runtime's status (id, metadata, state, labels, image...).
    pub status: ContainerStatus,
    /// Pid and cgroups path from the verbose info.
    pub verbose: VerboseInfo,
}

/// The result of an `ExecSync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The command's exit code.
    pub exit_code: i32,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
}

/// A connected CRI runtime. Cheap to clone; every call has the timeout given to `connect`.
#[derive(Debug, Clone)]
pub struct CriClient {
    endpoint: Endpoint,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl CriClient {
    /// Connects to `endpoint` (`unix:///path`) and checks, with `Version`, that a CRI v1 runtime
    /// answers; `timeout` bounds the connection and every later call.
    pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Self, CriError> {
        let endpoint = Endpoint::parse(endpoint)?;
        let connect_err = |reason: String| CriError::Connect {
            endpoint: endpoint.to_string(),
            reason,
        };
        let socket = endpoint.socket.clone();
        // The URI is a placeholder: the connector below always dials the unix socket.
        let builder = Channel::from_static("http://cri.invalid")
            .connect_timeout(timeout)
            .timeout(timeout);
        let channel = builder.connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }));
        let channel = tokio::time::timeout(timeout, channel)
            .await
            .map_err(|_| connect_err(format!("no answer within {timeout:?}")))?
            .map_err(|e| connect_err(error_chain(&e)))?;
        let client = CriClient {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            endpoint,
        };
        match client.version().await {
            Ok(_) => Ok(client),
            Err(CriError::Call { status, .. }) if status.code() == tonic::Code::Unimplemented => {
                Err(CriError::NotCri {
                    endpoint: client.endpoint.to_string(),
                    status,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn call_err(&self, call: &'static str) -> impl FnOnce(tonic::Status) -> CriError + '_ {
        move |status| CriError::Call {
            call,
            endpoint: self.endpoint.to_string(),
            status: Box::new(status),
        }
    }

    fn incomplete(&self, call: &'static str, what: &'static str) -> CriError {
        CriError::Incomplete {
            call,
            endpoint: self.endpoint.to_string(),
            what,
        }
    }

    /// The runtime's name and versions.
    pub async fn version(&self) -> Result<VersionResponse, CriError> {
        let req = VersionRequest {
            version: "v1".into(),
        };
        Ok(self
            .runtime
            .clone()
            .version(req)
            .await
            .map_err(self.call_err("Version"))?
            .into_inner())
    }

    /// Pod sandboxes (ready or not) carrying all of `labels`.
    pub async fn list_pod_sandboxes(
        &self,
        labels: &HashMap<String, String>,
    ) -> Result<Vec<PodSandbox>, CriError> {
        let req = ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: labels.clone(),
                ..Default::default()
            }),
        };
        Ok(self
            .runtime
            .clone()
            .list_pod_sandbox(req)
            .await
            .map_err(self.call_err("ListPodSandbox"))?
            .into_inner()
            .items)
    }

    /// A pod sandbox's cgroups path (its own container's `runtimeSpec.linux.cgroupsPath`, from
    /// the verbose info): the pod's cgroup directory is its parent.
    pub async fn pod_sandbox_cgroups_path(&self, id: &str) -> Result<Option<String>, CriError> {
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: true,
        };
        let resp = self
            .runtime
            .clone()
            .pod_sandbox_status(req)
            .await
            .map_err(self.call_err("PodSandboxStatus"))?
            .into_inner();
        Ok(parse_verbose_info(&resp.info)
            .ok()
            .and_then(|v| v.cgroups_path))
    }

    /// Containers (any state) carrying all of `labels`, in pod `pod_sandbox_id` if given.
    pub async fn list_containers(
        &self,
        pod_sandbox_id: Option<&str>,
        labels: &HashMap<String, String>,
    ) -> Result<Vec<Container>, CriError> {
        let req = ListContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: pod_sandbox_id.unwrap_or_default().to_string(),
                label_selector: labels.clone(),
                ..Default::default()
            }),
        };
        Ok(self
            .runtime
            .clone()
            .list_containers(req)
            .await
            .map_err(self.call_err("ListContainers"))?
            .into_inner()
            .containers)
    }

    /// A container's status with its verbose info read (pid, cgroups path).
    pub async fn container_status(&self, id: &str) -> Result<ContainerInfo, CriError> {
        let req = ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: true,
        };
        let resp = self
            .runtime
            .clone()
            .container_status(req)
            .await
            .map_err(self.call_err("ContainerStatus"))?
            .into_inner();
        let verbose = parse_verbose_info(&resp.info).map_err(|source| CriError::Info {
            id: id.to_string(),
            source,
        })?;
        let status = resp
            .status
            .ok_or_else(|| self.incomplete("ContainerStatus", "status"))?;
        Ok(ContainerInfo { status, verbose })
    }

    /// The verbose info's raw map of a container (for recording samples and debugging).
    pub async fn container_status_raw_info(
        &self,
        id: &str,
    ) -> Result<HashMap<String, String>, CriError> {
        let req = ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: true,
        };
        Ok(self
            .runtime
            .clone()
            .container_status(req)
            .await
            .map_err(self.call_err("ContainerStatus"))?
            .into_inner()
            .info)
    }

    /// Runs a pod sandbox; its id.
    pub async fn run_pod_sandbox(&self, config: PodSandboxConfig) -> Result<String, CriError> {
        let req = RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        };
        let id = self
            .runtime
            .clone()
            .run_pod_sandbox(req)
            .await
            .map_err(self.call_err("RunPodSandbox"))?
            .into_inner()
            .pod_sandbox_id;
        Ok(id)
    }

    /// Stops a pod sandbox and every container in it.
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.runtime
            .clone()
            .stop_pod_sandbox(req)
            .await
            .map_err(self.call_err("StopPodSandbox"))?;
        Ok(())
    }

    /// Removes a pod sandbox (stopping it and its containers first).
    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.runtime
            .clone()
            .remove_pod_sandbox(req)
            .await
            .map_err(self.call_err("RemovePodSandbox"))?;
        Ok(())
    }

    /// Creates a container in pod `pod_id` (whose config was `sandbox`); its id.
    pub async fn create_container(
        &self,
        pod_id: &str,
        config: ContainerConfig,
        sandbox: PodSandboxConfig,
    ) -> Result<String, CriError> {
        let req = CreateContainerRequest {
            pod_sandbox_id: pod_id.to_string(),
            config: Some(config),
            sandbox_config: Some(sandbox),
        };
        Ok(self
            .runtime
            .clone()
            .create_container(req)
            .await
            .map_err(self.call_err("CreateContainer"))?
            .into_inner()
            .container_id)
    }

    /// Starts a created container.
    pub async fn start_container(&self, id: &str) -> Result<(), CriError> {
        let req = StartContainerRequest {
            container_id: id.to_string(),
        };
        self.runtime
            .clone()
            .start_container(req)
            .await
            .map_err(self.call_err("StartContainer"))?;
        Ok(())
    }

    /// Stops a container: SIGTERM, then SIGKILL after `grace_secs`.
    pub async fn stop_container(&self, id: &str, grace_secs: i64) -> Result<(), CriError> {
        let req = StopContainerRequest {
            container_id: id.to_string(),
            timeout: grace_secs,
        };
        self.runtime
            .clone()
            .stop_container(req)
            .await
            .map_err(self.call_err("StopContainer"))?;
        Ok(())
    }

    /// Removes a container (killing it if it runs).
    pub async fn remove_container(&self, id: &str) -> Result<(), CriError> {
        let req = RemoveContainerRequest {
            container_id: id.to_string(),
        };
        self.runtime
            .clone()
            .remove_container(req)
            .await
            .map_err(self.call_err("RemoveContainer"))?;
        Ok(())
    }

    /// Runs `cmd` in a running container and waits for it (at most `timeout_secs`, 0: none).
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: &[&str],
        timeout_secs: i64,
    ) -> Result<ExecOutput, CriError> {
        let req = ExecSyncRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout_secs,
        };
        let r = self
            .runtime
            .clone()
            .exec_sync(req)
            .await
            .map_err(self.call_err("ExecSync"))?
            .into_inner();
        Ok(ExecOutput {
            exit_code: r.exit_code,
            stdout: r.stdout,
            stderr: r.stderr,
        })
    }

    /// The image `image` as the runtime has it, None if absent (never pulls).
    pub async fn image_status(&self, image: &str) -> Result<Option<Image>, CriError> {
        let req = ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            verbose: false,
        };
        Ok(self
            .images
            .clone()
            .image_status(req)
            .await
            .map_err(self.call_err("ImageStatus"))?
            .into_inner()
            .image)
    }
}

/// An error with its sources, one line (tonic's transport errors say little on their own).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_missing_socket_is_a_connect_error_naming_the_endpoint() {
        let dir = std::env::temp_dir().join(format!("cri-client-missing-{}", std::process::id()));
        let ep = format!("unix://{}/none.sock", dir.display());
        let err = rt()
            .block_on(CriClient::connect(&ep, Duration::from_secs(2)))
            .unwrap_err();
        assert!(matches!(err, CriError::Connect { .. }), "{err:?}");
        assert!(err.to_string().contains(&ep), "{err}");
    }

    #[test]
    fn a_socket_that_never_answers_fails_within_the_timeout() {
        let dir = std::env::temp_dir().join(format!("cri-client-mute-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let sock = dir.join("mute.sock");
        let rt = rt();
        // Accepts connections and never speaks HTTP/2.
        let listener = rt
            .block_on(async { tokio::net::UnixListener::bind(&sock) })
            .expect("bind");
        let ep = format!("unix://{}", sock.display());
        let start = std::time::Instant::now();
        let err = rt
            .block_on(async {
                let _keep = tokio::spawn(async move {
                    let mut held = Vec::new();
                    while let Ok((s, _)) = listener.accept().await {
                        held.push(s);
                    }
                });
                CriClient::connect(&ep, Duration::from_millis(500)).await
            })
            .unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(err.to_string().contains(&ep), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_bad_endpoint_is_refused_before_connecting() {
        let err = rt()
            .block_on(CriClient::connect(
                "tcp://127.0.0.1:1",
                Duration::from_secs(1),
            ))
            .unwrap_err();
        assert!(matches!(err, CriError::Endpoint(_)), "{err:?}");
    }
}
