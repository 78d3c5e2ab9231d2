//! Finding what to trace: Docker containers by name or id, cgroup directories, processes.

pub mod cgroup;
pub mod docker;
pub mod selector;

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TargetError {
    #[error("Docker is not reachable ({0}); is dockerd running, and DOCKER_HOST right?")]
    DockerUnreachable(String),
    #[error("Docker API: {0}")]
    Docker(String),
    #[error("container `{name}` not found; {}", running_list(.running))]
    NoContainer { name: String, running: Vec<String> },
    #[error("container `{0}` is not running (use --wait to record it from its next start)")]
    NotRunning(String),
    #[error("cgroup {} not found", .0.display())]
    NoCgroup(PathBuf),
    #[error("no process with pid {0}")]
    NoPid(u32),
    #[error("{0}")]
    Cgroup(String),
}

fn running_list(running: &[String]) -> String {
    if running.is_empty() {
        "no containers are running".into()
    } else {
        format!("running: {}", running.join(", "))
    }
}

/// What the user asked to trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetSpec {
    Container(String),
    Cgroup(String),
    Pid(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_lists_running_containers() {
        let e = TargetError::NoContainer {
            name: "wbe".into(),
            running: vec!["api".into(), "web".into()],
        };
        assert_eq!(
            e.to_string(),
            "container `wbe` not found; running: api, web"
        );
        let e = TargetError::NoContainer {
            name: "x".into(),
            running: vec![],
        };
        assert!(e.to_string().ends_with("no containers are running"));
    }
}
