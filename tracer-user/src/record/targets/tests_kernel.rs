//! The session's logic where the kernel's map is the truth and containers come and go:
//! reconciling, deferred removal, destroyed containers, a full map, namesakes. No root.

use std::{collections::HashMap, time::Instant};

use tracer_common::{event_kind, watch_tag};

use super::{
    tests::{ev, nr, web, ARCH, ID_A, ID_B},
    Target, Targets,
};
use crate::{
    kernel::{
        fake::{FakeCgroups, FakeKernel},
        Kernel,
    },
    target::{engine::Layout, selector::Selector, TargetSpec},
};

#[test]
fn provisional_cgroups_are_named_for_asking_the_engine() {
    let (mut ts, mut k, mut cg) = web();
    cg.mkdir(&format!("/docker/{ID_B}"), 950, true);
    k.adopt(950);
    ts.on_event(
        ev(event_kind::ADOPTED, 950, watch_tag::PARENT),
        Instant::now(),
        &mut k,
        &cg,
    )
    .unwrap();
    assert_eq!(ts.provisional_names(&k, &cg), [(950, ID_B.to_string())]);
    // The engine says it is `web` (re-created): it is followed from its creation.
    ts.on_created(ID_B, "web", Default::default(), Layout::DOCKER, &mut k, &cg)
        .unwrap();
    assert_eq!(ts.owner(950), Some(0));
    assert!(ts.provisional_names(&k, &cg).is_empty());
}

#[test]
fn an_instance_whose_adoption_event_was_dropped_is_found_in_the_kernels_map() {
    let (mut ts, mut k, mut cg) = web();
    k.call(100, nr("read"));
    // Restarted: the kernel adopted the new cgroup (watched path) and recorded a call, but the
    // ADOPTED event never reached user space.
    cg.mkdir(&format!("/docker/{ID_A}"), 101, true);
    k.adopt(101);
    k.call(101, nr("mbind"));
    ts.reconcile(Instant::now(), &mut k, &cg).unwrap();
    assert_eq!(ts.owner(101), Some(0));
    let l = ts.learned(0, &k).unwrap();
    assert!(l.native.allowed.contains(nr("mbind")) && l.native.allowed.contains(nr("read")));
    assert!(ts
        .take_notes()
        .iter()
        .any(|n| n.contains("event was dropped")));
    // A cgroup nobody watches becomes provisional: the engine is asked whose it is.
    k.adopt(555);
    ts.reconcile(Instant::now(), &mut k, &cg).unwrap();
    assert!(ts.is_provisional(555));
}

#[test]
fn folded_instances_leave_the_kernel_only_after_a_checkpoint_saved_them() {
    let (mut ts, mut k, cg) = web();
    k.call(100, nr("mbind"));
    k.adopt(101);
    ts.on_event(ev(event_kind::ADOPTED, 101, 0), Instant::now(), &mut k, &cg)
        .unwrap();
    assert!(k.targets.contains_key(&100), "kept until saved");
    // A kill -9 now loses nothing: the pinned map still holds it, and reconciling does not
    // take it for a new instance.
    ts.reconcile(Instant::now(), &mut k, &cg).unwrap();
    assert_eq!(ts.owner(100), None);
    assert!(!ts.is_provisional(100));
    let saved = ts.snapshot(&k).unwrap();
    assert!(saved[0].learned.native.allowed.contains(nr("mbind")));
    ts.release_folded(&mut k).unwrap();
    assert!(!k.targets.contains_key(&100));
    assert!(ts
        .learned(0, &k)
        .unwrap()
        .native
        .allowed
        .contains(nr("mbind")));
}

#[test]
fn a_destroyed_container_taken_in_by_a_selector_is_retired() {
    let mut k = FakeKernel::default();
    let mut cg = FakeCgroups::default();
    k.watch_parent("/docker").unwrap();
    let mut ts = Targets::new(ARCH, true);
    ts.add_selectors([Selector {
        pattern: Some("job-*".into()),
        labels: vec![],
    }]);
    let i = ts.select("job-1", &HashMap::new()).unwrap();
    cg.mkdir(&format!("/docker/{ID_B}"), 300, true);
    ts.on_created(
        ID_B,
        "job-1",
        Default::default(),
        Layout::DOCKER,
        &mut k,
        &cg,
    )
    .unwrap();
    k.call(300, nr("mbind"));
    assert_eq!(ts.get(i).live(), [300]);
    ts.on_destroyed(ID_B, &mut k).unwrap();
    ts.release_folded(&mut k).unwrap();
    assert!(!ts.get(i).active());
    assert!(k.targets.is_empty(), "its kernel record is gone");
    assert!(
        !k.watches.contains_key(&format!("/docker/{ID_B}")),
        "and its watch"
    );
    assert!(ts
        .learned(i, &k)
        .unwrap()
        .native
        .allowed
        .contains(nr("mbind")));
}

#[test]
fn a_destroyed_named_container_is_folded_and_still_followed_by_name() {
    let (mut ts, mut k, _) = web();
    k.call(100, nr("mbind"));
    ts.on_destroyed(ID_A, &mut k).unwrap();
    ts.release_folded(&mut k).unwrap();
    assert!(ts.get(0).active(), "`web` may be created again");
    assert!(k.targets.is_empty() && k.watches.is_empty());
    assert!(ts
        .learned(0, &k)
        .unwrap()
        .native
        .allowed
        .contains(nr("mbind")));
}

#[test]
fn a_recreated_container_stops_watching_the_old_path() {
    let (mut ts, mut k, cg) = web();
    ts.on_created(ID_B, "web", Default::default(), Layout::DOCKER, &mut k, &cg)
        .unwrap();
    assert!(!k.watches.contains_key(&format!("/docker/{ID_A}")));
    assert!(k.watches.contains_key(&format!("/docker/{ID_B}")));
}

#[test]
fn a_full_kernel_map_is_a_warning_not_the_end() {
    let (mut ts, mut k, cg) = web();
    k.full = true;
    k.adopt(101);
    k.targets.remove(&101);
    ts.track(0, 101, &mut k).unwrap();
    assert_eq!(ts.map_full(), 1);
    assert_eq!(ts.owner(101), None);
    assert!(ts.take_notes()[0].contains("cannot be traced"));
    // The session goes on: events still work.
    ts.on_event(
        ev(event_kind::SEEN, 100, nr("read")),
        Instant::now(),
        &mut k,
        &cg,
    )
    .unwrap();
}

#[test]
fn distinct_targets_with_one_name_get_distinct_names() {
    let mut ts = Targets::new(ARCH, true);
    let a = ts.push(Target::new(TargetSpec::Cgroup("/a/x".into()), "x".into()));
    let b = ts.push(Target::new(TargetSpec::Cgroup("/b/x".into()), "x".into()));
    assert_eq!(ts.get(a).label(), "x");
    assert_eq!(ts.get(b).label(), "x-2");
    ts.set_outputs(|label, _| format!("{label}.json").into());
    assert_ne!(ts.get(a).output(), ts.get(b).output());
}
