//! Kubernetes nodes through the CRI (containerd, CRI-O): pods and containers named as the
//! kubelet labels them (`NAMESPACE/POD/CONTAINER`, or `NAMESPACE/POD` for all its containers),
//! their pids and cgroups from `ContainerStatus`'s verbose info, and their lifecycle by
//! listing them again every second (CRI v1 has no event stream before containerd 1.7).
//! A profile belongs to a container name within the pod's owner (its `app.kubernetes.io/name`
//! or `app` label, else the pod name without its generated suffix), so replicas and pods a
//! controller re-creates record into one profile, as the Security Profiles Operator does.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use cri_client::{labels, CriClient, CriError, DEFAULT_ENDPOINTS};
use futures_util::Stream;

use super::{
    docker::{Container, DaemonInfo, LifecycleEvent},
    TargetError,
};

/// How long a CRI call may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How often the containers are listed again, to see them come and go.
const POLL: Duration = Duration::from_secs(1);

/// CRI's `ContainerState::ContainerRunning`.
const RUNNING: i32 = 1;

fn err(e: CriError) -> TargetError {
    TargetError::Engine(e.to_string())
}

/// A container as the kubelet labels it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub attempt: u32,
    pub running: bool,
    pub created_at: i64,
    /// The pod's labels, then the container's (which win).
    pub labels: HashMap<String, String>,
}

impl Row {
    /// `NAMESPACE/POD/CONTAINER`.
    pub fn full_name(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.pod, self.container)
    }

    /// The name of the profile this container records into: `<owner>-<container>`.
    pub fn profile_name(&self) -> String {
        let owner = owner_of(&self.pod, &self.labels);
        sanitize(&format!("{owner}-{}", self.container))
    }
}

/// What a pod's profiles are named after: its `app.kubernetes.io/name` or `app` label, else
/// its name without what the controller generated (a ReplicaSet's `-<pod-template-hash>-xxxxx`,
/// a DaemonSet's or Job's `-xxxxx`, a StatefulSet's `-<ordinal>`).
pub fn owner_of(pod: &str, labels: &HashMap<String, String>) -> String {
    for key in ["app.kubernetes.io/name", "app"] {
        if let Some(v) = labels.get(key).filter(|v| !v.is_empty()) {
            return v.clone();
        }
    }
    if let Some(hash) = labels.get("pod-template-hash").filter(|h| !h.is_empty()) {
        if let Some(i) = pod.rfind(&format!("-{hash}-")) {
            return pod[..i].to_string();
        }
    }
    if labels.contains_key("statefulset.kubernetes.io/pod-name") {
        if let Some((base, n)) = pod.rsplit_once('-') {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                return base.to_string();
            }
        }
    }
    // A generated suffix: five characters of the API server's alphabet (no vowels).
    if let Some((base, suffix)) = pod.rsplit_once('-') {
        let generated = suffix.len() == 5
            && suffix
                .bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b));
        if generated && !base.is_empty() {
            return base.to_string();
        }
    }
    pod.to_string()
}

/// A name safe as a file name: what is not `[A-Za-z0-9_.-]` becomes `_`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The label under which a listed or created container carries its cgroup path, for the
/// session to follow it there (a new pod's cgroup cannot be derived from another's).
pub const CGROUP_LABEL: &str = "org.seccomp-tracer.cgroup";
/// The label under which it carries its `NAMESPACE/POD/CONTAINER`, for a target that named it
/// so before it existed (`--wait`).
pub const NAME_LABEL: &str = "org.seccomp-tracer.name";

/// The profile name a `NAMESPACE/POD/CONTAINER` reference gets before its container exists
/// (the pod's labels unknown yet): `<pod without its generated suffix>-<container>`.
pub fn label_of_ref(s: &str) -> Option<String> {
    match parse_ref(s) {
        CriRef::Container { pod, container, .. } => Some(sanitize(&format!(
            "{}-{container}",
            owner_of(pod, &HashMap::new())
        ))),
        _ => None,
    }
}

/// The cgroup directory (relative to the cgroup2 root) of an OCI `linux.cgroupsPath`: a path
/// as it is with the cgroupfs driver; `slice:prefix:name` with the systemd driver, the slice
/// nested as systemd nests it (`kubepods-besteffort-pod1.slice` is
/// `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice`).
pub fn cgroup_dir(cgroups_path: &str) -> Option<String> {
    if cgroups_path.starts_with('/') {
        return Some(cgroups_path.trim_end_matches('/').to_string());
    }
    let mut parts = cgroups_path.splitn(3, ':');
    let (slice, prefix, name) = (parts.next()?, parts.next()?, parts.next()?);
    let stem = slice.strip_suffix(".slice")?;
    let mut dir = String::new();
    let mut acc = String::new();
    for piece in stem.split('-').filter(|p| !p.is_empty()) {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(piece);
        dir.push_str(&format!("/{acc}.slice"));
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Some(format!("{dir}/{unit}"))
}

/// What a CRI target names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CriRef<'a> {
    /// `NAMESPACE/POD/CONTAINER`
    Container {
        namespace: &'a str,
        pod: &'a str,
        container: &'a str,
    },
    /// `NAMESPACE/POD`: every container of the pod.
    Pod { namespace: &'a str, pod: &'a str },
    /// A profile name (`<owner>-<container>`) or a container id prefix.
    Other(&'a str),
}

pub fn parse_ref(s: &str) -> CriRef<'_> {
    let parts: Vec<&str> = s.split('/').collect();
    match parts[..] {
        [namespace, pod, container] => CriRef::Container {
            namespace,
            pod,
            container,
        },
        [namespace, pod] => CriRef::Pod { namespace, pod },
        _ => CriRef::Other(s),
    }
}

/// Whether `s` can be a CRI target: Kubernetes names (DNS labels and subdomains, `[a-z0-9.-]`),
/// or a profile name or id.
pub fn check_ref(s: &str) -> Result<(), String> {
    // Kubernetes names start and end with a letter or digit (so no `.` or `..`).
    let ok = |part: &str| {
        part.len() <= 253
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.ends_with(|c: char| c.is_ascii_alphanumeric())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    };
    if s.split('/').count() > 3 || !s.split('/').all(ok) {
        return Err(format!(
            "`{}` is not NAMESPACE/POD/CONTAINER, NAMESPACE/POD or a profile name",
            s.escape_debug()
        ));
    }
    Ok(())
}

/// The containers `r` names, the running and most recent first.
pub fn matching<'r>(rows: &'r [Row], r: &CriRef<'_>) -> Vec<&'r Row> {
    let mut found: Vec<&Row> = rows
        .iter()
        .filter(|row| match r {
            CriRef::Container {
                namespace,
                pod,
                container,
            } => row.namespace == *namespace && row.pod == *pod && row.container == *container,
            CriRef::Pod { namespace, pod } => row.namespace == *namespace && row.pod == *pod,
            CriRef::Other(s) => row.profile_name() == *s || (s.len() >= 4 && row.id.starts_with(s)),
        })
        .collect();
    found.sort_by_key(|row| {
        (
            !row.running,
            std::cmp::Reverse((row.attempt, row.created_at)),
        )
    });
    found
}

/// What changed between two listings, as Docker names it: `create` for a container not seen
/// before, `destroy` for one gone.
pub fn changes(before: &HashMap<String, Row>, now: &[Row]) -> Vec<LifecycleEvent> {
    let mut out = Vec::new();
    let ids: HashSet<&str> = now.iter().map(|r| r.id.as_str()).collect();
    for row in now {
        if !before.contains_key(&row.id) {
            out.push(event("create", row));
        }
    }
    for (id, row) in before {
        if !ids.contains(id.as_str()) {
            out.push(event("destroy", row));
        }
    }
    out
}

fn event(action: &str, row: &Row) -> LifecycleEvent {
    let mut labels = row.labels.clone();
    labels.insert(NAME_LABEL.into(), row.full_name());
    LifecycleEvent {
        action: action.into(),
        id: row.id.clone(),
        name: row.profile_name(),
        labels,
    }
}

/// A connected CRI runtime.
#[derive(Clone)]
pub struct CriEngine {
    client: CriClient,
}

impl CriEngine {
    /// Connects to `endpoint`, or to the first of containerd's and CRI-O's default sockets
    /// that answers.
    pub async fn connect(endpoint: Option<&str>) -> Result<Self, TargetError> {
        let tries: Vec<&str> = match endpoint {
            Some(e) => vec![e],
            None => DEFAULT_ENDPOINTS.to_vec(),
        };
        let mut last = None;
        for e in tries {
            match CriClient::connect(e, TIMEOUT).await {
                Ok(client) => return Ok(Self { client }),
                Err(e) => last = Some(e),
            }
        }
        Err(TargetError::EngineUnreachable(match last {
            Some(e) => format!("the CRI runtime ({e})"),
            None => "the CRI runtime".into(),
        }))
    }

    /// Whether a CRI socket exists at one of the default endpoints (without connecting).
    pub fn present() -> bool {
        DEFAULT_ENDPOINTS.iter().any(|e| {
            e.strip_prefix("unix://")
                .is_some_and(|p| std::path::Path::new(p).exists())
        })
    }

    /// Every container the runtime knows, with its pod's labels.
    pub async fn rows(&self) -> Result<Vec<Row>, TargetError> {
        let pods = self
            .client
            .list_pod_sandboxes(&HashMap::new())
            .await
            .map_err(err)?;
        let pod_labels: HashMap<&str, &HashMap<String, String>> =
            pods.iter().map(|p| (p.id.as_str(), &p.labels)).collect();
        let containers = self
            .client
            .list_containers(None, &HashMap::new())
            .await
            .map_err(err)?;
        Ok(containers
            .into_iter()
            .filter_map(|c| {
                let mut l: HashMap<String, String> = pod_labels
                    .get(c.pod_sandbox_id.as_str())
                    .map(|l| (*l).clone())
                    .unwrap_or_default();
                l.extend(c.labels);
                let meta = c.metadata.unwrap_or_default();
                Some(Row {
                    namespace: l.get(labels::POD_NAMESPACE)?.clone(),
                    pod: l.get(labels::POD_NAME)?.clone(),
                    container: l.get(labels::CONTAINER_NAME).cloned().unwrap_or(meta.name),
                    attempt: meta.attempt,
                    running: c.state == RUNNING,
                    created_at: c.created_at,
                    id: c.id,
                    labels: l,
                })
            })
            .collect())
    }

    /// The cgroup directory of the pod `name` is in (`NAMESPACE/POD[/CONTAINER]`), when the pod
    /// exists: its sandbox's cgroup's parent. Watched, it shows containers created later from
    /// their first call (`--wait` for a container not created yet).
    pub async fn pod_dir(&self, name: &str) -> Result<Option<String>, TargetError> {
        let (namespace, pod) = match parse_ref(name) {
            CriRef::Container { namespace, pod, .. } | CriRef::Pod { namespace, pod } => {
                (namespace, pod)
            }
            CriRef::Other(_) => return Ok(None),
        };
        let want = HashMap::from([
            (labels::POD_NAMESPACE.to_string(), namespace.to_string()),
            (labels::POD_NAME.to_string(), pod.to_string()),
        ]);
        let mut pods = self.client.list_pod_sandboxes(&want).await.map_err(err)?;
        // The ready one (state 0), the newest.
        pods.sort_by_key(|p| (p.state != 0, std::cmp::Reverse(p.created_at)));
        let Some(sandbox) = pods.first() else {
            return Ok(None);
        };
        let path = self
            .client
            .pod_sandbox_cgroups_path(&sandbox.id)
            .await
            .map_err(err)?;
        Ok(path
            .as_deref()
            .and_then(cgroup_dir)
            .and_then(|d| Some(d.rsplit_once('/')?.0.to_string()))
            .filter(|d| !d.is_empty()))
    }

    /// `NAMESPACE/POD/CONTAINER` of the running containers, for error messages.
    pub async fn running_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .rows()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.running)
            .map(Row::full_name)
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Every container: id, profile name and labels.
    pub async fn list_all(
        &self,
    ) -> Result<Vec<(String, String, HashMap<String, String>)>, TargetError> {
        let mut out = Vec::new();
        for r in self.rows().await? {
            let labels = self.with_cgroup(&r).await;
            out.push((r.id.clone(), r.profile_name(), labels));
        }
        Ok(out)
    }

    /// `NAMESPACE/POD` as the `NAMESPACE/POD/CONTAINER` of each of its containers; other
    /// names as they are.
    pub async fn expand(&self, name: &str) -> Result<Vec<String>, TargetError> {
        let r = parse_ref(name);
        if !matches!(r, CriRef::Pod { .. }) {
            return Ok(vec![name.to_string()]);
        }
        let rows = self.rows().await?;
        let mut names: Vec<String> = matching(&rows, &r).iter().map(|r| r.full_name()).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The container `name` names (the running one, else the latest attempt), its name being
    /// its profile's; `None` if there is none.
    pub async fn find(&self, name: &str) -> Result<Option<Container>, TargetError> {
        let rows = self.rows().await?;
        let Some(row) = matching(&rows, &parse_ref(name)).into_iter().next() else {
            return Ok(None);
        };
        let info = self.client.container_status(&row.id).await.map_err(err)?;
        let v = &info.verbose;
        Ok(Some(Container {
            id: row.id.clone(),
            name: row.profile_name(),
            pid: v.pid.filter(|_| row.running),
            cgroup: v.cgroups_path.as_deref().and_then(cgroup_dir),
            // The filter the runtime installed (containerd's and CRI-O's default profiles
            // follow Docker's), the kubelet's choice and the capabilities it gave.
            security: crate::profile::moby::ContainerSecurity::from_runtime(
                v.seccomp.as_deref(),
                v.seccomp_localhost,
                v.capabilities.as_deref(),
            ),
        }))
    }

    /// A container's pid (while it runs) and cgroup directory.
    async fn status(&self, id: &str) -> Result<(Option<u32>, Option<String>), TargetError> {
        let info = self.client.container_status(id).await.map_err(err)?;
        let cgroup = info.verbose.cgroups_path.as_deref().and_then(cgroup_dir);
        Ok((info.verbose.pid, cgroup))
    }

    /// `row`'s labels with its cgroup directory under [`CGROUP_LABEL`], when the runtime says it.
    async fn with_cgroup(&self, row: &Row) -> HashMap<String, String> {
        let mut labels = row.labels.clone();
        labels.insert(NAME_LABEL.into(), row.full_name());
        if let Ok((_, Some(dir))) = self.status(&row.id).await {
            labels.insert(CGROUP_LABEL.into(), dir);
        }
        labels
    }

    pub async fn daemon_info(&self) -> Result<DaemonInfo, TargetError> {
        let v = self.client.version().await.map_err(err)?;
        // The cgroup driver shows in a running container's cgroups path: systemd's is
        // `slice:prefix:id`.
        let mut systemd = false;
        for row in self.rows().await?.iter().filter(|r| r.running) {
            if let Ok(info) = self.client.container_status(&row.id).await {
                systemd = info.verbose.cgroups_path.is_some_and(|p| p.contains(':'));
                break;
            }
        }
        Ok(DaemonInfo {
            cgroup_driver: if systemd { "systemd" } else { "cgroupfs" }.into(),
            runtime_key: format!(
                "cri {} {} api {}",
                v.runtime_name, v.runtime_version, v.runtime_api_version
            ),
            // containerd's and CRI-O's default runtime.
            default_runtime: "runc".into(),
        })
    }

    /// Containers come and go (kubelet restarts, pods re-created), seen by listing them every
    /// [`POLL`]; the first listing only sets the baseline.
    pub fn lifecycle(&self) -> impl Stream<Item = Result<LifecycleEvent, TargetError>> + use<> {
        let engine = self.clone();
        let state: (Option<HashMap<String, Row>>, Vec<LifecycleEvent>) = (None, Vec::new());
        futures_util::stream::unfold(state, move |(mut seen, mut queued)| {
            let engine = engine.clone();
            async move {
                loop {
                    if let Some(mut ev) = queued.pop() {
                        if ev.action == "create" {
                            if let Ok((_, Some(dir))) = engine.status(&ev.id).await {
                                ev.labels.insert(CGROUP_LABEL.into(), dir);
                            }
                        }
                        return Some((Ok(ev), (seen, queued)));
                    }
                    if seen.is_some() {
                        tokio::time::sleep(POLL).await;
                    }
                    let rows = match engine.rows().await {
                        Ok(r) => r,
                        // The session subscribes again (and lists every container) after an
                        // error.
                        Err(e) => return Some((Err(e), (None, Vec::new()))),
                    };
                    if let Some(before) = &seen {
                        queued = changes(before, &rows);
                        queued.reverse();
                    }
                    seen = Some(rows.into_iter().map(|r| (r.id.clone(), r)).collect());
                }
            }
        })
    }

    pub async fn restart(&self, _id: &str) -> Result<(), TargetError> {
        Err(TargetError::Engine(
            "--restart is not supported with the CRI: the kubelet owns the containers (delete \
             the pod, or roll out its workload, while recording; restarts are followed)"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests;
