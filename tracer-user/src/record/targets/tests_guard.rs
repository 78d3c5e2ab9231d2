//! Guarding an enforced profile: alert lines and the activity `--events` and
//! `--alert-command` are made from, over fake kernel maps.

use std::time::Instant;

use tracer_common::event_kind;

use super::{
    tests::{ev, nr, ARCH, ID_A},
    Guard, Target, Targets,
};
use crate::{
    kernel::fake::{FakeCgroups, FakeKernel},
    profile::{
        formats::{render, Format, Profile},
        moby::ContainerSecurity,
    },
    record::activity::{Activity, Under},
    target::TargetSpec,
};

/// `web` under a profile of its own that allows read only, guarded as `guard` says.
fn guarded(guard: Option<Guard>) -> (Targets, FakeKernel, FakeCgroups) {
    let mut k = FakeKernel::default();
    let mut cg = FakeCgroups::default();
    cg.mkdir(&format!("/docker/{ID_A}"), 100, true);
    let own = render(
        Format::Docker,
        ARCH,
        "web",
        &Profile {
            allowed: ["read".to_string()].into(),
            ..Default::default()
        },
    );
    let security =
        ContainerSecurity::from_host_config(&[format!("seccomp={own}")], &[], &[], false);
    assert!(security.own_profile.is_some());
    let mut ts = Targets::new(ARCH, true);
    if let Some(g) = guard {
        ts.set_guard(g);
    }
    let t = Target::new(TargetSpec::Container("web".into()), "web".into())
        .with_container("web".into(), ID_A.into(), format!("/docker/{ID_A}"), true)
        .with_security(security);
    let i = ts.push(t);
    ts.attach(i, &mut k, &cg).unwrap();
    ts.take_notes();
    (ts, k, cg)
}

fn by(kind: u32, value: u32, comm: &[u8], pid: u32) -> tracer_common::Event {
    let mut e = ev(kind, 100, value);
    e.comm[..comm.len()].copy_from_slice(comm);
    e.tgid = pid;
    e
}

#[test]
fn a_refusal_under_its_own_profile_is_one_alert_with_program_time_and_fix() {
    let (mut ts, mut k, cg) = guarded(Some(Guard::Daemon));
    ts.take_activity();
    for _ in 0..3 {
        let e = by(event_kind::REFUSED, nr("mbind"), b"numa<probe>", 42);
        ts.on_event(e, Instant::now(), &mut k, &cg).unwrap();
    }
    let notes = ts.take_notes();
    assert_eq!(notes.len(), 1, "once per new refusal: {notes:?}");
    let line = &notes[0];
    assert!(
        line.starts_with("web  ALERT mbind refused by its profile: "),
        "{line}"
    );
    assert!(line.contains("numa<probe> (pid 42) at "), "{line}");
    assert!(
        line.ends_with("fix: seccomp-tracer export web --heal -o web.healed.json"),
        "{line}"
    );
    let activity = ts.take_activity();
    assert_eq!(activity.len(), 1, "{activity:?}");
    let Activity::Refusal { call, under, fix } = &activity[0] else {
        panic!("{activity:?}");
    };
    assert_eq!((call.name.as_str(), call.pid), ("mbind", 42));
    assert_eq!(call.program, "numa<probe>");
    assert_eq!(*under, Under::OwnProfile);
    assert!(fix.contains("--heal"), "{fix}");
}

#[test]
fn recording_keeps_the_refused_line_and_check_names_its_own_fix() {
    let (mut ts, mut k, cg) = guarded(None);
    let e = by(event_kind::REFUSED, nr("mbind"), b"p", 1);
    ts.on_event(e, Instant::now(), &mut k, &cg).unwrap();
    let notes = ts.take_notes();
    assert!(notes[0].starts_with("web  REFUSED mbind: "), "{notes:?}");
    assert!(matches!(
        ts.take_activity()[..],
        [Activity::Refusal {
            under: Under::OwnProfile,
            ..
        }]
    ));

    let (mut ts, mut k, cg) = guarded(Some(Guard::Check));
    let e = by(event_kind::REFUSED, nr("mbind"), b"p", 1);
    ts.on_event(e, Instant::now(), &mut k, &cg).unwrap();
    let notes = ts.take_notes();
    assert!(notes[0].contains("ALERT mbind"), "{notes:?}");
    assert!(
        notes[0].contains("; fix: the container's own profile (--security-opt seccomp) refuses it"),
        "{notes:?}"
    );
}

#[test]
fn first_sightings_and_instances_are_activity_once() {
    let (mut ts, mut k, mut cg) = guarded(Some(Guard::Daemon));
    for _ in 0..2 {
        let e = by(event_kind::SEEN, nr("read"), b"app", 7);
        ts.on_event(e, Instant::now(), &mut k, &cg).unwrap();
    }
    let a = ts.take_activity();
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].kind(), "first_sighting");
    // A restart: a new cgroup at the same path, adopted by the kernel.
    cg.mkdir(&format!("/docker/{ID_A}"), 101, true);
    let adopted = ev(event_kind::ADOPTED, 101, 0);
    ts.on_event(adopted, Instant::now(), &mut k, &cg).unwrap();
    let a = ts.take_activity();
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].kind(), "restart");
    assert_eq!(ts.get(0).history().instances.len(), 1);
}

#[test]
fn a_refusal_known_before_a_daemon_restart_is_not_alerted_again() {
    let (mut ts, mut k, mut cg) = guarded(Some(Guard::Daemon));
    k.refuse(100, nr("mbind"));
    let e = by(event_kind::REFUSED, nr("mbind"), b"p", 1);
    ts.on_event(e, Instant::now(), &mut k, &cg).unwrap();
    assert_eq!(ts.take_activity().len(), 1);
    let saved = ts.snapshot(&k).unwrap();

    let mut back = Targets::new(ARCH, true);
    back.set_guard(Guard::Daemon);
    for s in saved {
        back.restore(s, None, &mut k, &cg).unwrap();
    }
    back.take_notes();
    back.take_activity();
    // The container restarts: its new cgroup refuses mbind again, a first for the kernel.
    cg.mkdir(&format!("/docker/{ID_A}"), 101, true);
    back.on_event(ev(event_kind::ADOPTED, 101, 0), Instant::now(), &mut k, &cg)
        .unwrap();
    let mut e = by(event_kind::REFUSED, nr("mbind"), b"p", 1);
    e.cgroup_id = 101;
    back.on_event(e, Instant::now(), &mut k, &cg).unwrap();
    let again: Vec<_> = back
        .take_activity()
        .into_iter()
        .filter(|a| a.kind() == "refusal")
        .collect();
    assert!(again.is_empty(), "{again:?}");
    assert!(!back.take_notes().iter().any(|n| n.contains("ALERT")));
}

#[test]
fn clone3_answered_enosys_by_design_is_no_alert_and_nothing_to_heal() {
    let (mut ts, mut k, cg) = guarded(Some(Guard::Daemon));
    let e = by(event_kind::REFUSED, nr("clone3"), b"app", 1);
    ts.on_event(e, Instant::now(), &mut k, &cg).unwrap();
    let notes = ts.take_notes();
    assert!(!notes.iter().any(|n| n.contains("ALERT")), "{notes:?}");
    assert!(ts.get(0).refused_own().is_empty());
    assert!(
        ts.take_activity().is_empty(),
        "no refusal event, no alert command"
    );
}

#[test]
fn under_a_new_profile_a_call_refused_before_is_news_again() {
    let (mut ts, mut k, cg) = guarded(Some(Guard::Daemon));
    // Learning under Docker's default: getcpu refused there (no alert).
    let default = ContainerSecurity::docker_default();
    ts.set_security(ID_A, &default);
    let e = by(event_kind::REFUSED, nr("getcpu"), b"app", 1);
    ts.on_event(e, Instant::now(), &mut k, &cg).unwrap();
    assert!(ts.take_notes()[0].contains("REFUSED getcpu"));
    assert!(ts.get(0).refused_own().is_empty());
    // Now under its learned profile: refused again, an alert, and the call to heal.
    let (own, _, _) = guarded(None);
    let own = own.get(0).security().unwrap().clone();
    ts.set_security(ID_A, &own);
    let e = by(event_kind::REFUSED, nr("getcpu"), b"app", 2);
    ts.on_event(e, Instant::now(), &mut k, &cg).unwrap();
    let notes = ts.take_notes();
    assert!(notes[0].contains("ALERT getcpu"), "{notes:?}");
    assert_eq!(
        ts.get(0).refused_own().iter().collect::<Vec<_>>(),
        ["getcpu"]
    );
    // The same profile again (a container restart): nothing is news.
    ts.set_security(ID_A, &own);
    let e = by(event_kind::REFUSED, nr("getcpu"), b"app", 3);
    ts.on_event(e, Instant::now(), &mut k, &cg).unwrap();
    assert!(ts.take_notes().is_empty());
}
