//! `seccomp-tracer daemon`: records containers for hours, across restarts of the containers
//! and of itself. Maps and links are pinned in bpffs, so the kernel keeps recording while the
//! daemon is down and a restarted daemon picks them up; a state file (written atomically every
//! checkpoint and on SIGTERM) keeps what user space knew. Controlled over a Unix socket only
//! root can use (mode 0600 and a peer-credential check).

pub mod client;
pub mod protocol;

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
};

use crate::{
    bpf::{self, BpfError, KernelLayout, Tracer},
    output,
    profile::{
        formats::{self, Format, Profile},
        Learned,
    },
    recorder::{self, refused_names, RecordConfig, RecordError, Session, Target},
    syscalls::Arch,
    target::{
        cgroup,
        docker::DockerClient,
        selector::{is_pattern, Selector},
        TargetSpec,
    },
};
use protocol::{Request, Response, Status, TargetStatus};

/// Where the daemon pins its maps and links (one directory per build of the kernel programs).
pub const PIN_BASE: &str = "/sys/fs/bpf/seccomp-tracer";
const STATE_VERSION: u32 = 1;
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("another daemon already listens on {0}")]
    AlreadyRunning(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is not readable state: {detail} (move it away to start afresh)")]
    BadState { path: PathBuf, detail: String },
    #[error("bpffs is not mounted at /sys/fs/bpf and could not be mounted: {0}")]
    Bpffs(String),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub checkpoint: Duration,
    pub refusals: bool,
}

/// One target as saved in the state file. Removed targets are kept (inactive) so that target
/// indexes, which the pinned watch map uses as tags, mean the same after a restart.
#[derive(Debug, Serialize, Deserialize)]
struct SavedTarget {
    name: String,
    active: bool,
    container_id: Option<String>,
    path: Option<String>,
    /// Cgroups traced at the checkpoint; still in the pinned map if the kernel kept recording.
    live: Vec<u64>,
    /// Everything learned up to the checkpoint, live cgroups included.
    learned: Learned,
    fresh: u32,
    restarts: u32,
    known_ids: Vec<String>,
    /// Last first sighting and its time (seconds since the epoch).
    last_new: Option<(String, u64)>,
    events: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    version: u32,
    targets: Vec<SavedTarget>,
    #[serde(default)]
    selectors: Vec<Selector>,
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn load_state(path: &Path) -> Result<Option<State>, DaemonError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let bad = |detail: String| DaemonError::BadState {
        path: path.to_path_buf(),
        detail,
    };
    let state: State = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if state.version != STATE_VERSION {
        return Err(bad(format!("version {}", state.version)));
    }
    Ok(Some(state))
}

/// Mounts bpffs at /sys/fs/bpf unless it is there.
fn ensure_bpffs() -> Result<(), DaemonError> {
    let mounted = statfs_magic("/sys/fs/bpf") == Some(BPF_FS_MAGIC);
    if mounted {
        return Ok(());
    }
    let status = std::process::Command::new("mount")
        .args(["-t", "bpf", "bpf", "/sys/fs/bpf"])
        .status()
        .map_err(|e| DaemonError::Bpffs(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(DaemonError::Bpffs(format!("mount exited with {status}")))
    }
}

fn statfs_magic(path: &str) -> Option<i64> {
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: statfs(2) with a NUL-terminated path and a zeroed struct it fills in.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        (libc::statfs(c.as_ptr(), &mut st) == 0).then_some(st.f_type as i64)
    }
}

/// Builds of the kernel programs other than this one leave pins behind on upgrade: removing
/// them detaches those programs.
fn remove_stale_pins(current: &Path) {
    let Some(base) = current.parent() else {
        return;
    };
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        if entry.path() != current {
            eprintln!(
                "seccomp-tracer: removing pins of another build: {}",
                entry.path().display()
            );
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Binds the control socket, refusing to take over one a live daemon listens on.
async fn bind(socket: &Path) -> Result<UnixListener, DaemonError> {
    if socket.exists() {
        if UnixStream::connect(socket).await.is_ok() {
            return Err(DaemonError::AlreadyRunning(socket.to_path_buf()));
        }
        std::fs::remove_file(socket).map_err(io_err(socket))?;
    }
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let listener = UnixListener::bind(socket).map_err(io_err(socket))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(socket))?;
    Ok(listener)
}

type Requests = mpsc::Sender<(Request, oneshot::Sender<Response>)>;

/// Answers one connection: one request line, one answer line. Only root (uid 0) is served,
/// whatever the socket's mode.
async fn serve_connection(stream: UnixStream, requests: Requests) {
    let (read, mut write) = stream.into_split();
    let uid = read.as_ref().peer_cred().map(|c| c.uid()).ok();
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(1 << 16);
    let answer = match reader.read_line(&mut line).await {
        Err(e) => Response::Error {
            message: format!("reading the request: {e}"),
        },
        Ok(_) if uid != Some(0) => Response::Error {
            message: "only root may control the daemon".into(),
        },
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::Error {
                message: format!("not a request: {e}"),
            },
            Ok(req) => {
                let (tx, rx) = oneshot::channel();
                if requests.send((req, tx)).await.is_err() {
                    Response::Error {
                        message: "the daemon is stopping".into(),
                    }
                } else {
                    rx.await.unwrap_or(Response::Error {
                        message: "the daemon is stopping".into(),
                    })
                }
            }
        },
    };
    if let Ok(mut text) = serde_json::to_vec(&answer) {
        text.push(b'\n');
        let _ = write.write_all(&text).await;
    }
}

/// Runs the daemon until SIGTERM/SIGINT/SIGHUP, then saves its state (pins stay: the kernel
/// keeps recording until the next start).
pub async fn serve(dc: DaemonConfig) -> Result<(), DaemonError> {
    std::fs::create_dir_all(&dc.state_dir).map_err(io_err(&dc.state_dir))?;
    std::fs::set_permissions(&dc.state_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io_err(&dc.state_dir))?;
    let state_file = dc.state_dir.join("state.json");
    let saved = load_state(&state_file)?;
    let listener = bind(&dc.socket).await?;

    let arch = Arch::host().ok_or(RecordError::Arch(std::env::consts::ARCH))?;
    let root = cgroup::cgroup2_root().map_err(RecordError::from)?;
    let client = DockerClient::connect().await.map_err(RecordError::from)?;
    let info = client.daemon_info().await.map_err(RecordError::from)?;
    ensure_bpffs()?;
    let layout = KernelLayout::detect(arch).map_err(RecordError::from)?;
    let pins = bpf::pin_dir(Path::new(PIN_BASE), &dc.state_dir);
    remove_stale_pins(&pins);
    let mut tracer =
        Tracer::load_pinned(&layout, Some(&pins), dc.refusals).map_err(RecordError::from)?;
    if saved.is_none() && tracer.resumed() {
        // Pins without a state (the state directory was emptied): nothing knows what they
        // hold. Start clean.
        drop(tracer);
        let _ = std::fs::remove_dir_all(&pins);
        tracer =
            Tracer::load_pinned(&layout, Some(&pins), dc.refusals).map_err(RecordError::from)?;
    }
    let mut events = tracer
        .take_events()
        .ok_or(RecordError::from(BpfError::Load(
            "ring buffer unavailable".into(),
        )))?;
    let resumed = tracer.resumed();

    let cfg = RecordConfig {
        targets: Vec::new(),
        output: recorder::Output::Default,
        duration: None,
        include_refused: true,
        runtime_baseline: true,
        restart: false,
        wait: true,
        checkpoint: dc.checkpoint,
        format: Format::Docker,
        complain: false,
        label: None,
        include_setup: false,
        check: false,
        args: true,
        state_file: Some(state_file.clone()),
        refusals: dc.refusals,
    };
    let mut session = Session::new(cfg, arch, root, tracer, Some((client, info)), Vec::new());
    session.learn_baseline(&mut events).await?;
    if let Some(parent) = session.container_parent() {
        session
            .tracer
            .watch_parent(&parent)
            .map_err(RecordError::from)?;
    }
    if let Some(state) = saved {
        session.restore(state).await?;
    }
    session.checkpoint()?;
    println!(
        "{} daemon: {} on {}, state in {}, kernel programs {} ({})",
        crate::report::clock(SystemTime::now()),
        if resumed {
            "resumed recording"
        } else {
            "recording"
        },
        dc.socket.display(),
        state_file.display(),
        if resumed {
            "found pinned and kept"
        } else {
            "attached and pinned"
        },
        pins.display()
    );
    session.sync_hooks(false)?;

    let (tx, rx) = mpsc::channel(16);
    let acceptor = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, tx.clone()));
                }
                Err(e) => {
                    eprintln!("seccomp-tracer: control socket: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    let result = session.run(events, std::future::pending(), Some(rx)).await;
    acceptor.abort();
    let saved = session.checkpoint();
    let _ = std::fs::remove_file(&dc.socket);
    result?;
    saved?;
    Ok(())
}

impl Session {
    /// Saves every target, and what the kernel recorded for its live cgroups, atomically.
    pub(crate) fn save_state(&self, path: &Path) -> Result<(), RecordError> {
        let mut targets = Vec::new();
        for t in &self.targets {
            targets.push(SavedTarget {
                name: t.label.clone(),
                active: t.active,
                container_id: t.container_id.clone(),
                path: t.path.clone(),
                live: t.live.clone(),
                learned: self.learned(t)?,
                fresh: t.fresh,
                restarts: t.restarts,
                known_ids: t.known_ids.clone(),
                last_new: t
                    .last_new
                    .as_ref()
                    .map(|(n, at)| (n.clone(), epoch_secs(*at))),
                events: t.events,
            });
        }
        let state = State {
            version: STATE_VERSION,
            targets,
            selectors: self.selectors.clone(),
        };
        let text = serde_json::to_vec(&state).map_err(std::io::Error::other)?;
        output::write_atomic(path, &text)?;
        Ok(())
    }

    /// Takes up the targets of a saved state: what they learned, the cgroups the kernel kept
    /// tracing while the daemon was down, and their current instances.
    async fn restore(&mut self, state: State) -> Result<(), RecordError> {
        self.selectors = state.selectors;
        for saved in state.targets {
            let spec = TargetSpec::Container(saved.name.clone());
            let mut t = match (saved.active, &self.docker) {
                (true, Some((client, info))) => {
                    let docker = (client.clone(), info.clone());
                    recorder::resolve(&self.cfg, &spec, &self.root, Some(&docker)).await?
                }
                _ => recorder::new_target(&spec, saved.name.clone()),
            };
            t.active = saved.active;
            t.folded = saved.learned;
            t.fresh = saved.fresh;
            t.restarts = saved.restarts;
            t.known_ids = saved.known_ids;
            t.events = saved.events;
            t.last_new = saved
                .last_new
                .map(|(n, at)| (n, SystemTime::UNIX_EPOCH + Duration::from_secs(at)));
            if t.container_id.is_none() {
                t.container_id = saved.container_id;
            }
            if t.path.is_none() {
                t.path = saved.path;
            }
            let i = self.targets.len();
            self.targets.push(t);
            if !saved.active {
                continue;
            }
            for id in saved.live {
                if self.tracer.record(id)?.is_some() {
                    self.track(i, id)?;
                }
            }
            self.attach_one(i)?;
            let current = self.targets[i]
                .path
                .as_deref()
                .and_then(|p| cgroup::id_of(&self.root, p).ok());
            if let Some(cgroup::CgroupId(id)) = current {
                self.fold_old(i, id)?;
            }
            recorder::say(&format!(
                "{}: resumed ({} cgroup{} traced)",
                self.targets[i].label,
                self.targets[i].live.len(),
                if self.targets[i].live.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ));
        }
        // Adopted by the kernel while nobody listened, and not ours: claimed from Docker's
        // events or dropped after the usual delay.
        for id in self.tracer.cgroups()? {
            if !self.by_cgroup.contains_key(&id) {
                self.provisional.insert(id, Instant::now());
            }
        }
        Ok(())
    }

    fn find(&self, name: &str) -> Option<usize> {
        let matches = |t: &Target| {
            t.label == name
                || t.container_id
                    .as_deref()
                    .is_some_and(|id| name.len() >= 4 && id.starts_with(name))
        };
        // The active one first; a removed one can still be exported.
        self.targets
            .iter()
            .position(|t| t.active && matches(t))
            .or_else(|| self.targets.iter().rposition(matches))
    }

    pub(crate) async fn on_request(&mut self, req: Request) -> Response {
        let changes = matches!(req, Request::Add { .. } | Request::Remove { .. });
        let mut result = match req {
            // Attached before anything is watched, so that a container created from now on is
            // traced from its first syscall.
            Request::Add { containers, labels } => match self.sync_hooks(true) {
                Ok(()) => self.add(&containers, &labels).await,
                Err(e) => Err(e),
            },
            Request::Remove { containers } => self.remove(&containers),
            Request::Status => self.status().map(Response::Status),
            Request::Export { container, format } => self.export(&container, &format),
        };
        if changes {
            if let Err(e) = self.sync_hooks(false) {
                result = Err(e);
            }
        }
        result.unwrap_or_else(|e| Response::Error {
            message: e.to_string(),
        })
    }

    /// Keeps the syscall programs attached while the daemon records anything (an active
    /// target, a selector for containers to come, or `busy`) and detaches them when it has
    /// nothing to record: an idle daemon costs the host's syscalls nothing.
    pub(crate) fn sync_hooks(&mut self, busy: bool) -> Result<(), RecordError> {
        let busy = busy || !self.selectors.is_empty() || self.targets.iter().any(|t| t.active);
        if busy == self.tracer.hooked() {
            return Ok(());
        }
        self.tracer.set_hooks(busy)?;
        recorder::say(if busy {
            "syscall programs attached"
        } else {
            "nothing to record: syscall programs detached (the host's syscalls pay nothing)"
        });
        Ok(())
    }

    async fn add(&mut self, args: &[String], labels: &[String]) -> Result<Response, RecordError> {
        let mut lines = Vec::new();
        let (patterns, mut names): (Vec<String>, Vec<String>) =
            args.iter().cloned().partition(|a| is_pattern(a));
        let mut new: Vec<Selector> = patterns
            .into_iter()
            .map(|p| Selector {
                pattern: Some(p),
                labels: labels.to_vec(),
            })
            .collect();
        if new.is_empty() && !labels.is_empty() {
            new.push(Selector {
                pattern: None,
                labels: labels.to_vec(),
            });
        }
        if !new.is_empty() {
            let existing = match &self.docker {
                Some((client, _)) => client.list_all().await?,
                None => Vec::new(),
            };
            for s in &new {
                let matching: Vec<String> = existing
                    .iter()
                    .filter(|(_, name, l)| s.matches(name, l))
                    .map(|(_, name, _)| name.clone())
                    .collect();
                lines.push(format!(
                    "{}: {} existing container{}, and those created from now on",
                    s.describe(),
                    matching.len(),
                    if matching.len() == 1 { "" } else { "s" }
                ));
                names.extend(matching);
            }
            self.selectors.extend(new);
        }
        for name in &names {
            if let Some(i) = self.find(name).filter(|&i| self.targets[i].active) {
                lines.push(format!("{}: already recorded", self.targets[i].label));
                continue;
            }
            let spec = TargetSpec::Container(name.clone());
            let t = recorder::resolve(&self.cfg, &spec, &self.root, self.docker.as_ref()).await?;
            let i = self.targets.len();
            self.targets.push(t);
            self.attach_one(i)?;
            let t = &self.targets[i];
            lines.push(if !t.live.is_empty() {
                format!("{}: recording", t.label)
            } else {
                format!("{}: not running yet; recorded from its creation", t.label)
            });
            recorder::say(&format!("{}: added", t.label));
        }
        self.dirty = true;
        self.checkpoint()?;
        Ok(Response::Ok {
            message: lines.join("\n"),
        })
    }

    fn remove(&mut self, names: &[String]) -> Result<Response, RecordError> {
        let mut lines = Vec::new();
        for name in names {
            let Some(i) = self.find(name).filter(|&i| self.targets[i].active) else {
                return Err(RecordError::Io(std::io::Error::other(format!(
                    "{name} is not being recorded"
                ))));
            };
            // Keep what it learned, for a later export.
            let learned = self.learned(&self.targets[i])?;
            self.targets[i].folded = learned;
            if let Some(path) = self.targets[i].path.clone() {
                self.tracer.unwatch(&path)?;
            }
            for id in std::mem::take(&mut self.targets[i].live) {
                self.tracer.remove_cgroup(id)?;
                self.by_cgroup.remove(&id);
            }
            self.targets[i].active = false;
            lines.push(format!("{}: no longer recorded", self.targets[i].label));
            recorder::say(&format!("{}: removed", self.targets[i].label));
        }
        self.checkpoint()?;
        Ok(Response::Ok {
            message: lines.join("\n"),
        })
    }

    fn status(&self) -> Result<Status, RecordError> {
        let counters = self.tracer.counters()?;
        let mut targets = Vec::new();
        for t in self.targets.iter().filter(|t| t.active) {
            let (learned, c) = self.compose(t)?;
            targets.push(TargetStatus {
                name: t.label.clone(),
                container_id: t.container_id.clone(),
                running: !t.live.is_empty(),
                syscalls: c.allowed.len(),
                refused: refused_names(self.arch, &learned)
                    .into_iter()
                    .map(String::from)
                    .collect(),
                last_new: t.last_new.as_ref().map(|(n, _)| n.clone()),
                last_new_at: t.last_new.as_ref().map(|(_, at)| epoch_secs(*at)),
                restarts: t.restarts,
                events: t.events,
            });
        }
        Ok(Status {
            targets,
            syscalls: counters.syscalls,
            ring_drops: counters.ring_drops,
            refusals: counters.refusals,
            now: epoch_secs(SystemTime::now()),
        })
    }

    fn export(&self, name: &str, format: &str) -> Result<Response, RecordError> {
        let format = match format {
            "docker" => Format::Docker,
            "oci" => Format::Oci,
            "kubernetes" => Format::Kubernetes,
            other => {
                return Err(RecordError::Io(std::io::Error::other(format!(
                    "unknown format {other}: docker, oci or kubernetes"
                ))))
            }
        };
        let Some(i) = self.find(name) else {
            return Err(RecordError::Io(std::io::Error::other(format!(
                "{name} is not recorded by the daemon"
            ))));
        };
        let t = &self.targets[i];
        let (learned, c) = self.compose(t)?;
        let profile = Profile::from_composition(&c, false);
        let doc = formats::render(format, self.arch, &t.label, &profile);
        let kubelet = (format == Format::Kubernetes)
            .then(|| formats::render(Format::Docker, self.arch, &t.label, &profile));
        let refused = refused_names(self.arch, &learned);
        Ok(Response::Profile {
            doc,
            kubelet,
            summary: format!(
                "{}: {} syscalls allowed ({} refused while recording, allowed), {} restarts",
                t.label,
                c.allowed.len(),
                refused.len(),
                t.restarts
            ),
        })
    }
}
