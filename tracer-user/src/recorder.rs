//! The live `record` session: resolve targets, load the kernel programs, follow containers
//! through restarts and re-creation, show first sightings, checkpoint and finally write one
//! profile per target.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use futures_util::StreamExt;
use thiserror::Error;
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{signal, SignalKind},
};
use tracer_common::{event_kind, watch_tag};

use crate::{
    baseline::{self, BaselineError},
    bpf::{BpfError, EventReader, KernelLayout, Tracer},
    output::{self, OutputError},
    profile::{
        compose,
        formats::{self, Format, Profile},
        ComposeOptions, Learned, SyscallSet,
    },
    report::{self, Startup, TargetReport},
    syscalls::Arch,
    target::{
        cgroup::{self, CgroupId},
        docker::{DaemonInfo, DockerClient},
        TargetError, TargetSpec,
    },
};

#[derive(Debug, Error)]
pub enum RecordError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Bpf(#[from] BpfError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("runtime baseline: {0}")]
    Baseline(#[from] BaselineError),
    #[error("this CPU architecture ({0}) is not supported")]
    Arch(&'static str),
    #[error("nothing to record: name a container, --cgroup or --pid")]
    NoTargets,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where profiles go.
#[derive(Clone, Debug)]
pub enum Output {
    /// `./<name>.json`
    Default,
    /// `-o PATH`: a file for one target, a directory for several.
    Path(PathBuf),
}

/// Everything `record` needs, validated.
#[derive(Clone, Debug)]
pub struct RecordConfig {
    pub targets: Vec<TargetSpec>,
    pub output: Output,
    pub duration: Option<Duration>,
    pub include_refused: bool,
    pub runtime_baseline: bool,
    pub restart: bool,
    pub wait: bool,
    /// How often profiles are rewritten while recording, so a crash loses little.
    pub checkpoint: Duration,
    pub format: Format,
    /// Log what is not allowed instead of refusing it.
    pub complain: bool,
    /// Name of the (single) target, instead of one derived from it.
    pub label: Option<String>,
    /// Calls made without a seccomp filter count too (`run`: no runtime sets the target up).
    pub include_setup: bool,
    /// The daemon's state file: checkpoints save the session there instead of writing profiles.
    pub state_file: Option<PathBuf>,
    /// Report refusals only; write no profile (`check`).
    pub check: bool,
    /// Argument rules for the calls Docker's default filters by argument (off: `--no-args`).
    pub args: bool,
    /// Detect calls the current filter refuses (one more tracepoint on every syscall).
    pub refusals: bool,
}

/// One thing being recorded, across all its instances (cgroups).
pub(crate) struct Target {
    pub(crate) label: String,
    pub(crate) spec: TargetSpec,
    pub(crate) output: PathBuf,
    /// Current container id (Docker targets).
    pub(crate) container_id: Option<String>,
    /// Current cgroup path, relative to the cgroup2 root (watched for re-creation).
    pub(crate) path: Option<String>,
    /// Cgroups of this target present in the kernel's TARGETS map.
    pub(crate) live: Vec<u64>,
    /// What instances no longer in the map recorded.
    pub(crate) folded: Learned,
    /// For the live display: already printed.
    pub(crate) shown: SyscallSet,
    pub(crate) shown_refused: SyscallSet,
    /// Instances traced from creation: new containers (or cgroups), and restarts of ones
    /// already seen running.
    pub(crate) fresh: u32,
    pub(crate) restarts: u32,
    /// Container ids seen running, to tell a restart from a new container.
    pub(crate) known_ids: Vec<String>,
    /// False once removed (the daemon's `remove`); its index stays, as watch tags use it.
    pub(crate) active: bool,
    /// The last first sighting, and when.
    pub(crate) last_new: Option<(String, SystemTime)>,
    /// First sightings reported by the kernel.
    pub(crate) events: u64,
}

impl Target {
    fn is_container(&self) -> bool {
        matches!(self.spec, TargetSpec::Container(_))
    }
}

pub(crate) struct Session {
    pub(crate) cfg: RecordConfig,
    pub(crate) arch: Arch,
    pub(crate) root: PathBuf,
    pub(crate) tracer: Tracer,
    pub(crate) docker: Option<(DockerClient, DaemonInfo)>,
    pub(crate) targets: Vec<Target>,
    pub(crate) by_cgroup: HashMap<u64, usize>,
    pub(crate) baseline: Learned,
    pub(crate) baseline_source: Option<baseline::Source>,
    pub(crate) dirty: bool,
    /// Cgroups adopted under a watched parent whose owner is not known yet, and since when.
    pub(crate) provisional: HashMap<u64, Instant>,
    /// The daemon's name patterns and label selectors: matching containers created later
    /// become targets.
    pub(crate) selectors: Vec<crate::target::selector::Selector>,
}

/// How long a cgroup adopted under a watched parent is traced while waiting for Docker to say
/// whose it is.
const PROVISIONAL_FOR: Duration = Duration::from_secs(10);

fn output_for(cfg: &RecordConfig, label: &str, count: usize) -> PathBuf {
    let file = format!("{label}.json");
    match &cfg.output {
        Output::Default => PathBuf::from(file),
        Output::Path(p) if count == 1 && !p.is_dir() => p.clone(),
        Output::Path(p) => p.join(file),
    }
}

fn label_of(spec: &TargetSpec) -> String {
    match spec {
        TargetSpec::Container(n) => n.clone(),
        TargetSpec::Cgroup(p) => p
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("root")
            .to_string(),
        TargetSpec::Pid(p) => format!("pid-{p}"),
    }
}

/// `web.json` -> `web.kubelet.json`
pub fn kubelet_path(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!("{stem}.kubelet.json"))
}

/// Pretty JSON with a final newline, written atomically.
pub fn write_json(path: &Path, doc: &serde_json::Value) -> Result<(), RecordError> {
    let mut text = serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?;
    text.push(b'\n');
    output::write_atomic(path, &text)?;
    Ok(())
}

fn display_name(arch: Arch, nr: u32, compat: bool) -> String {
    let table = if compat { arch.compat() } else { Some(arch) };
    match (table.and_then(|a| a.name(nr)), compat) {
        (Some(n), false) => n.to_string(),
        (Some(n), true) => format!("{n} (32-bit)"),
        (None, false) => format!("syscall #{nr} (no name in the table)"),
        (None, true) => format!("32-bit syscall #{nr} (no name in the table)"),
    }
}

/// A control request from the daemon's socket, and where its answer goes.
pub(crate) type Control = tokio::sync::mpsc::Receiver<(
    crate::daemon::protocol::Request,
    tokio::sync::oneshot::Sender<crate::daemon::protocol::Response>,
)>;

fn shown_name(name: Option<&'static str>, nr: u32) -> String {
    name.map_or_else(|| format!("#{nr}"), String::from)
}

/// Names of the calls the current filter refused, both ABIs, sorted and unique.
pub(crate) fn refused_names(arch: Arch, l: &Learned) -> Vec<&'static str> {
    let compat = arch.compat();
    let mut v: Vec<&'static str> = l
        .native
        .refused
        .iter()
        .filter_map(|nr| arch.name(nr))
        .chain(
            l.compat
                .refused
                .iter()
                .filter_map(|nr| compat.and_then(|a| a.name(nr))),
        )
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// What the kernel recorded for cgroup `id`, if it is traced.
pub fn learned_of(tracer: &Tracer, id: u64) -> Result<Option<Learned>, BpfError> {
    match tracer.record(id)? {
        Some(r) => Ok(Some(Learned::from_kernel(&r, tracer.args(&[id])?))),
        None => Ok(None),
    }
}

pub(crate) fn say(line: &str) {
    println!("{} {line}", report::clock(SystemTime::now()));
}

/// The end of a session.
pub struct Summary {
    /// What to print.
    pub text: String,
    /// Targets that never ran while recording, so have no profile.
    pub missing: Vec<String>,
    /// Files written.
    pub written: Vec<PathBuf>,
    /// Distinct calls refused (all targets), for `check`'s exit status.
    pub refusals: usize,
}

/// Runs a whole recording session, until Ctrl-C, SIGTERM, SIGHUP or `--duration`.
pub async fn record(cfg: RecordConfig) -> Result<Summary, RecordError> {
    record_until(cfg, None, std::future::pending()).await
}

/// Like [`record`]; also tells `ready` once every target is traced, and stops when `stop`
/// completes (`run` uses these to start its command only once it is watched, and to stop
/// when it exits).
pub async fn record_until(
    cfg: RecordConfig,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Summary, RecordError> {
    if cfg.targets.is_empty() {
        return Err(RecordError::NoTargets);
    }
    let arch = Arch::host().ok_or(RecordError::Arch(std::env::consts::ARCH))?;
    let root = cgroup::cgroup2_root()?;
    let wants_docker = cfg
        .targets
        .iter()
        .any(|t| matches!(t, TargetSpec::Container(_)));
    let docker = if wants_docker {
        let client = DockerClient::connect().await?;
        let info = client.daemon_info().await?;
        Some((client, info))
    } else {
        None
    };

    // Resolve every target and check every output before touching the kernel.
    let mut targets = Vec::new();
    for spec in &cfg.targets {
        targets.push(resolve(&cfg, spec, &root, docker.as_ref()).await?);
    }
    if let Output::Path(p) = &cfg.output {
        if targets.len() > 1 {
            std::fs::create_dir_all(p).map_err(|source| OutputError {
                path: p.clone(),
                source,
            })?;
        }
    }
    let count = targets.len();
    for t in &mut targets {
        t.output = output_for(&cfg, &t.label, count);
        if !cfg.check {
            output::check_writable(&t.output)?;
        }
    }

    let layout = KernelLayout::detect(arch)?;
    let mut tracer = Tracer::load(&layout, cfg.refusals)?;
    let mut events = tracer
        .take_events()
        .ok_or(BpfError::Load("ring buffer unavailable".into()))?;

    let mut session = Session::new(cfg, arch, root, tracer, docker, targets);
    session.learn_baseline(&mut events).await?;
    session.attach()?;
    if let Some(ready) = ready {
        let _ = ready.send(());
    }
    session.run(events, stop, None).await?;
    session.finish()
}

/// A target with nothing learned and no instance yet.
pub(crate) fn new_target(spec: &TargetSpec, label: String) -> Target {
    Target {
        label,
        spec: spec.clone(),
        output: PathBuf::new(),
        container_id: None,
        path: None,
        live: Vec::new(),
        folded: Learned::default(),
        shown: SyscallSet::default(),
        shown_refused: SyscallSet::default(),
        fresh: 0,
        restarts: 0,
        known_ids: Vec::new(),
        active: true,
        last_new: None,
        events: 0,
    }
}

pub(crate) async fn resolve(
    cfg: &RecordConfig,
    spec: &TargetSpec,
    root: &Path,
    docker: Option<&(DockerClient, DaemonInfo)>,
) -> Result<Target, RecordError> {
    let mut t = new_target(spec, cfg.label.clone().unwrap_or_else(|| label_of(spec)));
    match spec {
        TargetSpec::Container(name) => {
            let Some((client, info)) = docker else {
                return Err(TargetError::DockerUnreachable("no client".into()).into());
            };
            match client.find(name).await? {
                Some(c) => {
                    t.label = c.name.clone();
                    t.path = Some(match c.pid {
                        Some(pid) => cgroup::pid_path(pid)?,
                        None if cfg.wait => {
                            cgroup::container_path(&c.id, None, &info.cgroup_driver)
                        }
                        None => return Err(TargetError::NotRunning(c.name).into()),
                    });
                    if c.pid.is_some() {
                        t.known_ids.push(c.id.clone());
                    }
                    t.container_id = Some(c.id);
                }
                None if cfg.wait => {}
                None => {
                    return Err(TargetError::NoContainer {
                        name: name.clone(),
                        running: client.running_names().await,
                    }
                    .into())
                }
            }
        }
        TargetSpec::Cgroup(given) => {
            let rel = cgroup::relative_path(root, given);
            if !cfg.wait {
                cgroup::id_of(root, &rel)?;
            }
            t.path = Some(rel);
        }
        TargetSpec::Pid(pid) => {
            t.path = Some(cgroup::pid_path(*pid)?);
        }
    }
    Ok(t)
}

impl Session {
    pub(crate) fn new(
        cfg: RecordConfig,
        arch: Arch,
        root: PathBuf,
        tracer: Tracer,
        docker: Option<(DockerClient, DaemonInfo)>,
        targets: Vec<Target>,
    ) -> Self {
        Self {
            cfg,
            arch,
            root,
            tracer,
            docker,
            targets,
            by_cgroup: HashMap::new(),
            baseline: Learned::default(),
            baseline_source: None,
            dirty: false,
            provisional: HashMap::new(),
            selectors: Vec::new(),
        }
    }

    /// A (container id, cgroup path) pair of this daemon, to derive other containers' paths.
    fn sibling(&self) -> Option<(String, String)> {
        self.targets.iter().find_map(|t| {
            let id = t.container_id.as_ref()?;
            let path = t.path.as_ref()?;
            path.contains(id.as_str())
                .then(|| (id.clone(), path.clone()))
        })
    }

    pub(crate) async fn learn_baseline(
        &mut self,
        events: &mut EventReader,
    ) -> Result<(), RecordError> {
        if !self.cfg.runtime_baseline || self.cfg.check {
            return Ok(());
        }
        let Some((client, info)) = self.docker.clone() else {
            return Ok(());
        };
        let sibling = self.sibling();
        let sib = sibling.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
        let (set, source) =
            baseline::runtime_baseline(&client, &info, &mut self.tracer, events, sib, self.arch)
                .await?;
        self.baseline = set;
        self.baseline_source = Some(source);
        Ok(())
    }

    /// Where this daemon puts container cgroups (e.g. `/docker`), if any target is a container.
    pub(crate) fn container_parent(&self) -> Option<String> {
        let (_, info) = self.docker.as_ref()?;
        let sibling = self.sibling();
        let sib = sibling.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
        let probe = cgroup::container_path("0", sib, &info.cgroup_driver);
        let (parent, _) = probe.rsplit_once('/')?;
        (!parent.is_empty()).then(|| parent.to_string())
    }

    /// Watches every target's cgroup path and starts tracing the instances running now.
    fn attach(&mut self) -> Result<(), RecordError> {
        if let Some(parent) = self.container_parent() {
            if !self.tracer.watch_parent(&parent)? {
                eprintln!("seccomp-tracer: too many cgroup parents to watch; {parent} is not");
            }
        }
        for i in 0..self.targets.len() {
            self.attach_one(i)?;
        }
        if self.cfg.state_file.is_some() {
            return Ok(());
        }
        let n = self.targets.len();
        let (verb, end) = if self.cfg.check {
            ("checking", "report what their profiles refuse".to_string())
        } else {
            (
                "recording",
                format!("write the profile{}", if n == 1 { "" } else { "s" }),
            )
        };
        say(&format!(
            "{verb} {n} target{}: {} (Ctrl-C or SIGTERM to stop and {end})",
            if n == 1 { "" } else { "s" },
            self.targets
                .iter()
                .map(|t| t.label.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ));
        Ok(())
    }

    /// Watches target `i`'s cgroup path and traces the instance running now, if any.
    pub(crate) fn attach_one(&mut self, i: usize) -> Result<(), RecordError> {
        let Some(path) = self.targets[i].path.clone() else {
            return Ok(());
        };
        // Watch first, so an instance created between the two steps is not missed.
        self.tracer.watch(&path, i as u32)?;
        if let Ok(CgroupId(id)) = cgroup::id_of(&self.root, &path) {
            self.track(i, id)?;
            // Nothing runs in it yet: whatever will is traced from its first syscall.
            if cgroup::is_empty(&self.root, &path) {
                self.targets[i].fresh += 1;
            }
        }
        Ok(())
    }

    pub(crate) fn track(&mut self, target: usize, id: u64) -> Result<(), RecordError> {
        // Adopted provisionally by the kernel (under a watched parent): it is ours now, and
        // must not expire.
        self.provisional.remove(&id);
        self.tracer.add_cgroup(id)?;
        self.by_cgroup.insert(id, target);
        if !self.targets[target].live.contains(&id) {
            self.targets[target].live.push(id);
        }
        Ok(())
    }

    /// Folds the instances of `target` other than `keep` into user space and drops them from
    /// the kernel map, which keeps the map bounded across many restarts.
    pub(crate) fn fold_old(&mut self, target: usize, keep: u64) -> Result<(), RecordError> {
        let old: Vec<u64> = self.targets[target]
            .live
            .iter()
            .copied()
            .filter(|&id| id != keep)
            .collect();
        for id in old {
            if let Some(l) = learned_of(&self.tracer, id)? {
                self.targets[target].folded.merge(&l);
            }
            self.tracer.remove_cgroup(id)?;
            self.by_cgroup.remove(&id);
            self.targets[target].live.retain(|&x| x != id);
        }
        Ok(())
    }

    /// Target `i` has a new instance, cgroup `id`, traced since its creation.
    fn adopt(&mut self, i: usize, id: u64) -> Result<(), RecordError> {
        let was_provisional = self.provisional.remove(&id).is_some();
        self.track(i, id)?;
        self.fold_old(i, id)?;
        let t = &mut self.targets[i];
        match t.container_id.clone() {
            Some(cid) if t.known_ids.contains(&cid) => t.restarts += 1,
            Some(cid) => {
                t.known_ids.push(cid);
                t.fresh += 1;
            }
            None => t.fresh += 1,
        }
        say(&format!(
            "{}: new instance (cgroup {id}), traced from its first syscall",
            t.label
        ));
        if was_provisional {
            // Its first sightings came while nobody owned it: show them now.
            if let Some(r) = self.tracer.record(id)? {
                let arch = self.arch;
                let t = &mut self.targets[i];
                for nr in SyscallSet::from_bits(&r.native.allowed).iter() {
                    if t.shown.insert(nr) {
                        say(&format!("{}  {}", t.label, display_name(arch, nr, false)));
                    }
                }
            }
        }
        Ok(())
    }

    /// Name of the cgroup `id` directly under one of the watched parents.
    fn leaf_of(&self, id: u64) -> Option<String> {
        use std::os::unix::fs::DirEntryExt;
        self.tracer.parents().iter().find_map(|parent| {
            let dir = self.root.join(parent.trim_start_matches('/'));
            std::fs::read_dir(dir)
                .ok()?
                .flatten()
                .find(|e| e.ino() == id)
                .map(|e| e.file_name().to_string_lossy().into_owned())
        })
    }

    /// The container target whose current container id names cgroup `id`.
    pub(crate) fn owner_of(&self, id: u64) -> Option<usize> {
        let leaf = self.leaf_of(id)?;
        self.targets.iter().position(|t| {
            t.active
                && t.is_container()
                && !t.live.contains(&id)
                && t.container_id.as_deref().is_some_and(|c| leaf.contains(c))
        })
    }

    /// Stops tracing provisional cgroups nobody claimed in time.
    fn expire_provisional(&mut self) -> Result<(), RecordError> {
        let stale: Vec<u64> = self
            .provisional
            .iter()
            .filter(|(_, since)| since.elapsed() > PROVISIONAL_FOR)
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            self.provisional.remove(&id);
            self.tracer.remove_cgroup(id)?;
        }
        Ok(())
    }

    fn on_event(&mut self, ev: tracer_common::Event) -> Result<(), RecordError> {
        match ev.kind {
            event_kind::ADOPTED if ev.value == watch_tag::PARENT => {
                match self.owner_of(ev.cgroup_id) {
                    Some(i) => self.adopt(i, ev.cgroup_id)?,
                    None => {
                        self.provisional.insert(ev.cgroup_id, Instant::now());
                    }
                }
            }
            event_kind::ADOPTED => {
                let i = ev.value as usize;
                if i < self.targets.len() {
                    self.adopt(i, ev.cgroup_id)?;
                }
            }
            event_kind::SEEN
            | event_kind::REFUSED
            | event_kind::SEEN_COMPAT
            | event_kind::REFUSED_COMPAT => {
                let Some(&i) = self.by_cgroup.get(&ev.cgroup_id) else {
                    return Ok(());
                };
                self.dirty = true;
                let compat = matches!(
                    ev.kind,
                    event_kind::SEEN_COMPAT | event_kind::REFUSED_COMPAT
                );
                let table = if compat {
                    self.arch.compat()
                } else {
                    Some(self.arch)
                };
                let t = &mut self.targets[i];
                let name = table.and_then(|a| a.name(ev.value));
                if matches!(ev.kind, event_kind::SEEN | event_kind::SEEN_COMPAT) {
                    t.events += 1;
                    t.last_new = Some((shown_name(name, ev.value), SystemTime::now()));
                }
                let shown = display_name(self.arch, ev.value, compat);
                // Compat numbers are kept apart from native ones in what was shown.
                let key = ev.value | if compat { 1 << 31 } else { 0 };
                if matches!(ev.kind, event_kind::SEEN | event_kind::SEEN_COMPAT) {
                    if t.shown.insert(key) && !self.cfg.check {
                        say(&format!("{}  {shown}", t.label));
                    }
                } else if t.shown_refused.insert(key) {
                    let hint = name
                        .map(crate::profile::advice::refusal_hint)
                        .unwrap_or_default();
                    say(&format!("{}  REFUSED {shown}: {hint}", t.label));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A container a selector matches becomes a target of its own (unless it is one already);
    /// `on_created` then follows it.
    pub(crate) fn select(
        &mut self,
        name: &str,
        labels: &std::collections::HashMap<String, String>,
    ) {
        let Some(selector) = self.selectors.iter().find(|s| s.matches(name, labels)) else {
            return;
        };
        let known = self
            .targets
            .iter()
            .any(|t| t.active && (t.label == name || t.spec == TargetSpec::Container(name.into())));
        if known || name.is_empty() {
            return;
        }
        say(&format!(
            "{name}: matches {}; recording it",
            selector.describe()
        ));
        self.targets
            .push(new_target(&TargetSpec::Container(name.into()), name.into()));
        self.dirty = true;
    }

    /// A container of ours was created again under the same name: follow the new one.
    fn on_created(&mut self, id: &str, name: &str) -> Result<(), RecordError> {
        let driver = match &self.docker {
            Some((_, info)) => info.cgroup_driver.clone(),
            None => return Ok(()),
        };
        let sibling = self.sibling();
        for i in 0..self.targets.len() {
            let t = &self.targets[i];
            let TargetSpec::Container(wanted) = &t.spec else {
                continue;
            };
            if !t.active {
                continue;
            }
            let matches = t.label == name || wanted == name || wanted == id;
            if !matches || t.container_id.as_deref() == Some(id) {
                continue;
            }
            let sib = sibling.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
            let path = cgroup::container_path(id, sib, &driver);
            self.tracer.watch(&path, i as u32)?;
            let t = &mut self.targets[i];
            t.label = name.to_string();
            t.container_id = Some(id.to_string());
            t.path = Some(path.clone());
            say(&format!(
                "{name}: created as {}; following it",
                &id[..id.len().min(12)]
            ));
            // Its cgroup may already exist: adopted under the parent watch from its creation
            // (so nothing was missed), or, without that watch, started before this event.
            let claimed: Vec<u64> = self
                .provisional
                .keys()
                .copied()
                .filter(|&cg| self.owner_of(cg) == Some(i))
                .collect();
            if let Some(&cg) = claimed.first() {
                self.adopt(i, cg)?;
                continue;
            }
            if let Ok(CgroupId(cg)) = cgroup::id_of(&self.root, &path) {
                if !self.by_cgroup.contains_key(&cg) {
                    say(&format!("{name}: LATE: it started before its cgroup was watched; its first syscalls were missed"));
                    self.track(i, cg)?;
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn run(
        &mut self,
        events: EventReader,
        stop: impl std::future::Future<Output = ()>,
        mut control: Option<Control>,
    ) -> Result<(), RecordError> {
        tokio::pin!(stop);
        // SAFETY: the ring buffer's fd is owned by `events`, which the AsyncFd owns and keeps
        // open until it is deregistered (into_inner below), as register requires.
        let mut events = unsafe { AsyncFd::register(events) }
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        // A dropped SSH session must not lose the recording either.
        let mut sighup = signal(SignalKind::hangup())?;
        let deadline = self.cfg.duration.map(|d| tokio::time::Instant::now() + d);
        let mut checkpoint = tokio::time::interval(self.cfg.checkpoint);
        checkpoint.tick().await;
        let mut expiry = tokio::time::interval(Duration::from_secs(2));

        let mut lifecycle = self.docker.as_ref().map(|(c, _)| Box::pin(c.lifecycle()));
        if self.cfg.restart {
            if let Some((client, _)) = &self.docker {
                let ids: Vec<(String, String)> = self
                    .targets
                    .iter()
                    .filter_map(|t| Some((t.container_id.clone()?, t.label.clone())))
                    .collect();
                let client = client.clone();
                tokio::spawn(async move {
                    for (id, label) in ids {
                        if let Err(e) = client.restart(&id).await {
                            eprintln!("seccomp-tracer: restarting {label}: {e}");
                        }
                    }
                });
            }
        }

        loop {
            let sleep_until = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                guard = events.readable_mut() => {
                    let mut guard = guard?;
                    while let Some(ev) = guard.get_inner_mut().pop() {
                        self.on_event(ev)?;
                    }
                    guard.clear_ready();
                }
                ev = async {
                    match lifecycle.as_mut() {
                        Some(s) => s.next().await,
                        None => std::future::pending().await,
                    }
                } => {
                    match ev {
                        Some(Ok(ev)) if ev.action == "create" => {
                            self.select(&ev.name, &ev.labels);
                            self.on_created(&ev.id, &ev.name)?;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            eprintln!("seccomp-tracer: Docker events: {e}; reconnecting");
                            lifecycle = None;
                        }
                        None => lifecycle = None,
                    }
                }
                _ = expiry.tick() => {
                    self.expire_provisional()?;
                    // Lost the event stream (dockerd restarted?): subscribe again. Restarts in
                    // the gap are still followed by the kernel; re-creations resume from here.
                    if lifecycle.is_none() {
                        lifecycle = self.docker.as_ref().map(|(c, _)| Box::pin(c.lifecycle()));
                    }
                }
                _ = checkpoint.tick() => {
                    if std::mem::take(&mut self.dirty) {
                        self.checkpoint()?;
                    }
                }
                req = async {
                    match control.as_mut() {
                        Some(c) => c.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    match req {
                        Some((req, reply)) => {
                            let resp = self.on_request(req).await;
                            let _ = reply.send(resp);
                        }
                        None => control = None,
                    }
                }
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
                // A session ends with its terminal; the daemon only saves its state.
                _ = sighup.recv() => {
                    if self.cfg.state_file.is_none() {
                        break;
                    }
                    self.checkpoint()?;
                }
                _ = sleep_until => break,
                _ = &mut stop => break,
            }
        }
        // Whatever is still queued is only live display; the maps hold the data.
        let mut inner = events.into_inner();
        while let Some(ev) = inner.pop() {
            self.on_event(ev)?;
        }
        Ok(())
    }

    pub(crate) fn learned(&self, t: &Target) -> Result<Learned, RecordError> {
        let mut l = t.folded.clone();
        let keys = self.tracer.args(&t.live)?;
        for &id in &t.live {
            if let Some(r) = self.tracer.record(id)? {
                let mine = keys.iter().filter(|k| k.cgroup_id == id).copied();
                l.merge(&Learned::from_kernel(&r, mine));
            }
        }
        Ok(l)
    }

    pub(crate) fn compose(
        &self,
        t: &Target,
    ) -> Result<(Learned, crate::profile::Composition), RecordError> {
        let learned = self.learned(t)?;
        let none = Learned::default();
        let baseline = if t.is_container() {
            &self.baseline
        } else {
            &none
        };
        let c = compose(
            self.arch,
            &learned,
            baseline,
            ComposeOptions {
                include_refused: self.cfg.include_refused,
                include_setup: self.cfg.include_setup,
                args: self.cfg.args,
            },
        );
        Ok((learned, c))
    }

    pub(crate) fn has_instance(t: &Target) -> bool {
        !t.live.is_empty() || t.fresh + t.restarts > 0
    }

    fn write_profile(
        &self,
        t: &Target,
        c: &crate::profile::Composition,
    ) -> Result<(), RecordError> {
        let profile = Profile::from_composition(c, self.cfg.complain);
        write_json(
            &t.output,
            &formats::render(self.cfg.format, self.arch, &t.label, &profile),
        )?;
        if self.cfg.format == Format::Kubernetes {
            // What kubelet's seccomp/ directory takes (through containerd or CRI-O).
            write_json(
                &kubelet_path(&t.output),
                &formats::render(Format::Docker, self.arch, &t.label, &profile),
            )?;
        }
        Ok(())
    }

    /// Saves what was learned so far: the daemon's state file, or every profile.
    pub(crate) fn checkpoint(&self) -> Result<(), RecordError> {
        match &self.cfg.state_file {
            Some(path) => self.save_state(path),
            None => self.write_profiles(),
        }
    }

    fn write_profiles(&self) -> Result<(), RecordError> {
        if self.cfg.check {
            return Ok(());
        }
        for t in self.targets.iter().filter(|t| Self::has_instance(t)) {
            let (_, c) = self.compose(t)?;
            self.write_profile(t, &c)?;
        }
        Ok(())
    }

    fn finish(self) -> Result<Summary, RecordError> {
        let mut out = String::from("\n");
        let mut missing = Vec::new();
        let mut written = Vec::new();
        let mut refusals = 0;
        for t in &self.targets {
            if !Self::has_instance(t) {
                out.push_str(&format!(
                    "{}: never seen running; no profile written\n",
                    t.label
                ));
                missing.push(t.label.clone());
                continue;
            }
            // One composition for both, so the file and the summary agree.
            let (learned, c) = self.compose(t)?;
            if self.cfg.check {
                let refused = refused_names(self.arch, &learned);
                out.push_str(&report::check_summary(&t.label, &refused));
                refusals += refused.len();
                continue;
            }
            self.write_profile(t, &c)?;
            written.push(t.output.clone());
            if self.cfg.format == Format::Kubernetes {
                written.push(kubelet_path(&t.output));
            }
            let refused = refused_names(self.arch, &learned);
            out.push_str(&report::target_summary(&TargetReport {
                label: &t.label,
                composition: &c,
                refused: &refused,
                include_refused: self.cfg.include_refused,
                baseline_used: self.baseline_source.is_some() && t.is_container(),
                startup: match (t.fresh, t.restarts) {
                    (0, 0) => Startup::Missed,
                    (0, restarts) => Startup::Restarted { restarts },
                    (fresh, restarts) => Startup::Observed {
                        restarts: fresh + restarts,
                    },
                },
                is_container: t.is_container(),
                output: &t.output,
            }));
        }
        out.push_str(&report::counters_summary(&self.tracer.counters()?));
        out.push('\n');
        Ok(Summary {
            text: out,
            missing,
            written,
            refusals,
        })
    }
}
