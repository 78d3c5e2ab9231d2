use std::collections::BTreeMap;

use super::*;
use crate::{
    privileges::KernelVersion,
    profile::{
        args::condition,
        formats::Format,
        why::{FileEntry, WHY_VERSION},
    },
    syscalls::Arch,
};

/// 2026-11-27T09:41:07Z
const T: u64 = 1_795_772_467;

fn host() -> Host {
    Host {
        arch: Arch::X86_64,
        kernel: KernelVersion { major: 6, minor: 8 },
    }
}

fn entry(program: &str, at: u64, refused: bool) -> FileEntry {
    FileEntry {
        program: program.into(),
        pid: 42,
        first_seen: Timestamp(at),
        refused,
    }
}

fn profile(names: &[&str]) -> Profile {
    Profile {
        allowed: names.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn why(calls: &[(&str, FileEntry)]) -> WhyFile {
    WhyFile {
        version: WHY_VERSION,
        arch: "x86_64".into(),
        calls: calls
            .iter()
            .map(|(n, e)| (n.to_string(), e.clone()))
            .collect::<BTreeMap<_, _>>(),
        recorded_since: Some(Timestamp(T - 3)),
        instances: vec![Timestamp(T + 20)],
        recorded_until: Some(Timestamp(T + 600)),
        ..Default::default()
    }
}

fn page(p: &Profile, w: Option<&WhyFile>, source: Source) -> String {
    render(&Report {
        title: "web",
        source,
        host: host(),
        profile: p,
        why: w,
        generated: Timestamp(T + 100),
    })
    .unwrap()
}

fn file_source() -> Source {
    Source::File {
        path: "/srv/web.json".into(),
        format: Format::Docker,
    }
}

#[test]
fn the_page_has_every_section_and_no_script() {
    let mut p = profile(&["read", "openat", "socket", "mbind", "futex", "mount"]);
    p.conditions.insert(
        "socket".into(),
        [condition(0, 1), condition(0, 2)].into_iter().collect(),
    );
    let w = why(&[
        ("read", entry("nginx", T, false)),
        ("openat", entry("nginx", T + 1, false)),
        ("mbind", entry("numa-probe", T + 30, true)),
    ]);
    let s = page(&p, Some(&w), file_source());
    assert!(s.starts_with("<!DOCTYPE html>"));
    assert!(s.contains(html::GENERATOR) && html::is_report(s.as_bytes()));
    assert!(s.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    assert!(!s.contains("<script"));
    // Nothing is fetched: the only URL is the SVG namespace.
    assert_eq!(
        s.matches("://").count(),
        s.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    for id in ["curve", "calls", "beyond", "refused", "use"] {
        assert!(s.contains(&format!("<h2 id=\"{id}\">")), "{id}");
    }
    // Grouped, with provenance and rules.
    assert!(s.contains("<h3>Network (1)</h3>"), "{s}");
    assert!(s.contains("only AF_UNIX, AF_INET"), "{s}");
    assert!(s.contains("first by nginx at 2026-11-27 09:41:07 UTC (pid 42)"));
    assert!(s.contains("<td class=\"refused\">first by numa-probe"));
    // Three calls without a sighting, counted at the start, and said so.
    assert!(s.contains("3 calls of the profile have no recorded first sighting"));
    assert!(s.contains("tracing began 2026-11-27 09:41:04 UTC"));
    // The curve runs flat to the end of the record, where convergence shows.
    assert!(s.contains("runs to 2026-11-27 09:51:07 UTC"), "{s}");
    assert!(
        s.contains("09:41:04 to 2026-11-27 09:5"),
        "the time axis reaches it: {s}"
    );
    // Beyond the default: mbind with SYS_NICE, mount with SYS_ADMIN.
    assert!(s.contains("--cap-add SYS_NICE"), "{s}");
    assert!(s.contains("--cap-add SYS_ADMIN"), "{s}");
    assert!(s.contains("&quot;beyond_default&quot;"), "explain --json");
    // The refused call and its fix.
    let refusals = s.split("<h2 id=\"refused\">").nth(1).unwrap();
    assert!(refusals.contains("<td class=\"call refused\">mbind</td><td>yes</td>"));
    // How to use it.
    assert!(s.contains("docker run --security-opt seccomp=/srv/web.json IMAGE"));
    assert!(s.contains("type: Localhost"));
}

#[test]
fn hostile_names_programs_and_titles_are_escaped_everywhere() {
    let evil = "<script>alert(1)</script>";
    let attr = "\"><img src=x onerror=alert(1)>";
    let p = profile(&[evil, attr, "read"]);
    let w = why(&[
        (evil, entry(attr, T, true)),
        ("read", entry("<b>x</b>\u{1b}[2J", T + 1, false)),
        (attr, entry("'quote'", T + 2, false)),
    ]);
    let s = render(&Report {
        title: "</title><script>x</script>",
        source: Source::Daemon {
            container: "<c>".into(),
            socket: Some("/tmp/\"s".into()),
            dir: "/tmp/<d>".into(),
        },
        host: host(),
        profile: &p,
        why: Some(&w),
        generated: Timestamp(T),
    })
    .unwrap();
    for bad in ["<script", "<img", "<b>", "\u{1b}", "'quote'"] {
        assert!(!s.contains(bad), "{bad} in the page:\n{s}");
    }
    assert!(s.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(s.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn without_a_provenance_file_every_call_is_counted_at_the_start() {
    let p = profile(&["read", "write"]);
    let s = page(&p, None, file_source());
    assert!(s.contains("No provenance file"));
    assert!(s.contains("2 calls of the profile have no recorded first sighting"));
    assert!(s.contains("no first sighting recorded: no time axis"));
    assert!(s.contains("No call was refused while recording"));
    let c = curve_of(&p, None);
    assert_eq!((c.unrecorded, c.sightings.len()), (2, 0));
}

#[test]
fn refused_calls_left_out_of_the_profile_are_shown_with_their_fix() {
    let p = profile(&["read"]);
    let w = why(&[
        ("read", entry("sh", T, false)),
        ("mbind", entry("numa", T + 5, true)),
    ]);
    let c = curve_of(&p, Some(&w));
    assert_eq!(c.sightings.len(), 2);
    assert!(c.sightings.iter().any(|s| s.name == "mbind" && !s.counted));
    let s = page(&p, Some(&w), file_source());
    assert!(
        s.contains("<td class=\"call refused\">mbind</td><td>no</td>"),
        "{s}"
    );
    assert!(s.contains("left out of this profile (--exclude-refused)"));
    assert!(s.contains("1 refused call left out of the profile: marked without a step"));
    assert_eq!(
        refused_names(&p, Some(&w)).into_iter().collect::<Vec<_>>(),
        ["mbind"]
    );
}

#[test]
fn a_daemon_target_says_how_to_export_it() {
    let p = profile(&["read"]);
    let s = page(
        &p,
        None,
        Source::Daemon {
            container: "web".into(),
            socket: None,
            dir: "/root".into(),
        },
    );
    assert!(
        s.contains("seccomp-tracer export web -o /root/web.json\n"),
        "{s}"
    );
    assert!(s.contains("docker run --security-opt seccomp=/root/web.json IMAGE"));
}
