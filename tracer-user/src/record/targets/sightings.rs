//! First sightings as provenance: which program made each call first in a target, and when
//! (see `profile::why`). Kept with what the target learned; a cgroup adopted provisionally
//! holds its sightings until a target claims it.

use tracer_common::{event_kind, Event};

use super::Targets;
use crate::profile::why::{program_name, CallKey, ClockOffset, Sighting};

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

impl Targets {
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
