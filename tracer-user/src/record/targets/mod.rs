//! The targets of a session and their instances: naming them, tracking which cgroups are
//! theirs in the kernel, adopting new instances (restarts, re-creation), folding old ones into
//! user space, expiring provisional adoptions nobody claimed, taking in containers a selector
//! matches. Every side effect goes through the [`Kernel`] and [`Cgroups`] seam; what should be
//! shown live is queued as notes for the display.

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

use tracer_common::{event_kind, watch_tag, Event};

use crate::record::{
    activity::{Activity, Under},
    display, RecordError,
};

mod engine;
mod history;
mod provisional;
mod reconcile;
mod resolve;
mod saved;
mod sightings;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_guard;
#[cfg(test)]
mod tests_kernel;
#[cfg(test)]
mod tests_why;

use crate::{
    kernel::{Cgroups, Kernel},
    privileges::{KernelVersion, MIN_KERNEL},
    profile::{
        moby::{ContainerSecurity, Host, SeccompInForce},
        why::Why,
        Learned, SyscallSet,
    },
    syscalls::Arch,
    target::{cgroup, engine::Layout, selector::Selector, TargetSpec},
};
pub use engine::Created;
pub use history::History;
pub use resolve::resolve;
pub use saved::{epoch_ns, epoch_secs, Snapshot};
use sightings::clock_offset;
pub use sightings::Guard;

/// How long a cgroup adopted under a watched parent is traced while waiting for the engine to
/// say whose it is.
pub const PROVISIONAL_FOR: Duration = Duration::from_secs(10);

/// One thing being recorded, across all its instances (cgroups).
#[derive(Clone, Debug)]
pub struct Target {
    label: String,
    spec: TargetSpec,
    output: PathBuf,
    /// Current container id (container targets).
    container_id: Option<String>,
    /// Current cgroup path, relative to the cgroup2 root (watched for re-creation).
    path: Option<String>,
    /// Cgroups of this target present in the kernel's TARGETS map.
    live: Vec<u64>,
    /// What instances no longer in the map recorded.
    folded: Learned,
    /// For the live display: already shown.
    shown: SyscallSet,
    shown_refused: SyscallSet,
    /// Instances traced from creation: new containers (or cgroups), and restarts of ones
    /// already seen running.
    fresh: u32,
    restarts: u32,
    /// Container ids seen running, to tell a restart from a new container.
    known_ids: Vec<String>,
    /// False once removed (the daemon's `remove`); its index stays, as watch tags use it.
    active: bool,
    /// Taken in by a selector: retired when its container is destroyed.
    selected: bool,
    /// The last first sighting, and when.
    last_new: Option<(String, SystemTime)>,
    /// First sightings reported by the kernel.
    events: u64,
    /// Which program made each call first, and when (best-effort: from events only): under
    /// a seccomp filter (or refused by it), and without one (set-up, unconfined).
    why: Why,
    why_setup: Why,
    /// A container's seccomp option and capabilities (`docker inspect`), for refusal hints.
    security: Option<ContainerSecurity>,
    /// When it was first traced and when each later instance was: the learning curve's axis.
    history: History,
    /// Calls refused under its own profile (the one in force now): what `export --heal` adds.
    refused_own: std::collections::BTreeSet<String>,
}

impl Target {
    /// A target with nothing learned and no instance yet.
    pub fn new(spec: TargetSpec, label: String) -> Self {
        Self {
            label,
            spec,
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
            selected: false,
            last_new: None,
            events: 0,
            why: Why::default(),
            why_setup: Why::default(),
            security: None,
            history: History::default(),
            refused_own: Default::default(),
        }
    }

    /// A container target whose current instance is `id` at cgroup `path`; `running` when it
    /// was seen running (so a later instance of the same id is a restart).
    pub fn with_container(mut self, name: String, id: String, path: String, running: bool) -> Self {
        self.label = name;
        if running {
            self.known_ids.push(id.clone());
        }
        self.container_id = Some(id);
        self.path = Some(path);
        self
    }

    /// The container's seccomp option and capabilities, as Docker reported them.
    pub fn with_security(mut self, security: ContainerSecurity) -> Self {
        self.put_security(security);
        self
    }

    /// The security it runs under from now on. Under another filter, a call refused before is
    /// news again (a call refused by Docker's default while learning, then by the learned
    /// profile), and what the old profile refused is not the new one's to heal.
    fn put_security(&mut self, security: ContainerSecurity) {
        let same = self.security.as_ref().is_some_and(|s| {
            s.own_profile == security.own_profile
                && std::mem::discriminant(&s.seccomp) == std::mem::discriminant(&security.seccomp)
        });
        if !same {
            self.shown_refused = SyscallSet::default();
            self.refused_own.clear();
        }
        self.security = Some(security);
    }

    /// A target at cgroup `path`.
    pub fn with_path(mut self, path: String) -> Self {
        self.path = Some(path);
        self
    }

    pub fn label(&self) -> &str {
        &self.label
    }
    pub fn spec(&self) -> &TargetSpec {
        &self.spec
    }
    pub fn output(&self) -> &std::path::Path {
        &self.output
    }
    pub fn container_id(&self) -> Option<&str> {
        self.container_id.as_deref()
    }
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
    pub fn live(&self) -> &[u64] {
        &self.live
    }
    pub fn active(&self) -> bool {
        self.active
    }
    pub fn restarts(&self) -> u32 {
        self.restarts
    }
    pub fn fresh(&self) -> u32 {
        self.fresh
    }
    pub fn events(&self) -> u64 {
        self.events
    }
    pub fn last_new(&self) -> Option<&(String, SystemTime)> {
        self.last_new.as_ref()
    }
    pub fn why(&self) -> &Why {
        &self.why
    }
    pub fn why_setup(&self) -> &Why {
        &self.why_setup
    }
    pub fn history(&self) -> &History {
        &self.history
    }
    /// Calls refused under its own profile, by name (`#NR` for a number without one).
    pub fn refused_own(&self) -> &std::collections::BTreeSet<String> {
        &self.refused_own
    }
    /// The container's seccomp option and capabilities, when known.
    pub fn security(&self) -> Option<&ContainerSecurity> {
        self.security.as_ref()
    }
    /// What its calls run under, as far as the engine said.
    pub fn under(&self) -> Under {
        match self.security.as_ref().map(|s| &s.seccomp) {
            Some(SeccompInForce::Custom(_) | SeccompInForce::Unreadable(_)) => Under::OwnProfile,
            Some(SeccompInForce::Default) => Under::Default,
            Some(SeccompInForce::Unconfined) => Under::Unconfined,
            None => Under::Unknown,
        }
    }
    pub fn is_container(&self) -> bool {
        matches!(self.spec, TargetSpec::Container(_))
    }
    /// Whether it ran while recorded: an instance traced now, or one traced and gone.
    pub fn has_instance(&self) -> bool {
        !self.live.is_empty() || self.fresh + self.restarts > 0
    }
}

/// The name a target is shown and its file named by.
pub fn label_of(spec: &TargetSpec) -> String {
    match spec {
        TargetSpec::Container(n) => {
            crate::target::cri::label_of_ref(n).unwrap_or_else(|| n.clone())
        }
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

/// Every target of a session, the kernel cgroups that are theirs and those adopted
/// provisionally. Target indexes are stable (watch tags use them).
pub struct Targets {
    arch: Arch,
    /// The running kernel, for Docker's `minKernel` rules in refusal hints.
    kernel: KernelVersion,
    list: Vec<Target>,
    by_cgroup: HashMap<u64, usize>,
    /// Cgroups adopted under a watched parent whose owner is not known yet, and since when.
    provisional: HashMap<u64, Instant>,
    /// Name patterns and label selectors: matching containers created later become targets.
    selectors: Vec<Selector>,
    /// Show first sightings (not in `check`, which shows refusals only).
    show_seen: bool,
    /// Lines for the live display, in order.
    notes: Vec<String>,
    /// What happened, for `--events` and `--alert-command`, in order.
    activity: Vec<Activity>,
    /// Guarding enforced profiles (`check`, the daemon): a refusal under a container's own
    /// profile is an alert, with this fix.
    guard: Option<Guard>,
    /// Cgroups folded into user space (or retired) whose kernel records are dropped only
    /// once a checkpoint has saved what they held: a crash in between loses nothing.
    folded_out: Vec<u64>,
    /// Cgroups the kernel's map had no room for (their calls are not recorded).
    map_full: u64,
    /// Turns the kernel's event times into wall-clock ones.
    clock: crate::profile::why::ClockOffset,
    /// First sightings of provisional cgroups (under a filter, and without one), until a
    /// target claims them.
    pending: HashMap<u64, (Why, Why)>,
}

impl Targets {
    pub fn new(arch: Arch, show_seen: bool) -> Self {
        Self {
            arch,
            // No kernel older runs the tracer; the session sets the running one.
            kernel: MIN_KERNEL,
            list: Vec::new(),
            by_cgroup: HashMap::new(),
            provisional: HashMap::new(),
            selectors: Vec::new(),
            show_seen,
            notes: Vec::new(),
            activity: Vec::new(),
            guard: None,
            folded_out: Vec::new(),
            map_full: 0,
            clock: clock_offset(),
            pending: HashMap::new(),
        }
    }

    /// The running kernel's version, for the refusal hints.
    pub fn set_kernel(&mut self, kernel: KernelVersion) {
        self.kernel = kernel;
    }

    /// The host the targets run on, as Docker's profile rules see it.
    pub fn host(&self) -> Host {
        Host {
            arch: self.arch,
            kernel: self.kernel,
        }
    }

    /// Adds a target; a label another target has already gets a suffix (`web-2`), so that
    /// distinct targets get distinct files.
    pub fn push(&mut self, mut t: Target) -> usize {
        let base = t.label.clone();
        let mut n = 1;
        while self.list.iter().any(|o| o.active && o.label == t.label) {
            n += 1;
            t.label = format!("{base}-{n}");
        }
        self.list.push(t);
        self.list.len() - 1
    }

    pub fn get(&self, i: usize) -> &Target {
        &self.list[i]
    }
    pub fn iter(&self) -> impl Iterator<Item = &Target> {
        self.list.iter()
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// Which target cgroup `id` belongs to.
    pub fn owner(&self, id: u64) -> Option<usize> {
        self.by_cgroup.get(&id).copied()
    }
    pub fn is_provisional(&self, id: u64) -> bool {
        self.provisional.contains_key(&id)
    }
    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }
    pub fn add_selectors(&mut self, s: impl IntoIterator<Item = Selector>) {
        self.selectors.extend(s);
    }
    /// The lines queued for the live display since the last call.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }
    fn note(&mut self, line: String) {
        self.notes.push(line);
    }
    /// What happened since the last call, in order.
    pub fn take_activity(&mut self) -> Vec<Activity> {
        std::mem::take(&mut self.activity)
    }
    /// Refusals under a container's own profile are alerts, with `g`'s fix.
    pub fn set_guard(&mut self, g: Guard) {
        self.guard = Some(g);
    }

    /// Sets where each target's profile goes, as `output_for(label, count)` says.
    pub fn set_outputs(&mut self, output_for: impl Fn(&str, usize) -> PathBuf) {
        let n = self.list.len();
        for t in &mut self.list {
            t.output = output_for(&t.label, n);
        }
    }

    /// The active target named `name` (or whose container id starts with it, 4 characters at
    /// least), else the last removed one (which can still be exported).
    pub fn find(&self, name: &str) -> Option<usize> {
        let matches = |t: &Target| {
            t.label == name
                || t.container_id
                    .as_deref()
                    .is_some_and(|id| name.len() >= 4 && id.starts_with(name))
        };
        self.list
            .iter()
            .position(|t| t.active && matches(t))
            .or_else(|| self.list.iter().rposition(matches))
    }

    /// A (container id, cgroup path) pair of a target, to derive other containers' paths.
    pub fn sibling(&self) -> Option<(String, String)> {
        self.list.iter().find_map(|t| {
            let id = t.container_id.as_ref()?;
            let path = t.path.as_ref()?;
            path.contains(id.as_str())
                .then(|| (id.clone(), path.clone()))
        })
    }

    /// Where the engine puts container `id`'s cgroup, with cgroup layout `layout`.
    pub fn container_path(&self, id: &str, layout: Layout) -> String {
        let sibling = self.sibling();
        let sib = sibling.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
        layout.container_path(id, sib)
    }

    /// Where the engine puts container cgroups (e.g. `/docker`).
    pub fn container_parent(&self, layout: Layout) -> Option<String> {
        let probe = self.container_path("0", layout);
        let (parent, _) = probe.rsplit_once('/')?;
        (!parent.is_empty()).then(|| parent.to_string())
    }

    /// Everything target `i` learned: folded instances and live ones.
    pub fn learned(&self, i: usize, k: &dyn Kernel) -> Result<Learned, RecordError> {
        let t = &self.list[i];
        let mut l = t.folded.clone();
        let keys = k.args(&t.live)?;
        for &id in &t.live {
            if let Some(r) = k.record(id)? {
                let mine = keys.iter().filter(|k| k.cgroup_id == id).copied();
                l.merge(&Learned::from_kernel(&r, mine));
            }
        }
        Ok(l)
    }

    /// Watches target `i`'s cgroup path and traces the instance running now, if any.
    pub fn attach(
        &mut self,
        i: usize,
        k: &mut dyn Kernel,
        cg: &dyn Cgroups,
    ) -> Result<(), RecordError> {
        let Some(path) = self.list[i].path.clone() else {
            return Ok(());
        };
        // Watch first, so an instance created between the two steps is not missed.
        k.watch(&path, i as u32)?;
        if let Ok(cgroup::CgroupId(id)) = cg.id_of(&path) {
            self.list[i].history.traced(epoch_secs(SystemTime::now()));
            self.track(i, id, k)?;
            // Nothing runs in it yet: whatever will is traced from its first syscall.
            if cg.is_empty(&path) {
                self.list[i].fresh += 1;
            }
        }
        Ok(())
    }

    /// Cgroup `id` is target `i`'s: traced in the kernel, no longer provisional.
    /// A kernel map with no room left is a warning (counted, shown in `status`), never the
    /// end of the session.
    pub fn track(&mut self, i: usize, id: u64, k: &mut dyn Kernel) -> Result<(), RecordError> {
        self.provisional.remove(&id);
        self.claim_sightings(i, id);
        if let Err(e) = k.add_cgroup(id) {
            self.map_full += 1;
            let line = format!(
                "{}: WARNING: cgroup {id} cannot be traced ({e}); its calls are not recorded",
                self.list[i].label
            );
            self.note(line);
            return Ok(());
        }
        self.by_cgroup.insert(id, i);
        if !self.list[i].live.contains(&id) {
            self.list[i].live.push(id);
        }
        Ok(())
    }

    /// Folds the instances of target `i` other than `keep` into user space; the next
    /// checkpoint drops them from the kernel map (see [`release_folded`](Self::release_folded)),
    /// which keeps the map bounded across many restarts.
    pub fn fold_old(&mut self, i: usize, keep: u64, k: &mut dyn Kernel) -> Result<(), RecordError> {
        let old: Vec<u64> = self.list[i]
            .live
            .iter()
            .copied()
            .filter(|&id| id != keep)
            .collect();
        for id in old {
            if let Some(l) = k.learned(id)? {
                self.list[i].folded.merge(&l);
            }
            self.folded_out.push(id);
            self.by_cgroup.remove(&id);
            self.list[i].live.retain(|&x| x != id);
        }
        Ok(())
    }

    /// Target `i` has a new instance, cgroup `id`, traced since its creation.
    pub fn adopt(&mut self, i: usize, id: u64, k: &mut dyn Kernel) -> Result<(), RecordError> {
        let was_provisional = self.provisional.remove(&id).is_some();
        self.track(i, id, k)?;
        self.fold_old(i, id, k)?;
        let t = &mut self.list[i];
        t.history.instance(epoch_secs(SystemTime::now()));
        let restart = match t.container_id.clone() {
            Some(cid) if t.known_ids.contains(&cid) => {
                t.restarts += 1;
                true
            }
            Some(cid) => {
                t.known_ids.push(cid);
                t.fresh += 1;
                false
            }
            None => {
                t.fresh += 1;
                false
            }
        };
        let line = format!(
            "{}: new instance (cgroup {id}), traced from its first syscall",
            t.label
        );
        let activity = Activity::Instance {
            target: t.label.clone(),
            container_id: t.container_id.clone(),
            cgroup: id,
            restart,
            at_ns: epoch_ns(SystemTime::now()),
        };
        self.activity.push(activity);
        self.note(line);
        if was_provisional {
            // Its first sightings came while nobody owned it: show them now.
            if let Some(r) = k.record(id)? {
                for nr in SyscallSet::from_bits(&r.native.allowed).iter() {
                    if self.list[i].shown.insert(nr) && self.show_seen {
                        let line = format!(
                            "{}  {}",
                            self.list[i].label,
                            display::call_name(self.arch, nr, false)
                        );
                        self.note(line);
                    }
                }
            }
        }
        Ok(())
    }

    /// One event from the kernel's ring buffer.
    pub fn on_event(
        &mut self,
        ev: Event,
        now: Instant,
        k: &mut dyn Kernel,
        cg: &dyn Cgroups,
    ) -> Result<(), RecordError> {
        match ev.kind {
            event_kind::ADOPTED if ev.value == watch_tag::PARENT => {
                self.provisional_from(ev.cgroup_id, now, k, cg)?;
            }
            event_kind::ADOPTED => {
                let i = ev.value as usize;
                if i < self.list.len() {
                    self.adopt(i, ev.cgroup_id, k)?;
                    // The kernel's time of the adoption, not the time the event was read.
                    let at = self.clock.wall_ns(ev.ts_ns) / 1_000_000_000;
                    self.list[i].history.began_at(at);
                }
            }
            event_kind::SEEN
            | event_kind::REFUSED
            | event_kind::SEEN_COMPAT
            | event_kind::REFUSED_COMPAT => self.on_sighting(ev),
            event_kind::SETUP | event_kind::SETUP_COMPAT => self.on_setup_sighting(&ev),
            _ => {}
        }
        Ok(())
    }

    /// Cgroups the kernel's map had no room for.
    pub fn map_full(&self) -> u64 {
        self.map_full
    }

    /// Stops recording target `i`; what it learned stays, for a later export.
    pub fn retire(&mut self, i: usize, k: &mut dyn Kernel) -> Result<(), RecordError> {
        let learned = self.learned(i, k)?;
        self.list[i].folded = learned;
        if let Some(path) = self.list[i].path.clone() {
            k.unwatch(&path)?;
        }
        for id in std::mem::take(&mut self.list[i].live) {
            self.folded_out.push(id);
            self.by_cgroup.remove(&id);
        }
        self.list[i].active = false;
        Ok(())
    }
}
