//! The session's logic over fake kernel maps and a fake cgroup tree: no root needed.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use tracer_common::{event_kind, watch_tag, Event};

use super::{Target, Targets, PROVISIONAL_FOR};
use crate::{
    kernel::{
        fake::{FakeCgroups, FakeKernel},
        Kernel,
    },
    syscalls::Arch,
    target::{engine::Layout, selector::Selector, TargetSpec},
};

pub(super) const ARCH: Arch = Arch::X86_64;
pub(super) const ID_A: &str = "aaaaaaaaaaaa1111";
pub(super) const ID_B: &str = "bbbbbbbbbbbb2222";

pub(super) fn nr(name: &str) -> u32 {
    ARCH.number(name).unwrap()
}

pub(super) fn ev(kind: u32, cgroup_id: u64, value: u32) -> Event {
    Event {
        ts_ns: 0,
        cgroup_id,
        kind,
        value,
        tgid: 0,
        pad: 0,
        comm: [0; tracer_common::COMM_LEN],
    }
}

/// A container target `web` running as `ID_A` in cgroup 100 at /docker/ID_A.
pub(super) fn web() -> (Targets, FakeKernel, FakeCgroups) {
    let mut k = FakeKernel::default();
    let mut cg = FakeCgroups::default();
    k.watch_parent("/docker").unwrap();
    cg.mkdir(&format!("/docker/{ID_A}"), 100, true);
    let mut ts = Targets::new(ARCH, true);
    let t = Target::new(TargetSpec::Container("web".into()), "web".into()).with_container(
        "web".into(),
        ID_A.into(),
        format!("/docker/{ID_A}"),
        true,
    );
    let i = ts.push(t);
    ts.attach(i, &mut k, &cg).unwrap();
    ts.take_notes();
    (ts, k, cg)
}

#[test]
fn attach_watches_the_path_with_the_target_index_and_traces_the_running_instance() {
    let (ts, k, _) = web();
    assert_eq!(k.watches.get(&format!("/docker/{ID_A}")), Some(&0));
    assert!(k.targets.contains_key(&100));
    assert_eq!(ts.get(0).live(), [100]);
    assert_eq!(ts.owner(100), Some(0));
    // Attached to a running instance: its start was missed.
    assert_eq!(ts.get(0).fresh(), 0);
    assert!(ts.get(0).has_instance());
}

#[test]
fn an_empty_cgroup_counts_as_traced_from_its_start() {
    let mut k = FakeKernel::default();
    let mut cg = FakeCgroups::default();
    cg.mkdir("/svc", 7, false);
    let mut ts = Targets::new(ARCH, true);
    let i = ts.push(
        Target::new(TargetSpec::Cgroup("/svc".into()), "svc".into()).with_path("/svc".into()),
    );
    ts.attach(i, &mut k, &cg).unwrap();
    assert_eq!(ts.get(i).fresh(), 1);
    assert_eq!(ts.get(i).live(), [7]);
}

#[test]
fn a_cgroup_that_does_not_exist_yet_is_only_watched() {
    let mut k = FakeKernel::default();
    let cg = FakeCgroups::default();
    let mut ts = Targets::new(ARCH, true);
    let i = ts.push(
        Target::new(TargetSpec::Cgroup("/later".into()), "later".into()).with_path("/later".into()),
    );
    ts.attach(i, &mut k, &cg).unwrap();
    assert!(k.watches.contains_key("/later"));
    assert!(k.targets.is_empty());
    assert!(!ts.get(i).has_instance());
}

#[test]
fn a_restart_is_adopted_and_the_old_instance_folded_without_losing_its_calls() {
    let (mut ts, mut k, cg) = web();
    k.call(100, nr("mbind"));
    // The kernel adopts the new cgroup at its creation (watched path, tag 0).
    k.adopt(101);
    ts.on_event(ev(event_kind::ADOPTED, 101, 0), Instant::now(), &mut k, &cg)
        .unwrap();
    assert_eq!(ts.get(0).live(), [101]);
    assert_eq!(ts.get(0).restarts(), 1, "same container id: a restart");
    ts.release_folded(&mut k).unwrap();
    assert!(
        !k.targets.contains_key(&100),
        "old instance dropped from the map"
    );
    assert_eq!(ts.owner(100), None);
    let learned = ts.learned(0, &k).unwrap();
    assert!(
        learned.native.allowed.contains(nr("mbind")),
        "folded, not lost"
    );
    let notes = ts.take_notes();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("new instance (cgroup 101)")),
        "{notes:?}"
    );
}

#[test]
fn a_new_container_id_counts_as_fresh_not_as_a_restart() {
    let (mut ts, mut k, mut cg) = web();
    cg.mkdir(&format!("/docker/{ID_B}"), 200, true);
    ts.on_created(ID_B, "web", Default::default(), Layout::DOCKER, &mut k, &cg)
        .unwrap();
    k.adopt(201);
    ts.on_event(ev(event_kind::ADOPTED, 201, 0), Instant::now(), &mut k, &cg)
        .unwrap();
    assert_eq!(ts.get(0).fresh(), 1);
    assert_eq!(ts.get(0).restarts(), 0);
}

#[test]
fn an_adoption_tagged_beyond_the_targets_is_ignored() {
    let (mut ts, mut k, cg) = web();
    k.adopt(300);
    ts.on_event(ev(event_kind::ADOPTED, 300, 9), Instant::now(), &mut k, &cg)
        .unwrap();
    assert_eq!(ts.owner(300), None);
    assert_eq!(ts.get(0).live(), [100]);
}

#[test]
fn an_unclaimed_adoption_under_the_parent_expires_after_the_delay() {
    let (mut ts, mut k, cg) = web();
    let t0 = Instant::now();
    k.adopt(400);
    ts.on_event(
        ev(event_kind::ADOPTED, 400, watch_tag::PARENT),
        t0,
        &mut k,
        &cg,
    )
    .unwrap();
    assert!(ts.is_provisional(400));
    ts.expire_provisional(t0 + PROVISIONAL_FOR / 2, &mut k)
        .unwrap();
    assert!(k.targets.contains_key(&400), "not before the delay");
    ts.expire_provisional(t0 + PROVISIONAL_FOR + Duration::from_secs(1), &mut k)
        .unwrap();
    assert!(!k.targets.contains_key(&400));
    assert!(!ts.is_provisional(400));
}

#[test]
fn an_adoption_under_the_parent_whose_owner_is_known_is_adopted_at_once() {
    let (mut ts, mut k, mut cg) = web();
    // `web` was re-created as ID_B; its cgroup appears under /docker.
    ts.on_created(ID_B, "web", Default::default(), Layout::DOCKER, &mut k, &cg)
        .unwrap();
    cg.mkdir(&format!("/docker/{ID_B}"), 500, true);
    k.adopt(500);
    ts.on_event(
        ev(event_kind::ADOPTED, 500, watch_tag::PARENT),
        Instant::now(),
        &mut k,
        &cg,
    )
    .unwrap();
    assert!(!ts.is_provisional(500));
    assert_eq!(ts.owner(500), Some(0));
}

#[test]
fn recreation_follows_the_new_container_and_claims_its_provisional_cgroup() {
    let (mut ts, mut k, mut cg) = web();
    k.call(100, nr("read"));
    // Its cgroup is created (and adopted under the parent) before Docker's create event.
    cg.mkdir(&format!("/docker/{ID_B}"), 600, true);
    k.adopt(600);
    k.call(600, nr("mbind"));
    ts.on_event(
        ev(event_kind::ADOPTED, 600, watch_tag::PARENT),
        Instant::now(),
        &mut k,
        &cg,
    )
    .unwrap();
    assert!(ts.is_provisional(600), "nobody claims it yet");
    ts.on_created(ID_B, "web", Default::default(), Layout::DOCKER, &mut k, &cg)
        .unwrap();
    assert_eq!(ts.get(0).container_id(), Some(ID_B));
    assert_eq!(ts.get(0).path(), Some(format!("/docker/{ID_B}").as_str()));
    assert_eq!(k.watches.get(&format!("/docker/{ID_B}")), Some(&0));
    assert_eq!(ts.get(0).live(), [600]);
    let l = ts.learned(0, &k).unwrap();
    assert!(l.native.allowed.contains(nr("read")) && l.native.allowed.contains(nr("mbind")));
    let notes = ts.take_notes().join("\n");
    assert!(
        notes.contains("created as bbbbbbbbbbbb; following it"),
        "{notes}"
    );
    // Its first sightings, made while nobody owned it, are shown now.
    assert!(notes.contains("web  mbind"), "{notes}");
    assert!(!notes.contains("LATE"), "{notes}");
}

#[test]
fn recreation_seen_after_its_cgroup_started_is_reported_late_and_traced() {
    let (mut ts, mut k, mut cg) = web();
    cg.mkdir(&format!("/docker/{ID_B}"), 700, true);
    ts.on_created(ID_B, "web", Default::default(), Layout::DOCKER, &mut k, &cg)
        .unwrap();
    assert_eq!(ts.owner(700), Some(0));
    assert!(k.targets.contains_key(&700));
    assert!(ts.take_notes().iter().any(|n| n.contains("LATE")));
}

#[test]
fn a_created_container_nobody_wants_changes_nothing() {
    let (mut ts, mut k, cg) = web();
    ts.on_created(ID_B, "db", Default::default(), Layout::DOCKER, &mut k, &cg)
        .unwrap();
    assert_eq!(ts.get(0).container_id(), Some(ID_A));
    ts.on_created(ID_A, "web", Default::default(), Layout::DOCKER, &mut k, &cg)
        .unwrap();
    assert!(ts.take_notes().is_empty(), "already following that id");
}

#[test]
fn a_created_container_is_placed_like_its_siblings() {
    let mut k = FakeKernel::default();
    let cg = FakeCgroups::default();
    let mut ts = Targets::new(ARCH, true);
    let path = format!("/system.slice/docker-{ID_A}.scope");
    ts.push(
        Target::new(TargetSpec::Container("web".into()), "web".into()).with_container(
            "web".into(),
            ID_A.into(),
            path,
            true,
        ),
    );
    assert_eq!(
        ts.container_parent(Layout::DOCKER).as_deref(),
        Some("/system.slice")
    );
    ts.on_created(ID_B, "web", Default::default(), Layout::DOCKER, &mut k, &cg)
        .unwrap();
    assert_eq!(
        ts.get(0).path(),
        Some(format!("/system.slice/docker-{ID_B}.scope").as_str())
    );
    let empty = Targets::new(ARCH, true);
    assert_eq!(
        empty
            .container_parent(Layout {
                systemd: true,
                ..Layout::DOCKER
            })
            .as_deref(),
        Some("/system.slice")
    );
    let podman = Layout {
        engine: crate::target::engine::EngineKind::Podman,
        systemd: false,
    };
    assert_eq!(
        empty.container_parent(podman).as_deref(),
        Some("/libpod_parent")
    );
    assert_eq!(
        empty.container_parent(Layout::DOCKER).as_deref(),
        Some("/docker")
    );
}

#[test]
fn a_selector_takes_in_a_matching_container_once() {
    let mut ts = Targets::new(ARCH, true);
    ts.add_selectors([Selector {
        pattern: Some("web-*".into()),
        labels: vec![],
    }]);
    let none = HashMap::new();
    let i = ts.select("web-1", &none).expect("taken in");
    assert_eq!(ts.get(i).label(), "web-1");
    assert!(ts.select("web-1", &none).is_none(), "already a target");
    assert!(ts.select("db-1", &none).is_none());
    assert!(ts.take_notes()[0].contains("matches web-*"));
}

#[test]
fn a_label_selector_needs_the_label() {
    let mut ts = Targets::new(ARCH, true);
    ts.add_selectors([Selector {
        pattern: None,
        labels: vec!["app=web".into()],
    }]);
    let web: HashMap<String, String> = [("app".to_string(), "web".to_string())].into();
    assert!(ts.select("x", &HashMap::new()).is_none());
    assert!(ts.select("x", &web).is_some());
    assert!(ts.select("", &web).is_none(), "no name, no target");
}

#[test]
fn a_first_sighting_is_counted_and_shown_once() {
    let (mut ts, mut k, cg) = web();
    let read = nr("read");
    for _ in 0..2 {
        ts.on_event(ev(event_kind::SEEN, 100, read), Instant::now(), &mut k, &cg)
            .unwrap();
    }
    assert_eq!(ts.take_notes(), ["web  read"]);
    assert_eq!(ts.get(0).events(), 2);
    assert_eq!(ts.get(0).last_new().map(|(n, _)| n.as_str()), Some("read"));
}

#[test]
fn check_shows_refusals_but_not_first_sightings() {
    let mut k = FakeKernel::default();
    let mut cg = FakeCgroups::default();
    cg.mkdir("/svc", 7, true);
    let mut ts = Targets::new(ARCH, false);
    let i = ts.push(
        Target::new(TargetSpec::Cgroup("/svc".into()), "svc".into()).with_path("/svc".into()),
    );
    ts.attach(i, &mut k, &cg).unwrap();
    ts.on_event(
        ev(event_kind::SEEN, 7, nr("read")),
        Instant::now(),
        &mut k,
        &cg,
    )
    .unwrap();
    assert!(ts.take_notes().is_empty());
    ts.on_event(
        ev(event_kind::REFUSED, 7, nr("mbind")),
        Instant::now(),
        &mut k,
        &cg,
    )
    .unwrap();
    ts.on_event(
        ev(event_kind::REFUSED, 7, nr("mbind")),
        Instant::now(),
        &mut k,
        &cg,
    )
    .unwrap();
    let notes = ts.take_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].starts_with("svc  REFUSED mbind: "), "{notes:?}");
}

#[test]
fn compat_calls_are_named_from_the_i386_table_and_kept_apart() {
    let (mut ts, mut k, cg) = web();
    // 11 is execve on i386 and munmap natively.
    ts.on_event(
        ev(event_kind::SEEN_COMPAT, 100, 11),
        Instant::now(),
        &mut k,
        &cg,
    )
    .unwrap();
    ts.on_event(ev(event_kind::SEEN, 100, 11), Instant::now(), &mut k, &cg)
        .unwrap();
    assert_eq!(ts.take_notes(), ["web  execve (32-bit)", "web  munmap"]);
}

#[test]
fn sightings_in_a_cgroup_not_ours_are_ignored() {
    let (mut ts, mut k, cg) = web();
    ts.on_event(ev(event_kind::SEEN, 999, 0), Instant::now(), &mut k, &cg)
        .unwrap();
    assert!(ts.take_notes().is_empty());
    assert_eq!(ts.get(0).events(), 0);
}

#[test]
fn a_removed_target_keeps_what_it_learned_and_leaves_the_kernel() {
    let (mut ts, mut k, _) = web();
    k.call(100, nr("mbind"));
    ts.retire(0, &mut k).unwrap();
    ts.release_folded(&mut k).unwrap();
    assert!(!ts.get(0).active());
    assert!(k.targets.is_empty());
    assert!(k.watches.is_empty());
    assert!(ts
        .learned(0, &k)
        .unwrap()
        .native
        .allowed
        .contains(nr("mbind")));
    // Still found for an export.
    assert_eq!(ts.find("web"), Some(0));
}

#[test]
fn find_prefers_the_active_target_and_takes_id_prefixes_of_four() {
    let (mut ts, mut k, cg) = web();
    ts.retire(0, &mut k).unwrap();
    let i = ts.push(Target::new(
        TargetSpec::Container("web".into()),
        "web".into(),
    ));
    ts.attach(i, &mut k, &cg).unwrap();
    assert_eq!(ts.find("web"), Some(i));
    assert_eq!(ts.find("aaaa"), Some(0));
    assert_eq!(ts.find("aaa"), None);
    assert_eq!(ts.find("nope"), None);
}

#[test]
fn learned_merges_folded_and_live_instances_with_their_arguments() {
    let (mut ts, mut k, cg) = web();
    k.call(100, nr("socket"));
    k.args.push(tracer_common::ArgKey {
        cgroup_id: 100,
        call: tracer_common::arg_call::SOCKET as u32,
        phase: tracer_common::arg_phase::ALLOWED,
        value: 10,
    });
    k.adopt(101);
    ts.on_event(ev(event_kind::ADOPTED, 101, 0), Instant::now(), &mut k, &cg)
        .unwrap();
    k.call(101, nr("read"));
    ts.release_folded(&mut k).unwrap();
    let l = ts.learned(0, &k).unwrap();
    assert!(l.native.allowed.contains(nr("socket")) && l.native.allowed.contains(nr("read")));
    assert!(
        l.args
            .get(
                tracer_common::arg_call::SOCKET,
                tracer_common::arg_phase::ALLOWED
            )
            .is_some(),
        "argument values of a folded instance are kept"
    );
    assert!(k.args.is_empty(), "and dropped from the kernel with it");
}

#[test]
fn a_snapshot_restores_what_was_learned_and_the_cgroups_still_traced() {
    let (mut ts, mut k, cg) = web();
    k.call(100, nr("mbind"));
    ts.on_event(
        ev(event_kind::SEEN, 100, nr("mbind")),
        Instant::now(),
        &mut k,
        &cg,
    )
    .unwrap();
    let saved = ts.snapshot(&k).unwrap();
    let text = serde_json::to_string(&saved).unwrap();
    let saved: Vec<super::Snapshot> = serde_json::from_str(&text).unwrap();
    // The daemon is down; the kernel keeps recording in cgroup 100.
    k.call(100, nr("read"));
    let mut back = Targets::new(ARCH, true);
    for s in saved {
        back.restore(s, None, &mut k, &cg).unwrap();
    }
    assert_eq!(back.get(0).live(), [100]);
    assert_eq!(back.owner(100), Some(0));
    assert_eq!(back.get(0).events(), 1);
    let l = back.learned(0, &k).unwrap();
    assert!(l.native.allowed.contains(nr("mbind")) && l.native.allowed.contains(nr("read")));
    assert!(back.take_notes()[0].contains("web: resumed (1 cgroup traced)"));
}

#[test]
fn a_restored_target_whose_cgroups_are_gone_keeps_what_it_learned() {
    let (ts, mut k, mut cg) = web();
    k.call(100, nr("mbind"));
    let saved = ts.snapshot(&k).unwrap();
    // While the daemon was down the container went away, and its cgroup with it.
    k.remove_cgroup(100).unwrap();
    cg.rmdir(&format!("/docker/{ID_A}"));
    let mut back = Targets::new(ARCH, true);
    for s in saved {
        back.restore(s, None, &mut k, &cg).unwrap();
    }
    assert!(back.get(0).live().is_empty());
    assert!(back
        .learned(0, &k)
        .unwrap()
        .native
        .allowed
        .contains(nr("mbind")));
    assert!(
        k.watches.contains_key(&format!("/docker/{ID_A}")),
        "watched for its return"
    );
}

#[test]
fn a_removed_target_is_restored_inactive_and_not_traced() {
    let (mut ts, mut k, cg) = web();
    ts.retire(0, &mut k).unwrap();
    ts.release_folded(&mut k).unwrap();
    let saved = ts.snapshot(&k).unwrap();
    let mut back = Targets::new(ARCH, true);
    for s in saved {
        back.restore(s, None, &mut k, &cg).unwrap();
    }
    assert!(!back.get(0).active());
    assert!(k.watches.is_empty() && k.targets.is_empty());
}

#[test]
fn cgroups_adopted_while_nobody_listened_become_provisional() {
    let (mut ts, mut k, _) = web();
    k.adopt(800);
    ts.adopt_orphans(Instant::now(), &k).unwrap();
    assert!(ts.is_provisional(800));
    assert!(!ts.is_provisional(100), "ours stays ours");
}

#[test]
fn tracking_a_provisional_cgroup_ends_its_expiry() {
    let (mut ts, mut k, cg) = web();
    let t0 = Instant::now();
    k.adopt(900);
    ts.on_event(
        ev(event_kind::ADOPTED, 900, watch_tag::PARENT),
        t0,
        &mut k,
        &cg,
    )
    .unwrap();
    ts.track(0, 900, &mut k).unwrap();
    ts.expire_provisional(t0 + PROVISIONAL_FOR * 2, &mut k)
        .unwrap();
    assert!(k.targets.contains_key(&900));
}

#[test]
fn outputs_are_named_after_the_targets() {
    let (mut ts, _, _) = web();
    ts.set_outputs(|label, n| format!("/out/{label}-{n}.json").into());
    assert_eq!(ts.get(0).output(), std::path::Path::new("/out/web-1.json"));
}

#[test]
fn labels_come_from_what_was_named() {
    use super::label_of;
    assert_eq!(label_of(&TargetSpec::Container("web".into())), "web");
    assert_eq!(
        label_of(&TargetSpec::Cgroup("/system.slice/x.service/".into())),
        "x.service"
    );
    assert_eq!(label_of(&TargetSpec::Pid(42)), "pid-42");
}
