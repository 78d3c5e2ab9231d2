//! A session's lifecycle: the one start-up path (`record`, `run`, `check` and the daemon all
//! take it), the event loop (kernel events, engine events, signals, checkpoints, the driver's
//! requests) and the end (profiles and summary). What the daemon adds comes through
//! [`Driver`]; the targets' logic is in [`super::targets`].

use std::{
    future::Future,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{signal, SignalKind},
};

mod engine;
mod profiles;

use super::{
    activity::Activity,
    config::{Config, Mode, Output},
    display,
    observers::Observers,
    sink,
    targets::{epoch_ns, resolve, Guard, Target, Targets},
    RecordError,
};
use crate::{
    baseline,
    bpf::{BpfError, Counters, EventReader, KernelLayout, Tracer},
    kernel::{Cgroups, HostCgroups, Kernel},
    output::{self, OutputError},
    profile::{compose, ComposeOptions, Composition, Learned},
    syscalls::Arch,
    target::{
        docker::DaemonInfo,
        engine::{EngineClient, EngineKind, Layout},
        TargetSpec,
    },
};

/// What wraps a session (the daemon) adds to its event loop: requests to answer, and where a
/// checkpoint saves what was learned.
pub trait Driver {
    type Request;
    /// The next request; `None` when no more will come.
    fn next_request(&mut self) -> impl Future<Output = Option<Self::Request>>;
    /// Answers a request, using the session's public methods.
    fn on_request(&mut self, session: &mut Session, req: Self::Request)
        -> impl Future<Output = ()>;
    /// Saves what was learned so far (every checkpoint, on SIGHUP for the daemon, and at the
    /// end).
    fn checkpoint(&mut self, session: &Session) -> Result<(), RecordError>;
}

/// The engine whose containers are targets.
#[derive(Clone)]
pub struct Engine {
    pub client: EngineClient,
    pub info: DaemonInfo,
    pub layout: Layout,
}

/// A recording session: its config, the kernel and cgroupfs behind the seam, the engine and
/// the targets.
pub struct Session {
    cfg: Config,
    arch: Arch,
    kernel: Box<dyn Kernel>,
    cgroups: Box<dyn Cgroups>,
    engine: Option<Engine>,
    targets: Targets,
    baseline: Learned,
    baseline_source: Option<baseline::Source>,
    /// `--events` and `--alert-command`.
    observers: Observers,
}

impl Session {
    /// A session over `kernel` and `cgroups` with no target yet.
    pub fn new(
        cfg: Config,
        arch: Arch,
        kernel: Box<dyn Kernel>,
        cgroups: Box<dyn Cgroups>,
        engine: Option<Engine>,
    ) -> Self {
        let show_seen = cfg.mode != Mode::Check;
        let mut targets = Targets::new(arch, show_seen);
        if let Some(k) = crate::privileges::running_kernel() {
            targets.set_kernel(k);
        }
        Self {
            cfg,
            arch,
            kernel,
            cgroups,
            engine,
            targets,
            baseline: Learned::default(),
            baseline_source: None,
            observers: Observers::default(),
        }
    }

    /// The one start-up path: resolves every target and checks every output before touching
    /// the kernel, loads the kernel programs with `load`, learns the runtime's baseline and
    /// starts tracing. Returns the session and its ring buffer.
    pub async fn start(
        cfg: Config,
        load: impl FnOnce(&KernelLayout) -> Result<Tracer, RecordError>,
    ) -> Result<(Self, EventReader), RecordError> {
        let daemon = matches!(cfg.mode, Mode::Daemon { .. });
        if cfg.targets.is_empty() && !daemon {
            return Err(RecordError::NoTargets);
        }
        let arch = Arch::host().ok_or(RecordError::Arch(std::env::consts::ARCH))?;
        let cgroups = HostCgroups::discover()?;
        let wants_engine = daemon
            || cfg
                .targets
                .iter()
                .any(|t| matches!(t, TargetSpec::Container(_)));
        let engine = if wants_engine {
            Some(Engine::connect(&cfg).await?)
        } else {
            None
        };
        let specs = match &engine {
            Some(e) => e.expand(&cfg.targets).await?,
            None => cfg.targets.clone(),
        };
        let mut resolved = Vec::new();
        for spec in &specs {
            let docker = engine.as_ref().map(|e| (&e.client, e.layout));
            let label = cfg.label.as_deref();
            resolved.push(resolve(spec, label, cfg.wait, &cgroups, docker).await?);
        }
        let observers = Observers::open(cfg.events.as_deref(), cfg.alert_command.as_deref())?;
        let layout = KernelLayout::detect(arch)?;
        let mut tracer = load(&layout)?;
        let mut events = tracer
            .take_events()
            .ok_or(BpfError::Load("ring buffer unavailable".into()))?;
        let mut s = Self::new(cfg, arch, Box::new(tracer), Box::new(cgroups), engine);
        s.observers = observers;
        match s.cfg.mode {
            Mode::Check => s.targets.set_guard(Guard::Check),
            Mode::Daemon { .. } => s.targets.set_guard(Guard::Daemon),
            Mode::Record | Mode::Run => {}
        }
        for t in resolved {
            // The same container or cgroup named twice (`record c c`, a name and its id) is
            // one target, with one file.
            let same = |o: &Target| {
                (t.container_id().is_some() && o.container_id() == t.container_id())
                    || (t.container_id().is_none() && o.path().is_some() && o.path() == t.path())
                    || (t.path().is_none() && o.spec() == t.spec())
            };
            if !s.targets.iter().any(same) {
                s.targets.push(t);
            }
        }
        s.prepare_outputs()?;
        s.learn_baseline(&mut events).await?;
        s.watch_waited_pods().await?;
        s.attach()?;
        Ok((s, events))
    }

    /// Names each target's profile file and checks it can be written, before hours of
    /// recording.
    fn prepare_outputs(&mut self) -> Result<(), RecordError> {
        if !self.cfg.mode.writes_profiles() {
            return Ok(());
        }
        if let Output::Path(p) = &self.cfg.output {
            if self.targets.len() > 1 && output::is_stdout(p) {
                return Err(RecordError::Refused(
                    "-o - (standard output) takes one target; name a directory for several".into(),
                ));
            }
            if self.targets.len() > 1 {
                std::fs::create_dir_all(p).map_err(|source| OutputError {
                    path: p.clone(),
                    source,
                })?;
            }
        }
        let out = self.cfg.output.clone();
        self.targets
            .set_outputs(|label, n| sink::output_for(&out, label, n));
        for t in self.targets.iter() {
            output::check_writable(t.output())?;
        }
        Ok(())
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn arch(&self) -> Arch {
        self.arch
    }
    pub fn targets(&self) -> &Targets {
        &self.targets
    }
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }
    /// How many cgroups the kernel's map holds now.
    pub fn traced_cgroups(&self) -> Result<usize, RecordError> {
        Ok(self.kernel.cgroups()?.len())
    }

    pub fn counters(&self) -> Result<Counters, RecordError> {
        Ok(self.kernel.counters()?)
    }

    /// Shows what the targets queued for the live display, and hands what happened to the
    /// observers.
    fn show_notes(&mut self) {
        for line in self.targets.take_notes() {
            display::say(&line);
        }
        let activity = self.targets.take_activity();
        if !self.observers.is_empty() {
            self.observers.publish(&activity);
        }
    }

    /// The end of a session: the last events written and alert commands run (a few seconds
    /// at most).
    pub async fn finish_observers(&mut self) {
        self.show_notes();
        std::mem::take(&mut self.observers).finish().await;
    }

    async fn learn_baseline(&mut self, events: &mut EventReader) -> Result<(), RecordError> {
        if !self.cfg.runtime_baseline || self.cfg.mode == Mode::Check {
            return Ok(());
        }
        let Some(e) = self.engine.clone() else {
            return Ok(());
        };
        let sibling = self.targets.sibling();
        let sib = sibling.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
        let (set, source) = baseline::runtime_baseline(
            &e.client,
            &e.info,
            e.layout,
            self.kernel.as_mut(),
            events,
            sib,
            self.arch,
        )
        .await?;
        self.baseline = set;
        self.baseline_source = Some(source);
        Ok(())
    }

    /// Watches the engine's container parent and every target's cgroup path, and starts
    /// tracing the instances running now.
    fn attach(&mut self) -> Result<(), RecordError> {
        self.watch_parents()?;
        for i in 0..self.targets.len() {
            self.targets
                .attach(i, self.kernel.as_mut(), self.cgroups.as_ref())?;
        }
        let n = self.targets.len();
        let (verb, end) = match self.cfg.mode {
            Mode::Daemon { .. } => return Ok(()),
            Mode::Check => ("checking", "report what their profiles refuse".to_string()),
            Mode::Record | Mode::Run => (
                "recording",
                format!("write the profile{}", if n == 1 { "" } else { "s" }),
            ),
        };
        let names: Vec<&str> = self.targets.iter().map(|t| t.label()).collect();
        display::say(&format!(
            "{verb} {n} target{}: {} (Ctrl-C or SIGTERM to stop and {end})",
            if n == 1 { "" } else { "s" },
            names.join(", "),
        ));
        Ok(())
    }

    /// Adds a target (the daemon's `add`): resolved now, traced from now (or its creation).
    pub async fn add_target(&mut self, spec: TargetSpec) -> Result<usize, RecordError> {
        let spec_name = match &spec {
            TargetSpec::Container(n) => Some(n.clone()),
            _ => None,
        };
        let docker = self.engine.as_ref().map(|e| (&e.client, e.layout));
        let t = resolve(&spec, None, self.cfg.wait, self.cgroups.as_ref(), docker).await?;
        let i = self.targets.push(t);
        let cri = self
            .engine
            .as_ref()
            .is_some_and(|e| e.layout.engine == EngineKind::Cri);
        let pod = self.targets.get(i).path().and_then(|p| p.rsplit_once('/'));
        if let Some((pod, _)) = pod.filter(|(p, _)| cri && !p.is_empty()) {
            // As at start (see `attach`): a full set of parents only costs LATE restarts.
            let _ = self.kernel.watch_parent(pod)?;
        } else if cri {
            // Not created yet: its pod's directory, if the pod exists.
            let dir = match (&self.engine, &spec_name) {
                (Some(e), Some(n)) => e.client.pod_dir(n).await,
                _ => None,
            };
            if let Some(dir) = dir {
                let _ = self.kernel.watch_parent(&dir)?;
            }
        }
        self.targets
            .attach(i, self.kernel.as_mut(), self.cgroups.as_ref())?;
        Ok(i)
    }

    /// Resolves a saved target again and takes it up (the daemon's restart).
    pub async fn restore_target(
        &mut self,
        saved: super::targets::Snapshot,
    ) -> Result<usize, RecordError> {
        let current = match (&self.engine, saved.active) {
            (Some(e), true) => {
                let spec = TargetSpec::Container(saved.name.clone());
                let docker = Some((&e.client, e.layout));
                match resolve(&spec, None, true, self.cgroups.as_ref(), docker).await {
                    Ok(t) => Some(t),
                    // Kept anyway (target indexes are watch tags): what it learned stays.
                    Err(e) => {
                        display::warn(&format!("{}: {e}; resumed as it was saved", saved.name));
                        None
                    }
                }
            }
            _ => None,
        };
        let i =
            self.targets
                .restore(saved, current, self.kernel.as_mut(), self.cgroups.as_ref())?;
        self.show_notes();
        Ok(i)
    }

    /// After restoring: cgroups the kernel adopted while nobody listened, and not ours, are
    /// claimed from the engine's events or dropped after the usual delay.
    pub fn adopt_orphans(&mut self) -> Result<(), RecordError> {
        self.targets
            .adopt_orphans(Instant::now(), self.kernel.as_ref())
    }

    /// Stops recording target `i` (the daemon's `remove`).
    pub fn remove_target(&mut self, i: usize) -> Result<(), RecordError> {
        self.targets.retire(i, self.kernel.as_mut())
    }

    pub fn add_selectors(
        &mut self,
        s: impl IntoIterator<Item = crate::target::selector::Selector>,
    ) {
        self.targets.add_selectors(s);
    }

    /// Keeps the syscall programs attached while there is anything to record (an active
    /// target, a selector for containers to come, or `busy`), and detaches them otherwise.
    /// Returns whether that changed.
    pub fn sync_hooks(&mut self, busy: bool) -> Result<Option<bool>, RecordError> {
        let busy =
            busy || !self.targets.selectors().is_empty() || self.targets.iter().any(|t| t.active());
        if busy == self.kernel.hooked() {
            return Ok(None);
        }
        self.kernel.set_hooks(busy)?;
        Ok(Some(busy))
    }

    /// Everything target `i` learned.
    pub fn learned(&self, i: usize) -> Result<Learned, RecordError> {
        self.targets.learned(i, self.kernel.as_ref())
    }

    /// What target `i`'s profile allows, and what it learned.
    pub fn compose(&self, i: usize) -> Result<(Learned, Composition), RecordError> {
        let learned = self.learned(i)?;
        let none = Learned::default();
        let baseline = if self.targets.get(i).is_container() {
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
                include_setup: self.cfg.mode.includes_setup(),
                args: self.cfg.profile.args,
            },
        );
        Ok((learned, c))
    }

    /// One event from the kernel's ring buffer.
    pub fn on_event(&mut self, ev: tracer_common::Event) -> Result<(), RecordError> {
        let r = self.targets.on_event(
            ev,
            Instant::now(),
            self.kernel.as_mut(),
            self.cgroups.as_ref(),
        );
        self.show_notes();
        r
    }

    /// Saves what was learned through `driver`, after reconciling the targets with the
    /// kernel's map; once saved, folded instances leave the kernel map. A failure is a
    /// warning, and the next checkpoint tries again. Returns whether it saved.
    pub fn checkpoint<D: Driver>(&mut self, driver: &mut D) -> bool {
        let r = self.reconcile();
        self.warn_on(r);
        let ok = match driver.checkpoint(self) {
            Ok(()) => {
                let released = self.targets.release_folded(self.kernel.as_mut());
                self.warn_on(released);
                true
            }
            Err(e) => {
                display::warn(&format!("checkpoint failed (tried again later): {e}"));
                false
            }
        };
        if !self.observers.is_empty() {
            self.observers.publish(&[Activity::Checkpoint {
                targets: self.targets.len(),
                ok,
                at_ns: epoch_ns(std::time::SystemTime::now()),
            }]);
        }
        ok
    }

    /// Reconciles the targets with the kernel's map (see [`Targets::reconcile`]).
    pub fn reconcile(&mut self) -> Result<(), RecordError> {
        let r = self
            .targets
            .reconcile(Instant::now(), self.kernel.as_mut(), self.cgroups.as_ref());
        self.show_notes();
        r
    }

    /// An error that leaves the kernel's data readable is a warning: the session goes on
    /// and still writes what it learned.
    fn warn_on(&mut self, r: Result<(), RecordError>) {
        self.show_notes();
        if let Err(e) = r {
            display::warn(&format!("{e} (recording goes on)"));
        }
    }

    /// The event loop, until Ctrl-C, SIGTERM, a hang-up (except the daemon's), `--duration`
    /// or `stop`.
    pub async fn run<D: Driver>(
        &mut self,
        events: EventReader,
        stop: impl Future<Output = ()>,
        driver: &mut D,
    ) -> Result<(), RecordError> {
        tokio::pin!(stop);
        // SAFETY: the ring buffer's fd is owned by `events`, which the AsyncFd owns and keeps
        // open until it is deregistered (into_inner below), as register requires.
        let mut events = unsafe { AsyncFd::register(events) }
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        // A dropped SSH session must not lose the recording either; under `nohup` (SIGHUP
        // ignored) a hang-up stays ignored.
        let mut sighup = if display::signal_ignored(libc::SIGHUP) {
            None
        } else {
            Some(signal(SignalKind::hangup())?)
        };
        let deadline = self.cfg.duration.map(|d| tokio::time::Instant::now() + d);
        let mut checkpoint = tokio::time::interval(self.cfg.checkpoint);
        checkpoint.tick().await;
        let mut expiry = tokio::time::interval(Duration::from_secs(2));
        let mut lifecycle = self.engine.as_ref().map(|e| Box::pin(e.client.lifecycle()));
        // Ticks until the containers are listed again: one after subscribing to the events,
        // so that a creation falls in one or the other.
        let mut rematch_in: u8 = 2;
        if self.cfg.restart {
            self.restart_containers();
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
                    let mut guard = match guard {
                        Ok(g) => g,
                        Err(e) => {
                            // The maps still hold everything: end, and write it.
                            display::warn(&format!("ring buffer: {e}; stopping"));
                            break;
                        }
                    };
                    while let Some(ev) = guard.get_inner_mut().pop() {
                        let r = self.on_event(ev);
                        self.warn_on(r);
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
                            let r = self.on_created(&ev.id, &ev.name, &ev.labels);
                            self.warn_on(r);
                            self.learn_security(&ev.id).await;
                        }
                        Some(Ok(ev)) if ev.action == "destroy" => {
                            let r = self.targets.on_destroyed(&ev.id, self.kernel.as_mut());
                            self.warn_on(r);
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            display::warn(&format!("Docker events: {e}; reconnecting"));
                            lifecycle = None;
                        }
                        None => lifecycle = None,
                    }
                }
                _ = expiry.tick() => {
                    // Their creation may have come while Docker's events were not heard (not
                    // yet subscribed, reconnecting): ask Docker before dropping any.
                    let r = self.reconcile();
                    self.warn_on(r);
                    let r = self.claim_provisional().await;
                    self.warn_on(r);
                    let r = self.targets.expire_provisional(Instant::now(), self.kernel.as_mut());
                    self.warn_on(r);
                    // Lost the event stream (dockerd restarted?): subscribe again, then look
                    // at what was created in the gap.
                    if lifecycle.is_none() {
                        lifecycle = self.engine.as_ref().map(|e| Box::pin(e.client.lifecycle()));
                        rematch_in = 2;
                    } else if rematch_in > 0 {
                        rematch_in -= 1;
                        if rematch_in == 0 {
                            self.rematch().await;
                        }
                    }
                }
                // Every time, not only after events: argument values and instances the kernel
                // recorded announce nothing.
                _ = checkpoint.tick() => {
                    self.checkpoint(driver);
                }
                req = driver.next_request() => {
                    match req {
                        Some(req) => driver.on_request(self, req).await,
                        None => break,
                    }
                }
                _ = sigint.recv() => if self.cfg.mode.ends_on_signal() { break },
                _ = sigterm.recv() => if self.cfg.mode.ends_on_signal() { break },
                _ = async {
                    match sighup.as_mut() {
                        Some(s) => { s.recv().await; }
                        None => std::future::pending().await,
                    }
                } => {
                    if self.cfg.mode.ends_on_hangup() {
                        break;
                    }
                    if matches!(self.cfg.mode, Mode::Daemon { .. }) {
                        self.checkpoint(driver);
                    }
                }
                _ = sleep_until => break,
                _ = &mut stop => break,
            }
        }
        // Whatever is still queued is only live display; the maps hold the data.
        let mut inner = events.into_inner();
        while let Some(ev) = inner.pop() {
            let r = self.on_event(ev);
            self.warn_on(r);
        }
        let r = self.reconcile();
        self.warn_on(r);
        Ok(())
    }

    /// Whether target `i`'s profile includes the runtime's baseline.
    pub fn baseline_used(&self, i: usize) -> bool {
        self.baseline_source.is_some() && self.targets.get(i).is_container()
    }

    /// The daemon's checkpoint: every target as saved state.
    pub fn snapshot(&self) -> Result<Vec<super::targets::Snapshot>, RecordError> {
        self.targets.snapshot(self.kernel.as_ref())
    }

    /// The target named `name` (see [`Targets::find`]).
    pub fn find(&self, name: &str) -> Option<usize> {
        self.targets.find(name)
    }

    /// The target at `i`.
    pub fn target(&self, i: usize) -> &Target {
        self.targets.get(i)
    }
}
