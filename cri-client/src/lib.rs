//! A small Kubernetes CRI v1 client (containerd, CRI-O) over a unix socket: what seccomp-tracer
//! needs to resolve pods and containers to pids and cgroups, and what its tests need to run
//! pods the way the kubelet does. The gRPC code is generated from the vendored
//! `proto/api.proto` (k8s.io/cri-api v0.36.3, Apache-2.0, see `proto/LICENSE`) by
//! `cargo run -p cri-codegen` and committed, so building needs no protobuf compiler.

mod client;
pub mod endpoint;
pub mod info;

/// The generated CRI v1 messages and clients (`runtime.v1`).
#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod runtime {
    /// `package runtime.v1`.
    pub mod v1 {
        include!("generated/runtime.v1.rs");
    }
}

pub use client::{ContainerInfo, CriClient, CriError, ExecOutput};
pub use endpoint::{Endpoint, EndpointError, DEFAULT_ENDPOINTS};
pub use info::{parse_verbose_info, InfoError, VerboseInfo};

/// The labels the kubelet puts on every pod sandbox and container.
pub mod labels {
    /// The pod's name.
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    /// The pod's namespace.
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    /// The pod's uid.
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    /// The container's name within its pod (containers only).
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
}
