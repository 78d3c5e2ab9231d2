//! Rootful Podman, through its command line (a host without systemd has no Podman API socket):
//! resolving containers by name or id prefix, the cgroup layout, lifecycle events
//! (`podman events --format json`) and the throwaway container of the runtime baseline.
//! Parsing is pure and tested on recorded output; running `podman` is the only I/O.

use std::{collections::HashMap, process::Stdio, time::Duration};

use futures_util::Stream;
use serde::Deserialize;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

use crate::profile::moby::{ContainerSecurity, SeccompInForce};

use super::{
    docker::{Container, DaemonInfo, LifecycleEvent},
    TargetError,
};

/// How long one `podman` command may take (a hung engine must not hang the tool).
const TIMEOUT: Duration = Duration::from_secs(60);

/// The `podman` command line.
#[derive(Clone, Debug)]
pub struct PodmanClient {
    program: String,
}

/// One entry of `podman ps --format json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    labels: Option<HashMap<String, String>>,
    #[serde(default)]
    state: String,
}

/// The parts of `podman container inspect --format json` used here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspected {
    id: String,
    name: String,
    state: InspectedState,
    #[serde(default)]
    host_config: InspectedHostConfig,
}

/// Podman says its capabilities as Docker's default less `CapDrop` plus `CapAdd`, and its
/// seccomp option as the profile's path (`seccomp=/path/web.json`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedHostConfig {
    #[serde(default)]
    security_opt: Option<Vec<String>>,
    #[serde(default)]
    cap_add: Option<Vec<String>>,
    #[serde(default)]
    cap_drop: Option<Vec<String>>,
    #[serde(default)]
    privileged: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedState {
    #[serde(default)]
    running: bool,
    #[serde(default)]
    pid: i64,
}

/// One line of `podman events --format json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Event {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    status: String,
    #[serde(default, rename = "Type")]
    kind: String,
    #[serde(default)]
    attributes: Option<HashMap<String, String>>,
}

/// The parts of `podman info --format json` used here.
#[derive(Debug, Deserialize)]
struct Info {
    host: InfoHost,
    version: InfoVersion,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfoHost {
    #[serde(default)]
    cgroup_manager: String,
    #[serde(default, rename = "ociRuntime")]
    oci_runtime: InfoRuntime,
    #[serde(default)]
    kernel: String,
}

#[derive(Debug, Default, Deserialize)]
struct InfoRuntime {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InfoVersion {
    #[serde(default)]
    version: String,
}

fn api(what: &str, e: impl std::fmt::Display) -> TargetError {
    TargetError::Engine(format!("podman {what}: {e}"))
}

/// A listed container: id, name, labels, running.
type Row = (String, String, HashMap<String, String>, bool);

/// `podman ps --format json`: id, name and labels of each container.
fn parse_list(json: &[u8]) -> Result<Vec<Row>, String> {
    let list: Vec<Listed> = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let name = c.names.into_iter().next()?;
            Some((
                c.id,
                name,
                c.labels.unwrap_or_default(),
                c.state == "running",
            ))
        })
        .collect())
}

/// `podman container inspect --format json` of one container; `read` gives the content of
/// the profile file a `seccomp=/path` option names (Podman keeps the path, Docker the content).
fn parse_inspect(
    json: &[u8],
    read: impl Fn(&str) -> Option<String>,
) -> Result<Option<Container>, String> {
    let list: Vec<Inspected> = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    Ok(list.into_iter().next().map(|c| {
        let hc = c.host_config;
        let mut unread = None;
        let opts: Vec<String> = hc
            .security_opt
            .unwrap_or_default()
            .into_iter()
            .map(|o| match o.strip_prefix("seccomp=") {
                Some(path) if path.starts_with('/') => match read(path) {
                    Some(content) => format!("seccomp={content}"),
                    None => {
                        unread = Some(path.to_string());
                        o
                    }
                },
                _ => o,
            })
            .collect();
        // Podman's default profile (containers/common's) refuses what Docker's does.
        let mut security = ContainerSecurity::from_host_config(
            &opts,
            &hc.cap_add.unwrap_or_default(),
            &hc.cap_drop.unwrap_or_default(),
            hc.privileged,
        );
        if let Some(path) = unread {
            // Its own profile all the same, but nothing to evaluate or heal.
            security.seccomp = SeccompInForce::Unreadable(format!("{path} could not be read"));
            security.own_profile = None;
        }
        Container {
            pid: (c.state.running && c.state.pid > 0)
                .then(|| u32::try_from(c.state.pid).ok())
                .flatten(),
            id: c.id,
            name: c.name,
            security,
            cgroup: None,
        }
    }))
}

/// The profile file at `path`, if it is a regular file outside /proc, /sys and /dev, opened
/// without blocking (nothing like /proc/kmsg holds the event loop), of profile size. Read when
/// the container is found: a file edited since it started reads as edited.
fn read_profile_file(path: &str) -> Option<String> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    // Links are followed as Podman followed them, but never into the kernel's files.
    let path = std::fs::canonicalize(path).ok()?;
    if ["/proc", "/sys", "/dev"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        return None;
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    f.take(crate::profiles::MAX_PROFILE_BYTES + 1)
        .read_to_string(&mut text)
        .ok()?;
    (text.len() as u64 <= crate::profiles::MAX_PROFILE_BYTES).then_some(text)
}

/// A `podman events` line, with Podman's actions named as Docker names them (`remove` is
/// `destroy`); `None` for other lines and other event types.
fn parse_event(line: &str) -> Option<LifecycleEvent> {
    let ev: Event = serde_json::from_str(line.trim()).ok()?;
    if ev.kind != "container" || ev.id.is_empty() {
        return None;
    }
    let action = match ev.status.as_str() {
        "remove" => "destroy".to_string(),
        "died" => "die".to_string(),
        other => other.to_string(),
    };
    let mut labels = ev.attributes.unwrap_or_default();
    labels.remove("image");
    labels.remove("name");
    Some(LifecycleEvent {
        action,
        id: ev.id,
        name: ev.name,
        labels,
    })
}

fn parse_info(json: &[u8]) -> Result<DaemonInfo, String> {
    let info: Info = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let runtime = info.host.oci_runtime;
    let runtime_version = runtime
        .version
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    Ok(DaemonInfo {
        cgroup_driver: if info.host.cgroup_manager == "systemd" {
            "systemd".into()
        } else {
            "cgroupfs".into()
        },
        runtime_key: format!(
            "podman {} runtime {} {runtime_version} kernel {}",
            info.version.version, runtime.name, info.host.kernel
        ),
        default_runtime: runtime.name,
    })
}

/// Whether `podman` failed because the container does not exist.
fn is_not_found(stderr: &str) -> bool {
    stderr.contains("no such container")
}

impl PodmanClient {
    /// Finds `podman` and checks that it answers (as root: rootless containers are not
    /// visible to the kernel programs' cgroup watch).
    pub async fn connect() -> Result<Self, TargetError> {
        let c = Self {
            program: "podman".into(),
        };
        c.run(&["version", "--format", "json"])
            .await
            .map_err(|e| TargetError::EngineUnreachable(format!("podman: {e}")))?;
        Ok(c)
    }

    /// Whether a `podman` program is installed here (without running it).
    pub fn installed() -> bool {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join("podman").is_file()))
    }

    /// Runs `podman ARGS`: its standard output, or its last error line.
    async fn run(&self, args: &[&str]) -> Result<Vec<u8>, TargetError> {
        let out = tokio::time::timeout(
            TIMEOUT,
            Command::new(&self.program)
                .args(args)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| api(args[0], format!("no answer within {TIMEOUT:?}")))?
        .map_err(|e| api(args[0], e))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        Err(TargetError::Engine(format!(
            "podman {}: {}",
            args[0],
            last.unwrap_or("failed").trim()
        )))
    }

    /// Every container (running or not): id, name, labels, running.
    async fn list(
        &self,
    ) -> Result<Vec<(String, String, HashMap<String, String>, bool)>, TargetError> {
        let out = self.run(&["ps", "--all", "--format", "json"]).await?;
        parse_list(&out).map_err(|e| api("ps", e))
    }

    /// Names of the running containers, for error messages.
    pub async fn running_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .list()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.3)
            .map(|c| c.1)
            .collect();
        names.sort();
        names
    }

    /// Every container (running or not): id, name and labels.
    pub async fn list_all(
        &self,
    ) -> Result<Vec<(String, String, HashMap<String, String>)>, TargetError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .map(|(id, name, labels, _)| (id, name, labels))
            .collect())
    }

    /// The container called `name_or_id` (a unique id prefix is enough), or `None`.
    pub async fn find(&self, name_or_id: &str) -> Result<Option<Container>, TargetError> {
        // `--` so that a name can never be taken for an option.
        match self
            .run(&["container", "inspect", "--format", "json", "--", name_or_id])
            .await
        {
            Ok(out) => parse_inspect(&out, read_profile_file).map_err(|e| api("inspect", e)),
            Err(TargetError::Engine(e)) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn daemon_info(&self) -> Result<DaemonInfo, TargetError> {
        let out = self.run(&["info", "--format", "json"]).await?;
        parse_info(&out).map_err(|e| api("info", e))
    }

    pub async fn restart(&self, id: &str) -> Result<(), TargetError> {
        self.run(&["restart", "--time", "10", "--", id])
            .await
            .map(|_| ())
    }

    /// Container lifecycle events from now on, as a stream that ends (and is resubscribed by
    /// the session) if `podman events` exits.
    pub fn lifecycle(&self) -> impl Stream<Item = Result<LifecycleEvent, TargetError>> + use<> {
        let program = self.program.clone();
        futures_util::stream::unfold(None, move |state| {
            let program = program.clone();
            async move {
                let (mut child, mut lines) = match state {
                    Some(s) => s,
                    None => {
                        let spawned = Command::new(&program)
                            .args(["events", "--format", "json", "--filter", "type=container"])
                            .stdin(Stdio::null())
                            .stdout(Stdio::piped())
                            .stderr(Stdio::null())
                            .kill_on_drop(true)
                            .spawn();
                        let mut child = match spawned {
                            Ok(c) => c,
                            Err(e) => return Some((Err(api("events", e)), None)),
                        };
                        let Some(out) = child.stdout.take() else {
                            return Some((Err(api("events", "no output")), None));
                        };
                        (child, BufReader::new(out).lines())
                    }
                };
                loop {
                    match lines.next_line().await {
                        Ok(Some(line)) => {
                            if let Some(ev) = parse_event(&line) {
                                return Some((Ok(ev), Some((child, lines))));
                            }
                        }
                        Ok(None) | Err(_) => {
                            let _ = child.kill().await;
                            return None;
                        }
                    }
                }
            }
        })
    }

    /// Imports a one-file image (`path` in the root, executable) unless it exists already.
    pub async fn ensure_image(
        &self,
        reference: &str,
        path: &str,
        content: &[u8],
    ) -> Result<(), TargetError> {
        if self.run(&["image", "exists", reference]).await.is_ok() {
            return Ok(());
        }
        let dir = tempfile::tempdir().map_err(|e| api("import", e))?;
        let tarball = dir.path().join("image.tar");
        let bytes = super::one_file_image(path, content).map_err(|e| api("import", e))?;
        std::fs::write(&tarball, bytes).map_err(|e| api("import", e))?;
        let file = tarball.to_string_lossy().into_owned();
        self.run(&["import", "--quiet", &file, reference])
            .await
            .map(|_| ())
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
        let label = format!("{}={}", label.0, label.1);
        let mut args = vec![
            "create",
            "--name",
            name,
            "--network",
            "none",
            "--label",
            &label,
            "--",
            image,
        ];
        args.extend_from_slice(cmd);
        let out = self.run(&args).await?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// Removes the stopped containers that carry `label` (key=value).
    pub async fn remove_exited(&self, label: (&str, &str)) -> Result<(), TargetError> {
        for (id, _, labels, running) in self.list().await? {
            if !running && labels.get(label.0).map(String::as_str) == Some(label.1) {
                self.remove(&id).await?;
            }
        }
        Ok(())
    }

    pub async fn start(&self, id: &str) -> Result<(), TargetError> {
        self.run(&["start", "--", id]).await.map(|_| ())
    }

    /// Waits until container `id` exits.
    pub async fn wait(&self, id: &str) -> Result<(), TargetError> {
        self.run(&["wait", "--", id]).await.map(|_| ())
    }

    pub async fn remove(&self, id: &str) -> Result<(), TargetError> {
        match self.run(&["rm", "--force", "--", id]).await {
            Ok(_) => Ok(()),
            Err(TargetError::Engine(e)) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_containers_with_labels_and_state() {
        let json = br#"[{"AutoRemove":false,"Id":"3716","Labels":{"app":"web"},"Names":["st-a"],
            "Pid":3122,"State":"running"},{"Id":"99","Labels":null,"Names":["st-b"],"State":"exited"},
            {"Id":"00","Names":[],"State":"running"}]"#;
        let l = parse_list(json).unwrap();
        assert_eq!(l.len(), 2, "a container without a name is skipped");
        assert_eq!(l[0].0, "3716");
        assert_eq!(l[0].1, "st-a");
        assert_eq!(l[0].2.get("app").map(String::as_str), Some("web"));
        assert!(l[0].3 && !l[1].3);
        assert!(l[1].2.is_empty());
        assert!(parse_list(b"not json").is_err());
    }

    #[test]
    fn inspect_gives_the_pid_only_while_running() {
        let running = br#"[{"Id":"2eee","Name":"st-p","State":{"Status":"running","Running":true,
            "Pid":2019,"CgroupPath":"/libpod_parent/libpod-2eee"}}]"#;
        let c = parse_inspect(running, |_| None).unwrap().unwrap();
        assert_eq!(
            (c.id.as_str(), c.name.as_str(), c.pid),
            ("2eee", "st-p", Some(2019))
        );
        let stopped = br#"[{"Id":"2eee","Name":"st-p","State":{"Running":false,"Pid":0}}]"#;
        assert_eq!(parse_inspect(stopped, |_| None).unwrap().unwrap().pid, None);
        assert!(parse_inspect(b"[]", |_| None).unwrap().is_none());
        assert_eq!(
            parse_inspect(running, |_| None).unwrap().unwrap().security,
            ContainerSecurity::docker_default()
        );
    }

    #[test]
    fn profile_files_are_read_bounded_and_only_when_regular() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.json");
        std::fs::write(&p, "{}").unwrap();
        assert_eq!(
            read_profile_file(p.to_str().unwrap()).as_deref(),
            Some("{}")
        );
        let link = dir.path().join("l.json");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(
            read_profile_file(link.to_str().unwrap()).as_deref(),
            Some("{}"),
            "as Podman read it"
        );
        let kmsg = dir.path().join("k.json");
        std::os::unix::fs::symlink("/proc/kmsg", &kmsg).unwrap();
        assert_eq!(read_profile_file(kmsg.to_str().unwrap()), None);
        assert_eq!(read_profile_file(dir.path().to_str().unwrap()), None);
        assert_eq!(read_profile_file("/dev/zero"), None);
    }

    #[test]
    fn inspect_reads_the_profile_a_seccomp_option_names_and_the_capabilities() {
        let json = br#"[{"Id":"2eee","Name":"st-p","State":{"Running":true,"Pid":9},
            "HostConfig":{"SecurityOpt":["seccomp=/etc/p.json"],"CapAdd":["CAP_SYS_NICE"],
            "CapDrop":["CAP_AUDIT_WRITE","CAP_MKNOD","CAP_NET_RAW"],"Privileged":false}}]"#;
        let own = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#;
        let c = parse_inspect(json, |p| (p == "/etc/p.json").then(|| own.to_string()))
            .unwrap()
            .unwrap();
        assert_eq!(c.security.own_profile.as_deref(), Some(own));
        assert!(matches!(c.security.seccomp, SeccompInForce::Custom(_)));
        assert!(c.security.caps.has("CAP_SYS_NICE") && !c.security.caps.has("CAP_NET_RAW"));
        // A file that cannot be read: its own profile all the same, not evaluated.
        let c = parse_inspect(json, |_| None).unwrap().unwrap();
        assert_eq!(
            c.security.seccomp,
            SeccompInForce::Unreadable("/etc/p.json could not be read".into())
        );
        assert_eq!(c.security.own_profile, None);
        let unconfined = br#"[{"Id":"1","Name":"u","State":{},
            "HostConfig":{"SecurityOpt":["seccomp=unconfined"]}}]"#;
        let c = parse_inspect(unconfined, |_| None).unwrap().unwrap();
        assert_eq!(c.security.seccomp, SeccompInForce::Unconfined);
    }

    #[test]
    fn events_are_named_as_docker_names_them() {
        let line = r#"{"ID":"2eee","Image":"localhost/st-busybox:latest","Name":"st-p","Status":"remove","Time":"2026-11-27T09:05:15Z","Type":"container","Attributes":{"app":"web","image":"x","name":"st-p"}}"#;
        let ev = parse_event(line).unwrap();
        assert_eq!(ev.action, "destroy");
        assert_eq!((ev.id.as_str(), ev.name.as_str()), ("2eee", "st-p"));
        assert_eq!(ev.labels, HashMap::from([("app".into(), "web".into())]));
        let create = line.replace("\"remove\"", "\"create\"");
        assert_eq!(parse_event(&create).unwrap().action, "create");
        assert!(parse_event(&line.replace("\"container\"", "\"image\"")).is_none());
        assert!(parse_event("time=... level=warning msg=x").is_none());
    }

    #[test]
    fn info_names_the_manager_and_the_runtime() {
        let json = br#"{"host":{"cgroupManager":"cgroupfs","kernel":"6.18.0","ociRuntime":{"name":"crun","package":"crun","path":"/usr/bin/crun","version":"crun version 1.8.1\ncommit: f8a0"}},"version":{"Version":"4.3.1"}}"#;
        let info = parse_info(json).unwrap();
        assert_eq!(info.cgroup_driver, "cgroupfs");
        assert_eq!(info.default_runtime, "crun");
        assert_eq!(
            info.runtime_key,
            "podman 4.3.1 runtime crun crun version 1.8.1 kernel 6.18.0"
        );
        let systemd = String::from_utf8_lossy(json).replace("cgroupfs", "systemd");
        assert_eq!(
            parse_info(systemd.as_bytes()).unwrap().cgroup_driver,
            "systemd"
        );
    }

    #[test]
    fn a_missing_container_is_not_an_error() {
        assert!(is_not_found("Error: no such container nope"));
        assert!(!is_not_found("Error: cannot connect"));
    }
}
