//! Pure: CRI runtime endpoints as crictl spells them (`unix:///run/containerd/containerd.sock`,
//! or a bare absolute path), parsed to the socket path. Nothing here does I/O.

use std::path::PathBuf;

/// Where a CRI runtime listens: only unix sockets (TCP endpoints are deprecated in crictl and
/// no runtime here serves one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The socket's absolute path.
    pub socket: PathBuf,
}

/// The endpoints tried, in order, when none is given: containerd, then CRI-O.
pub const DEFAULT_ENDPOINTS: [&str; 2] = [
    "unix:///run/containerd/containerd.sock",
    "unix:///run/crio/crio.sock",
];

/// An endpoint that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CRI runtime endpoint `{endpoint}`: {reason}")]
pub struct EndpointError {
    /// The endpoint as given.
    pub endpoint: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Endpoint {
    /// Parses `unix:///path` (or `unix:/path`, or a bare `/path`).
    pub fn parse(endpoint: &str) -> Result<Self, EndpointError> {
        let err = |reason| EndpointError {
            endpoint: endpoint.to_string(),
            reason,
        };
        let path = match endpoint.split_once("://") {
            Some(("unix", rest)) => rest,
            Some((_, _)) => return Err(err("only unix:// endpoints are supported")),
            None => endpoint.strip_prefix("unix:").unwrap_or(endpoint),
        };
        if path.is_empty() {
            return Err(err("no socket path"));
        }
        if !path.starts_with('/') {
            return Err(err("the socket path must be absolute (unix:///run/...)"));
        }
        Ok(Endpoint {
            socket: PathBuf::from(path),
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unix://{}", self.socket.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crictl_spellings_give_the_socket_path() {
        for e in [
            "unix:///run/containerd/containerd.sock",
            "unix:/run/containerd/containerd.sock",
            "/run/containerd/containerd.sock",
        ] {
            assert_eq!(
                Endpoint::parse(e).unwrap().socket,
                PathBuf::from("/run/containerd/containerd.sock"),
                "{e}"
            );
        }
        assert_eq!(
            Endpoint::parse(DEFAULT_ENDPOINTS[1]).unwrap().to_string(),
            "unix:///run/crio/crio.sock"
        );
    }

    #[test]
    fn tcp_relative_and_empty_endpoints_are_refused_with_the_reason() {
        let e = Endpoint::parse("tcp://localhost:1234").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid CRI runtime endpoint `tcp://localhost:1234`: only unix:// endpoints are supported"
        );
        assert!(Endpoint::parse("unix://run/crio.sock")
            .unwrap_err()
            .reason
            .contains("absolute"));
        assert_eq!(
            Endpoint::parse("unix://").unwrap_err().reason,
            "no socket path"
        );
        assert_eq!(Endpoint::parse("").unwrap_err().reason, "no socket path");
    }
}
