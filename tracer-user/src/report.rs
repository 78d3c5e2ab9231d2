//! Pure: the text a user reads, the live first-sighting lines and the end-of-session summary.

use std::{fmt::Write as _, path::Path, time::SystemTime};

use crate::{
    bpf::Counters,
    profile::{
        args::describe,
        moby::{refusal_hint, ContainerSecurity, Host},
        why::{notable, WhyFile},
        Composition,
    },
};

/// `HH:MM:SS.mmm` (UTC) of `t`.
pub fn clock(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

/// How much of a target's startup the recording saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Startup {
    /// A new container was traced from the creation of its cgroup (`restarts` instances).
    Observed { restarts: u32 },
    /// Only restarts of an existing container were traced from creation.
    Restarted { restarts: u32 },
    /// Attached to an instance that was already running.
    Missed,
}

/// One target's part of the summary.
pub struct TargetReport<'a> {
    pub label: &'a str,
    pub composition: &'a Composition,
    pub refused: &'a [&'static str],
    pub include_refused: bool,
    pub baseline_used: bool,
    pub startup: Startup,
    pub is_container: bool,
    pub output: &'a Path,
    /// The first sightings, written next to the profile.
    pub why: Option<&'a WhyFile>,
    /// Where it ran, and the container's seccomp option and capabilities: what the refusal
    /// hints are decided from.
    pub host: Host,
    pub security: Option<&'a ContainerSecurity>,
}

/// Which program made each of `names` first, and when: a heading and a line per call.
fn first_sightings(out: &mut String, names: &[&str], why: Option<&WhyFile>) {
    let Some(why) = why.filter(|_| !names.is_empty()) else {
        return;
    };
    let _ = writeln!(
        out,
        "  first sightings (calls beyond Docker's default, refused calls):"
    );
    for name in names {
        let _ = writeln!(out, "    {name}: {}", why.describe(name, false));
    }
}

pub fn target_summary(r: &TargetReport) -> String {
    let c = r.composition;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} syscalls allowed -> {}",
        r.label,
        c.allowed.len(),
        r.output.display()
    );
    if c.unconfined {
        let _ = writeln!(
            out,
            "{}",
            if r.is_container {
                "  note: it runs without a seccomp filter, so the runtime's set-up calls could \
                 not be told apart from its own; record it under Docker's default profile for a \
                 tighter result"
            } else {
                "  note: it runs without a seccomp filter: every call made in it is in the profile"
            }
        );
    }
    if r.baseline_used && !c.from_baseline.is_empty() {
        let _ =
            writeln!(
            out,
            "  runtime baseline: added {} calls the container runtime makes after installing the \
             filter: {} (--no-runtime-baseline leaves them out)",
            c.from_baseline.len(),
            c.from_baseline.iter().copied().collect::<Vec<_>>().join(", ")
        );
    }
    if !r.refused.is_empty() {
        let verdict = if r.include_refused {
            "allowed in the profile; --exclude-refused leaves them out"
        } else {
            "left out (--exclude-refused)"
        };
        let _ = writeln!(out, "  refused by the current profile ({verdict}):");
        for name in r.refused {
            let _ = writeln!(
                out,
                "    {name}: {}",
                refusal_hint(name, r.host, r.security)
            );
        }
    }
    first_sightings(&mut out, &notable(c, r.refused, r.host), r.why);
    match r.startup {
        Startup::Observed { restarts } => {
            let _ = writeln!(
                out,
                "  startup: observed ({restarts} new instance{} traced from creation)",
                if restarts == 1 { "" } else { "s" }
            );
        }
        Startup::Restarted { restarts } => {
            let _ = writeln!(
                out,
                "  startup: observed on restart ({restarts} restart{}); a brand-new container may \
                 do more on its first start (creating and chowning directories...): to cover \
                 that, record with --wait and `docker run` it while recording",
                if restarts == 1 { "" } else { "s" }
            );
        }
        Startup::Missed => {
            let how = if r.is_container {
                "run again with --restart (restarts it once right after attaching), or \
                 `docker restart` it while recording"
            } else {
                "restart what runs in it while recording"
            };
            let _ = writeln!(
                out,
                "  startup: NOT observed: it was already running, so calls made only while \
                 starting (bind, listen, ...) may be missing; {how}"
            );
        }
    }
    if !c.conditions.is_empty() {
        let rules: Vec<String> = c
            .conditions
            .iter()
            .map(|(n, cond)| format!("{n} ({})", describe(n, cond)))
            .collect();
        let _ = writeln!(
            out,
            "  argument rules, only the values seen: {} (--no-args allows any)",
            rules.join("; ")
        );
    }
    if c.clone3_to_clone {
        let _ = writeln!(
            out,
            "  clone3: answered ENOSYS, so libc falls back to clone, whose namespace flags the \
             profile can check (clone3 passes them in memory, out of seccomp's reach)"
        );
    }
    if !c.compat.is_empty() {
        let _ = writeln!(
            out,
            "  32-bit (compat) calls, named from the i386 table: {}",
            c.compat.iter().copied().collect::<Vec<_>>().join(", ")
        );
    }
    if !c.unnamed_compat.is_empty() {
        let nums: Vec<String> = c.unnamed_compat.iter().map(u32::to_string).collect();
        let _ = writeln!(
            out,
            "  WARNING: 32-bit (compat) syscall numbers this architecture has no table for: {} \
             (refused by the profile)",
            nums.join(", ")
        );
    }
    if !c.unnamed.is_empty() {
        let nums: Vec<String> = c.unnamed.iter().map(u32::to_string).collect();
        let _ = writeln!(
            out,
            "  WARNING: syscall numbers with no name in this architecture's table: {} \
             (a profile cannot allow them by name; they are refused)",
            nums.join(", ")
        );
    }
    out
}

/// `check`'s part for one target: what its current profile refused, and why (`host` and
/// `security` as in [`TargetReport`]), and who made each refused call first (`why`).
pub fn check_summary(
    label: &str,
    refused: &[&str],
    host: Host,
    security: Option<&ContainerSecurity>,
    why: Option<&WhyFile>,
) -> String {
    if refused.is_empty() {
        return format!("{label}: nothing refused\n");
    }
    let mut out = format!(
        "{label}: {} calls refused by its current profile:\n",
        refused.len()
    );
    for name in refused {
        let _ = writeln!(out, "    {name}: {}", refusal_hint(name, host, security));
    }
    first_sightings(&mut out, refused, why);
    out
}

pub fn counters_summary(c: &Counters) -> String {
    let mut out = format!(
        "traced {} syscalls; {} refusals; {} ring-buffer drops",
        c.syscalls, c.refusals, c.ring_drops
    );
    if c.ring_drops > 0 {
        out.push_str(" (live output only: profiles are read from the kernel's bitmaps, complete)");
    }
    if c.out_of_range > 0 {
        let _ = write!(
            out,
            "; WARNING: {} calls had numbers beyond the recordable range",
            c.out_of_range
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_format() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(3_723_004);
        assert_eq!(clock(t), "01:02:03.004");
    }

    #[test]
    fn summary_says_what_a_user_must_act_on() {
        let mut c = Composition::default();
        c.allowed.insert("read");
        c.allowed.insert("mbind");
        c.from_baseline.insert("capset");
        c.unnamed = vec![999];
        c.compat.insert("socketcall");
        c.clone3_to_clone = true;
        c.conditions.insert(
            "socket",
            [crate::profile::args::condition(1, 1)]
                .into_iter()
                .collect(),
        );
        let r = TargetReport {
            label: "db",
            composition: &c,
            refused: &["mbind"],
            include_refused: true,
            baseline_used: true,
            startup: Startup::Missed,
            is_container: true,
            output: Path::new("db.json"),
            why: None,
            host: host(),
            security: None,
        };
        let s = target_summary(&r);
        assert!(s.starts_with("db: 2 syscalls allowed -> db.json"));
        assert!(s.contains("--cap-add SYS_NICE"));
        assert!(s.contains("runtime baseline: added 1 calls"));
        assert!(s.contains("startup: NOT observed"));
        assert!(s.contains("--restart"));
        assert!(s.contains("999"));
        assert!(s.contains("argument rules, only the values seen: socket (AF_UNIX)"));
        assert!(s.contains("compat) calls, named from the i386 table: socketcall"));
        assert!(s.contains("clone3: answered ENOSYS"));
        assert!(!s.contains("first sightings"), "none without the side file");
    }

    #[test]
    fn summaries_say_which_program_made_each_notable_call_first() {
        use crate::profile::why::{CallKey, Sighting, Why};
        let mut why = Why::default();
        let mbind = CallKey {
            compat: false,
            nr: 237,
        };
        let s = Sighting {
            program: "numa-probe".into(),
            pid: 42,
            at_ns: 1_795_772_467_000_000_000,
            refused: true,
        };
        why.saw(mbind, s);
        let file = WhyFile::new(crate::syscalls::Arch::X86_64, &why);
        let mut c = Composition::default();
        for n in ["read", "mbind", "keyctl"] {
            c.allowed.insert(n);
        }
        let r = TargetReport {
            label: "db",
            composition: &c,
            refused: &["mbind"],
            include_refused: true,
            baseline_used: false,
            startup: Startup::Observed { restarts: 1 },
            is_container: true,
            output: Path::new("db.json"),
            why: Some(&file),
            host: host(),
            security: None,
        };
        let s = target_summary(&r);
        assert!(
            s.contains(
                "  first sightings (calls beyond Docker's default, refused calls):\n    keyctl: \
                 first sighting not recorded\n    mbind: first by numa-probe at 09:41:07 UTC \
                 (pid 42, refused)\n"
            ),
            "{s}"
        );
        assert!(!s.contains("read: first"), "{s}");
        let s = check_summary("db", &["mbind"], host(), None, Some(&file));
        assert!(
            s.contains("    mbind: first by numa-probe at 09:41:07 UTC"),
            "{s}"
        );
    }

    fn host() -> Host {
        Host {
            arch: crate::syscalls::Arch::X86_64,
            kernel: crate::privileges::KernelVersion { major: 6, minor: 8 },
        }
    }

    #[test]
    fn refusals_under_the_containers_own_profile_say_so() {
        let own = ContainerSecurity::from_host_config(
            &[r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}]}"#.into()],
            &[],
            &[],
            false,
        );
        let s = check_summary("web", &["getpid"], host(), Some(&own), None);
        assert!(
            s.contains("    getpid: the container's own profile (--security-opt seccomp) refuses it; Docker's default would allow it"),
            "{s}"
        );
        let s = check_summary("web", &["move_pages"], host(), None, None);
        assert!(
            s.contains(
                "    move_pages: Docker's default profile refuses it whatever the capabilities"
            ),
            "{s}"
        );
    }
}
