//! First sightings and refusals: shown once, queued as activity (and alerts, for a container
//! under a profile of its own), and kept as provenance: which program made each call first in
//! a target, and when (see `profile::why`). A cgroup adopted provisionally holds its sightings
//! until a target claims it.

use std::time::SystemTime;

use tracer_common::{event_kind, Event};

use super::Targets;
use crate::{
    profile::{
        formats::{escape, ENOSYS_FALLBACK},
        moby::refusal_hint,
        why::{program_name, CallKey, ClockOffset, Sighting, Timestamp},
    },
    record::{
        activity::{Activity, Call, Under},
        display,
    },
};

/// CLOCK_REALTIME less CLOCK_MONOTONIC (the clock of `bpf_ktime_get_ns`), read back to back.
pub fn clock_offset() -> ClockOffset {
    fn read(clock: libc::clockid_t) -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec, which we own.
        if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
            return 0;
        }
        (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
    }
    let mono = read(libc::CLOCK_MONOTONIC);
    let real = read(libc::CLOCK_REALTIME);
    ClockOffset::new(real, mono)
}

/// Which fix an alert names: what the session can do about a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The daemon: its `export --heal` writes the profile in force plus what it refused.
    Daemon,
    /// `check`: it writes nothing.
    Check,
}

impl Guard {
    /// The fix for a call refused to `target` by its own profile; `hint` says which profiles
    /// refuse it and what would allow it.
    pub fn fix(self, target: &str, hint: &str) -> String {
        match self {
            Guard::Daemon => {
                format!("seccomp-tracer export {target} --heal -o {target}.healed.json")
            }
            Guard::Check => hint.to_string(),
        }
    }
}

impl Targets {
    /// A first sighting (or refusal) in a cgroup of ours: counted, shown once and queued as
    /// activity once per target.
    pub(super) fn on_sighting(&mut self, ev: Event) {
        let Some(&i) = self.by_cgroup.get(&ev.cgroup_id) else {
            return self.hold_sighting(&ev);
        };
        let (call, sighting) = self.sighting(&ev);
        self.list[i].why.saw(call, sighting.clone());
        let compat = matches!(
            ev.kind,
            event_kind::SEEN_COMPAT | event_kind::REFUSED_COMPAT
        );
        let seen = matches!(ev.kind, event_kind::SEEN | event_kind::SEEN_COMPAT);
        let table = if compat {
            self.arch.compat()
        } else {
            Some(self.arch)
        };
        let name = table.and_then(|a| a.name(ev.value));
        let abi = crate::profile::formats::arch_name(table.unwrap_or(self.arch));
        let shown = display::call_name(self.arch, ev.value, compat);
        let show_seen = self.show_seen;
        let host = self.host();
        let guard = self.guard;
        let t = &mut self.list[i];
        if seen {
            t.events += 1;
            t.last_new = Some((display::short_name(name, ev.value), SystemTime::now()));
        }
        // Compat numbers are kept apart from native ones in what was shown.
        let key = ev.value | if compat { 1 << 31 } else { 0 };
        let first = if seen {
            t.shown.insert(key)
        } else {
            t.shown_refused.insert(key)
        };
        if !first {
            return;
        }
        let what = Call {
            target: t.label.clone(),
            container_id: t.container_id.clone(),
            name: display::short_name(name, ev.value),
            abi,
            program: sighting.program.clone(),
            pid: sighting.pid,
            at_ns: sighting.at_ns,
        };
        if seen {
            if show_seen {
                let line = format!("{}  {shown}", t.label);
                self.note(line);
            }
            self.activity.push(Activity::FirstSighting(what));
            return;
        }
        let under = t.under();
        let hint = name
            .map(|n| refusal_hint(n, host, t.security.as_ref()))
            .unwrap_or_default();
        // Answered ENOSYS by the learned profile on purpose (libc falls back to clone).
        let by_design = name.is_some_and(|n| ENOSYS_FALLBACK.contains(&n));
        if under == Under::OwnProfile && !by_design {
            t.refused_own.insert(what.name.clone());
        }
        let line = match guard {
            Some(g) if under == Under::OwnProfile && !by_design => {
                let fix = g.fix(&t.label, &hint);
                let line = format!(
                    "{}  ALERT {shown} refused by its profile: {} (pid {}) at {} UTC; fix: {fix}",
                    t.label,
                    escape(&what.program),
                    what.pid,
                    Timestamp(what.at_ns / 1_000_000_000).time(),
                );
                self.activity.push(Activity::Refusal {
                    call: what,
                    under,
                    fix,
                });
                line
            }
            _ => {
                let line = format!("{}  REFUSED {shown}: {hint}", t.label);
                // Answered ENOSYS on purpose (by Docker's default too): no event, no alert.
                if !by_design {
                    self.activity.push(Activity::Refusal {
                        call: what,
                        under,
                        fix: hint,
                    });
                }
                line
            }
        };
        self.note(line);
    }

    /// The call and provenance of a first-sighting event.
    pub(super) fn sighting(&self, ev: &Event) -> (CallKey, Sighting) {
        let compat = matches!(
            ev.kind,
            event_kind::SEEN_COMPAT | event_kind::REFUSED_COMPAT | event_kind::SETUP_COMPAT
        );
        let refused = matches!(ev.kind, event_kind::REFUSED | event_kind::REFUSED_COMPAT);
        let call = CallKey {
            compat,
            nr: ev.value,
        };
        let s = Sighting {
            program: program_name(&ev.comm),
            pid: ev.tgid,
            at_ns: self.clock.wall_ns(ev.ts_ns),
            refused,
        };
        (call, s)
    }

    /// A first sighting in a cgroup no target owns: kept while the cgroup is provisional.
    pub(super) fn hold_sighting(&mut self, ev: &Event) {
        if self.provisional.contains_key(&ev.cgroup_id) {
            let (call, s) = self.sighting(ev);
            self.pending.entry(ev.cgroup_id).or_default().0.saw(call, s);
        }
    }

    /// A call first made in a cgroup by a task without a seccomp filter: provenance only (no
    /// live line), kept apart from the filtered ones, which are what a container's profile
    /// holds.
    pub(super) fn on_setup_sighting(&mut self, ev: &Event) {
        let (call, s) = self.sighting(ev);
        match self.by_cgroup.get(&ev.cgroup_id) {
            Some(&i) => {
                self.list[i].why_setup.saw(call, s);
            }
            None if self.provisional.contains_key(&ev.cgroup_id) => {
                self.pending.entry(ev.cgroup_id).or_default().1.saw(call, s);
            }
            None => {}
        }
    }

    /// Cgroup `id` is target `i`'s: the sightings held for it are the target's.
    pub(super) fn claim_sightings(&mut self, i: usize, id: u64) {
        if let Some((filtered, setup)) = self.pending.remove(&id) {
            self.list[i].why.merge(&filtered);
            self.list[i].why_setup.merge(&setup);
        }
    }
}
