//! Pure: why a call is in a profile, its provenance: which program made it first in a target,
//! and when. Learned only from the kernel's first-sighting events, so it is best-effort: a call
//! in the learned set whose event was dropped, came before the tracer attached, or was restored
//! from state that did not have it, has no sighting, and is shown as such, never invented.
//! Nothing here does I/O.

mod file;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    moby::{covered, Context, Host, MobyProfile},
    Composition,
};
pub use file::{why_path, FileEntry, Timestamp, WhyFile, WhyFileError, MAX_WHY_BYTES, WHY_VERSION};

/// What is shown for a call with no sighting.
pub const NOT_RECORDED: &str = "first sighting not recorded";

/// A call of one ABI: the native one, or the 32-bit compat one (numbered in its own table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallKey {
    pub compat: bool,
    pub nr: u32,
}

/// The first time a target made a call, as the kernel's event told it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    /// The program's name (its `comm`), made printable by [`program_name`].
    pub program: String,
    /// Its process id, as the host numbers it.
    pub pid: u32,
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub at_ns: u64,
    /// The call was refused by the filter in force (rather than made and allowed).
    pub refused: bool,
}

/// The first sighting of each call of one target. Earliest wins, whichever instance or saved
/// state it comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Entry>", into = "Vec<Entry>")]
pub struct Why(BTreeMap<CallKey, Sighting>);

/// One call as the daemon's state file keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    #[serde(default)]
    compat: bool,
    nr: u32,
    #[serde(flatten)]
    sighting: Sighting,
}

impl From<Vec<Entry>> for Why {
    fn from(entries: Vec<Entry>) -> Self {
        let mut why = Why::default();
        for e in entries {
            why.saw(
                CallKey {
                    compat: e.compat,
                    nr: e.nr,
                },
                e.sighting,
            );
        }
        why
    }
}

impl From<Why> for Vec<Entry> {
    fn from(why: Why) -> Self {
        why.0
            .into_iter()
            .map(|(k, sighting)| Entry {
                compat: k.compat,
                nr: k.nr,
                sighting,
            })
            .collect()
    }
}

impl Why {
    /// Records `s` for `call` unless an earlier (or as early) sighting is known; true if kept.
    pub fn saw(&mut self, call: CallKey, s: Sighting) -> bool {
        match self.0.get(&call) {
            Some(known) if known.at_ns <= s.at_ns => false,
            _ => {
                self.0.insert(call, s);
                true
            }
        }
    }

    /// Takes in `other`'s sightings, the earliest of each call winning.
    pub fn merge(&mut self, other: &Why) {
        for (k, s) in &other.0 {
            self.saw(*k, s.clone());
        }
    }

    pub fn get(&self, call: CallKey) -> Option<&Sighting> {
        self.0.get(&call)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (CallKey, &Sighting)> {
        self.0.iter().map(|(k, s)| (*k, s))
    }
}

/// A task's `comm` (NUL padded) as printable text: it is whatever the program chose
/// (`prctl(PR_SET_NAME)`), so bytes other than printable ASCII, and the backslash, are written
/// `\xNN`. An empty name is `?`.
pub fn program_name(comm: &[u8]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    let name = &comm[..end];
    if name.is_empty() {
        return "?".into();
    }
    let mut out = String::with_capacity(name.len());
    for &b in name {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// CLOCK_REALTIME less CLOCK_MONOTONIC, taken once when a session starts: turns the kernel's
/// monotonic event times into wall-clock ones. (A clock set later is not followed: sightings
/// keep the offset the session started with.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockOffset(i128);

impl ClockOffset {
    /// From both clocks read at (about) the same moment, in nanoseconds.
    pub fn new(realtime_ns: u64, monotonic_ns: u64) -> Self {
        Self(realtime_ns as i128 - monotonic_ns as i128)
    }

    /// The wall-clock time (ns since the epoch) of monotonic time `mono_ns`.
    pub fn wall_ns(self, mono_ns: u64) -> u64 {
        (mono_ns as i128 + self.0).clamp(0, u64::MAX as i128) as u64
    }
}

/// The calls a user decides on, in the summary: each allowed call Docker's default profile
/// (default capabilities, on `host`) does not allow as the profile uses it, then each refused
/// one not listed already.
pub fn notable(c: &Composition, refused: &[&'static str], host: Host) -> Vec<&'static str> {
    // The embedded profile parses (a unit test says so); if it ever did not, every call is
    // worth a line.
    let default = MobyProfile::docker_default().ok();
    let ctx = Context::docker_default(host);
    let mut out: Vec<&'static str> = c
        .allowed
        .iter()
        .copied()
        .filter(|n| default.is_none_or(|d| !covered(&d.outcome(n, &ctx), c.conditions.get(n))))
        .collect();
    for r in refused {
        if !out.contains(r) {
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(program: &str, at_ns: u64, refused: bool) -> Sighting {
        Sighting {
            program: program.into(),
            pid: 7,
            at_ns,
            refused,
        }
    }

    const MBIND: CallKey = CallKey {
        compat: false,
        nr: 237,
    };

    #[test]
    fn the_earliest_sighting_wins_in_any_order() {
        let mut a = Why::default();
        assert!(a.saw(MBIND, s("late", 20, false)));
        assert!(a.saw(MBIND, s("early", 10, true)));
        assert!(!a.saw(MBIND, s("later", 30, false)));
        assert!(
            !a.saw(MBIND, s("tie", 10, false)),
            "a tie keeps what is known"
        );
        assert_eq!(a.get(MBIND), Some(&s("early", 10, true)));

        // Folding instances or restoring state: merge either way gives the same.
        let mut b = Why::default();
        b.saw(MBIND, s("other", 5, false));
        let compat_read = CallKey {
            compat: true,
            nr: 3,
        };
        b.saw(compat_read, s("i386", 40, false));
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.get(MBIND).unwrap().program, "other");
        assert_eq!(ab.len(), 2);
        // Native and compat calls of the same number stay apart.
        assert_eq!(
            ab.get(CallKey {
                compat: false,
                nr: 3
            }),
            None
        );
    }

    #[test]
    fn comm_is_made_printable() {
        let mut comm = [0u8; 16];
        comm[..10].copy_from_slice(b"numa-probe");
        assert_eq!(program_name(&comm), "numa-probe");
        assert_eq!(
            program_name(b"\x1b[2Jevil\\x\x07\xc3\xa9\0junk"),
            "\\x1b[2Jevil\\x5cx\\x07\\xc3\\xa9"
        );
        assert_eq!(program_name(&[0; 16]), "?");
        // No NUL at all: all 16 bytes.
        assert_eq!(program_name(b"0123456789abcdef"), "0123456789abcdef");
    }

    #[test]
    fn monotonic_times_become_wall_clock_times() {
        let off = ClockOffset::new(1_800_000_000_000_000_000, 5_000_000_000);
        assert_eq!(off.wall_ns(6_000_000_000), 1_800_000_001_000_000_000);
        assert_eq!(
            ClockOffset::new(0, 10).wall_ns(5),
            0,
            "never before the epoch"
        );
    }

    #[test]
    fn state_without_provenance_and_with_it_round_trip() {
        let mut w = Why::default();
        w.saw(MBIND, s("numa-probe", 1, true));
        w.saw(
            CallKey {
                compat: true,
                nr: 102,
            },
            s("sh", 2, false),
        );
        let json = serde_json::to_string(&w).unwrap();
        assert!(json.contains(r#""nr":237"#) && json.contains(r#""program":"numa-probe""#));
        assert_eq!(serde_json::from_str::<Why>(&json).unwrap(), w);
        assert_eq!(serde_json::from_str::<Why>("[]").unwrap(), Why::default());
    }

    #[test]
    fn the_summary_lists_calls_beyond_dockers_default_and_refused_ones() {
        let mut c = Composition::default();
        for n in ["read", "mbind", "keyctl", "clone"] {
            c.allowed.insert(n);
        }
        // clone with no namespace flag is within Docker's default.
        c.conditions.insert(
            "clone",
            [super::super::args::condition(
                tracer_common::arg_call::CLONE,
                0,
            )]
            .into_iter()
            .collect(),
        );
        assert_eq!(
            notable(
                &c,
                &["mbind", "clone3"],
                Host {
                    arch: crate::syscalls::Arch::X86_64,
                    kernel: crate::privileges::KernelVersion { major: 6, minor: 1 }
                }
            ),
            ["keyctl", "mbind", "clone3"]
        );
    }
}
