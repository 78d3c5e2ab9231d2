//! Provenance (which program made each call first) over the fake kernel: kept per target,
//! claimed with provisional cgroups, saved and restored with the daemon's state.

use std::time::Instant;

use tracer_common::{event_kind, watch_tag, Event};

use super::{
    tests::{ev, nr, web, ARCH, ID_B},
    Snapshot, Targets,
};
use crate::profile::why::{CallKey, ClockOffset, Sighting};

/// 2026-11-27T09:41:07Z, in ns.
const WALL: u64 = 1_795_772_467_000_000_000;

/// A first-sighting event made by `comm` (process `tgid`) at monotonic 5 s.
fn by(kind: u32, cgroup: u64, value: u32, comm: &[u8], tgid: u32) -> Event {
    let mut e = ev(kind, cgroup, value);
    e.ts_ns = 5_000_000_000;
    e.tgid = tgid;
    e.comm[..comm.len()].copy_from_slice(comm);
    e
}

fn call(name: &str) -> CallKey {
    CallKey {
        compat: false,
        nr: nr(name),
    }
}

fn sighting(program: &str, pid: u32, refused: bool) -> Sighting {
    Sighting {
        program: program.into(),
        pid,
        at_ns: WALL,
        refused,
    }
}

/// `web()` whose clock says monotonic 5 s is WALL.
fn web_at_wall() -> (
    Targets,
    crate::kernel::fake::FakeKernel,
    crate::kernel::fake::FakeCgroups,
) {
    let (mut ts, k, cg) = web();
    ts.clock = ClockOffset::new(WALL, 5_000_000_000);
    (ts, k, cg)
}

#[test]
fn a_first_sighting_keeps_its_program_pid_and_wall_clock_time() {
    let (mut ts, mut k, cg) = web_at_wall();
    let now = Instant::now();
    let refused = by(event_kind::REFUSED, 100, nr("mbind"), b"numa-probe", 42);
    ts.on_event(refused, now, &mut k, &cg).unwrap();
    let seen = by(event_kind::SEEN, 100, nr("read"), b"\x1b]0;x\x07", 43);
    ts.on_event(seen, now, &mut k, &cg).unwrap();
    let why = ts.get(0).why();
    assert_eq!(
        why.get(call("mbind")),
        Some(&sighting("numa-probe", 42, true))
    );
    assert_eq!(
        why.get(call("read")),
        Some(&sighting("\\x1b]0;x\\x07", 43, false)),
        "the name is made printable"
    );
    // i386 `read` (3) is not native `read` (0).
    let compat = by(event_kind::SEEN_COMPAT, 100, 3, b"old32", 44);
    ts.on_event(compat, now, &mut k, &cg).unwrap();
    let why = ts.get(0).why();
    assert_eq!(
        why.get(CallKey {
            compat: true,
            nr: 3
        })
        .unwrap()
        .program,
        "old32"
    );
    assert_eq!(why.get(call("read")).unwrap().program, "\\x1b]0;x\\x07");
}

#[test]
fn sightings_of_a_provisional_cgroup_go_to_the_target_that_claims_it() {
    let (mut ts, mut k, mut cg) = web_at_wall();
    cg.mkdir(&format!("/docker/{ID_B}"), 600, true);
    k.adopt(600);
    let now = Instant::now();
    ts.on_event(
        ev(event_kind::ADOPTED, 600, watch_tag::PARENT),
        now,
        &mut k,
        &cg,
    )
    .unwrap();
    let mbind = by(event_kind::SEEN, 600, nr("mbind"), b"numa-probe", 7);
    ts.on_event(mbind, now, &mut k, &cg).unwrap();
    // Not ours, not provisional: nothing kept.
    let stray = by(event_kind::SEEN, 999, nr("keyctl"), b"other", 8);
    ts.on_event(stray, now, &mut k, &cg).unwrap();
    assert!(ts.get(0).why().is_empty(), "nobody owns it yet");
    ts.on_created(
        ID_B,
        "web",
        Default::default(),
        crate::target::engine::Layout::DOCKER,
        &mut k,
        &cg,
    )
    .unwrap();
    assert_eq!(ts.get(0).live(), [600]);
    assert_eq!(
        ts.get(0).why().get(call("mbind")),
        Some(&sighting("numa-probe", 7, false))
    );
    assert_eq!(ts.get(0).why().len(), 1);
    assert!(ts.pending.is_empty());
}

#[test]
fn provenance_survives_a_snapshot_and_state_saved_without_it_still_loads() {
    let (mut ts, mut k, cg) = web_at_wall();
    k.call(100, nr("mbind"));
    let mbind = by(event_kind::REFUSED, 100, nr("mbind"), b"numa-probe", 42);
    ts.on_event(mbind, Instant::now(), &mut k, &cg).unwrap();
    let saved = ts.snapshot(&k).unwrap();
    let text = serde_json::to_string(&saved).unwrap();
    let back_saved: Vec<Snapshot> = serde_json::from_str(&text).unwrap();
    let mut back = Targets::new(ARCH, true);
    for s in back_saved {
        back.restore(s, None, &mut k, &cg).unwrap();
    }
    assert_eq!(back.get(0).why(), ts.get(0).why());
    assert_eq!(
        back.get(0).why().get(call("mbind")).unwrap().program,
        "numa-probe"
    );

    // A state file written before provenance was kept: no `why`, and nothing invented.
    let mut old: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    old[0].as_object_mut().unwrap().remove("why");
    let old: Vec<Snapshot> = serde_json::from_value(serde_json::Value::Array(old)).unwrap();
    let mut back = Targets::new(ARCH, true);
    for s in old {
        back.restore(s, None, &mut k, &cg).unwrap();
    }
    assert!(back.get(0).why().is_empty());
    let l = back.learned(0, &k).unwrap();
    assert!(
        l.native.allowed.contains(nr("mbind")),
        "the learned set is whole"
    );
}

#[test]
fn calls_made_without_a_filter_are_kept_apart_from_the_programs_own() {
    let (mut ts, mut k, cg) = web_at_wall();
    let now = Instant::now();
    // The runtime reads before installing the filter; the program reads under it.
    let runc = by(event_kind::SETUP, 100, nr("read"), b"runc:[2:INIT]", 5);
    ts.on_event(runc, now, &mut k, &cg).unwrap();
    let mut app = by(event_kind::SEEN, 100, nr("read"), b"app", 6);
    app.ts_ns += 1_000_000_000;
    ts.on_event(app, now, &mut k, &cg).unwrap();
    let t = ts.get(0);
    assert_eq!(t.why().get(call("read")).unwrap().program, "app");
    assert_eq!(
        t.why_setup().get(call("read")),
        Some(&sighting("runc:[2:INIT]", 5, false))
    );
    assert_eq!(
        ts.take_notes(),
        ["web  read"],
        "set-up calls are not shown live"
    );
    let compat = by(event_kind::SETUP_COMPAT, 100, 3, b"old32", 7);
    ts.on_event(compat, now, &mut k, &cg).unwrap();
    assert!(ts
        .get(0)
        .why_setup()
        .get(CallKey {
            compat: true,
            nr: 3
        })
        .is_some());
}

#[test]
fn history_keeps_the_first_trace_and_the_last_instances() {
    use super::History;
    let mut h = History::default();
    h.traced(100);
    h.instance(50);
    assert_eq!(h.since, Some(50), "the earliest counts");
    for t in 0..(History::MAX_INSTANCES as u64 + 5) {
        h.instance(1000 + t);
    }
    assert_eq!(h.instances.len(), History::MAX_INSTANCES);
    assert_eq!(
        h.instances.last(),
        Some(&(1000 + History::MAX_INSTANCES as u64 + 4))
    );
    let mut restored = History::default();
    restored.instance(2);
    restored.merge(&h);
    assert_eq!(restored.since, Some(2));
    assert_eq!(restored.instances.len(), History::MAX_INSTANCES);

    // The kernel's time of an adoption, read a little later, is the instance's.
    let mut h = History::default();
    h.instance(1000);
    h.began_at(998);
    assert_eq!((h.since, h.instances.clone()), (Some(998), vec![998]));
    h.began_at(5);
    assert_eq!(h.instances, [998], "not a time of this instance");
}
