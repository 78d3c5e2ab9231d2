//! Finding what to trace: Docker containers by name or id, cgroup directories, processes.

pub mod cgroup;
pub mod cri;
pub mod docker;
pub mod engine;
pub mod podman;
pub mod selector;

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TargetError {
    #[error("Docker is not reachable ({0}); is dockerd running, and DOCKER_HOST right?")]
    DockerUnreachable(String),
    #[error("Docker API: {0}")]
    Docker(String),
    #[error("{0} is not reachable; is it installed and running?")]
    EngineUnreachable(String),
    #[error("{0}")]
    Engine(String),
    #[error("container `{name}` is in {engines}: choose one with --engine")]
    Ambiguous { name: String, engines: String },
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

/// A tar archive of one executable file, `path` in its root: the runtime baseline's image.
pub fn one_file_image(path: &str, content: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    archive.append_data(&mut header, path, content)?;
    archive.into_inner()
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

/// Whether `s` can name a container as Docker names them (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`, or
/// an id), or with `pattern`, a name pattern with `*` and `?`.
pub fn check_container_ref(s: &str, pattern: bool) -> Result<(), String> {
    // A pod's container (`NAMESPACE/POD/CONTAINER`) or a pod, through the CRI.
    if s.contains('/') {
        return cri::check_ref(s);
    }
    let ok_char =
        |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c) || (pattern && "*?".contains(c));
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || (pattern && "*?".contains(c)));
    if s.is_empty() {
        return Err("a container name cannot be empty".into());
    }
    if !first_ok || !s.chars().all(ok_char) || s.len() > 255 {
        return Err(format!(
            "`{}` is not a container name (letters, digits, `_`, `.` and `-`, starting with a letter or digit{})",
            s.escape_debug(),
            if pattern { "; `*` and `?` in patterns" } else { "" }
        ));
    }
    Ok(())
}

/// Whether `s` can name a cgroup to trace: not empty, not the root (the whole host), no `..`.
pub fn check_cgroup_path(s: &str) -> Result<(), String> {
    if s.trim_matches('/').is_empty() {
        return Err(
            "a cgroup path cannot be empty or the root cgroup (that is every process on the host)"
                .into(),
        );
    }
    if s.split('/').any(|c| c == ".." || c == ".") {
        return Err(format!(
            "`{}`: `.` and `..` are not allowed in a cgroup path",
            s.escape_debug()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_docker_checks_them() {
        assert!(check_container_ref("web-1_a.b", false).is_ok());
        assert!(check_container_ref("3f2a", false).is_ok());
        // A pod and a pod's container, through the CRI.
        assert!(check_container_ref("default/web-7d9f8c6b5-x2x9z", false).is_ok());
        assert!(check_container_ref("default/web-7d9f8c6b5-x2x9z/nginx", false).is_ok());
        for bad in [
            "",
            "-web",
            "../../etc/passwd",
            "../b",
            "a/b/c/d",
            "web*",
            "a\x1b[31m",
            " web",
        ] {
            assert!(check_container_ref(bad, false).is_err(), "{bad:?}");
        }
        assert!(check_container_ref("web-*", true).is_ok());
        assert!(check_container_ref("*", true).is_ok());
        assert!(check_container_ref("../x", true).is_err());
        assert!(check_cgroup_path("/system.slice/x.service").is_ok());
        for bad in ["", "/", "//", "/a/../b", "./a"] {
            assert!(check_cgroup_path(bad).is_err(), "{bad:?}");
        }
    }

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
