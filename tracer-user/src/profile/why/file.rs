//! Pure: the side file `<stem>.why.json` written next to a profile, and read by `explain`:
//! the first sighting of each call, by name, per architecture. Versioned; times are UTC.
//!
//! ```json
//! {"version": 1, "arch": "x86_64",
//!  "calls": {"mbind": {"program": "xtrabackup", "pid": 123,
//!                      "first_seen": "2026-11-27T09:41:07Z", "refused": true}},
//!  "compat_arch": "i386", "compat_calls": {"socketcall": {...}}}
//! ```

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use super::{Why, NOT_RECORDED};
use crate::{profile::formats::escape, syscalls::Arch};

/// The version written, and the only one read.
pub const WHY_VERSION: u32 = 1;

/// The largest side file read: a few hundred calls take tens of KiB.
pub const MAX_WHY_BYTES: u64 = 1 << 20;

/// The side file of each profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhyFile {
    pub version: u32,
    /// The native architecture (`x86_64`, `aarch64`), whose names `calls` uses.
    pub arch: String,
    pub calls: BTreeMap<String, FileEntry>,
    /// The 32-bit compat ABI (`i386`), whose names `compat_calls` uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compat_arch: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compat_calls: BTreeMap<String, FileEntry>,
    /// When the target was first traced (absent from files written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_since: Option<Timestamp>,
    /// When each instance traced from its creation (a restart, a re-creation) began.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Timestamp>,
    /// When this file was written: what it says holds up to then (a curve flat until then has
    /// converged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_until: Option<Timestamp>,
}

/// One call's first sighting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub program: String,
    pub pid: u32,
    pub first_seen: Timestamp,
    pub refused: bool,
}

#[derive(Debug, Error)]
pub enum WhyFileError {
    #[error("not a provenance file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("provenance file version {0}; this seccomp-tracer reads version {WHY_VERSION}")]
    Version(u32),
}

/// `web.json` (or `web.yaml`) -> `web.why.json`
pub fn why_path(profile: &Path) -> PathBuf {
    let stem = profile
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    profile.with_file_name(format!("{stem}.why.json"))
}

impl WhyFile {
    /// `why` by name: numbers `arch`'s tables do not name are left out (a profile cannot hold
    /// them either).
    pub fn new(arch: Arch, why: &Why) -> Self {
        let compat = arch.compat();
        let mut f = Self {
            version: WHY_VERSION,
            arch: crate::profile::formats::arch_name(arch).into(),
            compat_arch: compat.map(|c| crate::profile::formats::arch_name(c).into()),
            ..Default::default()
        };
        for (k, s) in why.iter() {
            let (table, calls) = if k.compat {
                (compat, &mut f.compat_calls)
            } else {
                (Some(arch), &mut f.calls)
            };
            if let Some(name) = table.and_then(|t| t.name(k.nr)) {
                calls.insert(
                    name.into(),
                    FileEntry {
                        program: s.program.clone(),
                        pid: s.pid,
                        first_seen: Timestamp(s.at_ns / 1_000_000_000),
                        refused: s.refused,
                    },
                );
            }
        }
        f
    }

    /// With the target's history, up to `until`: the learning curve's time axis.
    pub fn with_history(mut self, since: Option<u64>, instances: &[u64], until: u64) -> Self {
        self.recorded_since = since.map(Timestamp);
        self.instances = instances.iter().copied().map(Timestamp).collect();
        self.recorded_until = Some(Timestamp(until));
        self
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, WhyFileError> {
        // The version first, so a later version is told as such rather than as malformed.
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let v: Version = serde_json::from_slice(bytes)?;
        if v.version != WHY_VERSION {
            return Err(WhyFileError::Version(v.version));
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Whether `bytes` are a provenance file of any version: `{"version": N, "calls": {...}}`.
    /// Only such a file is ever replaced by a new one.
    pub fn is_one(bytes: &[u8]) -> bool {
        serde_json::from_slice::<serde_json::Value>(bytes).is_ok_and(|v| {
            v.get("version").is_some_and(serde_json::Value::is_u64)
                && v.get("calls").is_some_and(serde_json::Value::is_object)
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The earliest sighting of `name`, native or compat.
    pub fn first(&self, name: &str) -> Option<&FileEntry> {
        match (self.calls.get(name), self.compat_calls.get(name)) {
            (Some(a), Some(b)) if b.first_seen < a.first_seen => Some(b),
            (a, b) => a.or(b),
        }
    }

    /// `first by PROG at HH:MM:SS UTC (pid N)` for `name` (the date too with `with_date`), or
    /// that none was recorded. What came from the file is escaped.
    pub fn describe(&self, name: &str, with_date: bool) -> String {
        let Some(e) = self.first(name) else {
            return NOT_RECORDED.into();
        };
        let at = if with_date {
            e.first_seen.date_time()
        } else {
            e.first_seen.time()
        };
        format!(
            "first by {} at {at} UTC (pid {}{})",
            escape(&e.program),
            e.pid,
            if e.refused { ", refused" } else { "" }
        )
    }
}

/// Seconds since the Unix epoch, written as RFC 3339 UTC (`2026-11-27T09:41:07Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub u64);

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) -> days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

impl Timestamp {
    /// `HH:MM:SS`
    pub fn time(self) -> String {
        let s = self.0 % 86_400;
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }

    /// `YYYY-MM-DD HH:MM:SS`
    pub fn date_time(self) -> String {
        let (y, m, d) = civil_from_days((self.0 / 86_400) as i64);
        format!("{y:04}-{m:02}-{d:02} {}", self.time())
    }

    /// From `YYYY-MM-DDTHH:MM:SSZ` exactly, as written.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let shape = b.len() == 20
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'Z';
        if !shape {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if y < 1970
            || !(1..=12).contains(&mo)
            || !(1..=31).contains(&d)
            || h > 23
            || mi > 59
            || sec > 59
        {
            return None;
        }
        let days = days_from_civil(i64::from(y), mo, d);
        let t = Self(days as u64 * 86_400 + u64::from(h * 3600 + mi * 60 + sec));
        // February 30th and the like come back as another day.
        (t.to_string() == s).then_some(t)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days((self.0 / 86_400) as i64);
        write!(f, "{y:04}-{m:02}-{d:02}T{}Z", self.time())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("{s:?} is not a time as YYYY-MM-DDTHH:MM:SSZ"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CallKey, Sighting};
    use super::*;

    fn sighting(program: &str, secs: u64, refused: bool) -> Sighting {
        Sighting {
            program: program.into(),
            pid: 4242,
            at_ns: secs * 1_000_000_000 + 999_999_999,
            refused,
        }
    }

    /// 2026-11-27T09:41:07Z
    const T: u64 = 1_795_772_467;

    #[test]
    fn times_are_rfc3339_utc_both_ways() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(T).to_string(), "2026-11-27T09:41:07Z");
        assert_eq!(Timestamp(T).time(), "09:41:07");
        assert_eq!(Timestamp(T).date_time(), "2026-11-27 09:41:07");
        // 2024-02-29, a leap day.
        assert_eq!(Timestamp(1_709_164_800).to_string(), "2024-02-29T00:00:00Z");
        for t in [0, 1, T, 1_709_164_800, 4_102_444_799, 253_402_300_799] {
            let s = Timestamp(t).to_string();
            assert_eq!(Timestamp::parse(&s), Some(Timestamp(t)), "{s}");
        }
        for bad in [
            "2026-11-27 09:41:07Z",
            "2026-11-27T09:41:07",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-11-27T24:00:00Z",
            "+026-11-27T09:41:07Z",
            "2026-11-27T09:41:07.5Z",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_side_file_names_calls_per_architecture_and_round_trips() {
        let mut why = Why::default();
        why.saw(
            CallKey {
                compat: false,
                nr: 237,
            },
            sighting("xtrabackup", T, true),
        );
        why.saw(
            CallKey {
                compat: true,
                nr: 102,
            },
            sighting("old32", T + 5, false),
        );
        // No name in the table: left out.
        why.saw(
            CallKey {
                compat: false,
                nr: 999,
            },
            sighting("x", T, false),
        );
        let f = WhyFile::new(Arch::X86_64, &why);
        let json = f.to_json();
        assert_eq!(
            json,
            serde_json::json!({
                "version": 1,
                "arch": "x86_64",
                "calls": {"mbind": {"program": "xtrabackup", "pid": 4242,
                                    "first_seen": "2026-11-27T09:41:07Z", "refused": true}},
                "compat_arch": "i386",
                "compat_calls": {"socketcall": {"program": "old32", "pid": 4242,
                                                "first_seen": "2026-11-27T09:41:12Z",
                                                "refused": false}},
            })
        );
        let bytes = serde_json::to_vec_pretty(&json).unwrap();
        assert_eq!(WhyFile::parse(&bytes).unwrap(), f);
        assert_eq!(
            f.describe("mbind", false),
            "first by xtrabackup at 09:41:07 UTC (pid 4242, refused)"
        );
        assert_eq!(
            f.describe("socketcall", true),
            "first by old32 at 2026-11-27 09:41:12 UTC (pid 4242)"
        );
        assert_eq!(f.describe("keyctl", false), NOT_RECORDED);
        // aarch64 has no compat table here.
        assert_eq!(WhyFile::new(Arch::Aarch64, &why).compat_arch, None);
    }

    #[test]
    fn the_earliest_of_native_and_compat_is_shown() {
        let mut why = Why::default();
        why.saw(
            CallKey {
                compat: false,
                nr: 0,
            },
            sighting("native", T + 9, false),
        );
        why.saw(
            CallKey {
                compat: true,
                nr: 3,
            },
            sighting("i386", T, false),
        );
        let f = WhyFile::new(Arch::X86_64, &why);
        assert_eq!(f.first("read").unwrap().program, "i386");
    }

    #[test]
    fn malformed_or_other_versions_are_errors() {
        assert!(matches!(
            WhyFile::parse(br#"{"version": 2, "calls": 5}"#),
            Err(WhyFileError::Version(2))
        ));
        assert!(WhyFile::parse(b"[]").is_err());
        assert!(
            WhyFile::parse(br#"{"version": 1, "arch": "x86_64", "calls": {"read": {}}}"#).is_err()
        );
        let bad_time = br#"{"version": 1, "arch": "x86_64", "calls": {"read": {"program": "a",
            "pid": 1, "first_seen": "yesterday", "refused": false}}}"#;
        let e = WhyFile::parse(bad_time).unwrap_err().to_string();
        assert!(e.contains("YYYY-MM-DDTHH:MM:SSZ"), "{e}");
        // What came from a file is escaped when shown.
        let evil = br#"{"version": 1, "arch": "x86_64", "calls": {"read": {"program": "\u001b[2J",
            "pid": 1, "first_seen": "2026-11-27T09:41:07Z", "refused": false}}}"#;
        let f = WhyFile::parse(evil).unwrap();
        assert!(!f.describe("read", false).contains('\u{1b}'));
    }

    #[test]
    fn only_provenance_files_are_ours_to_replace() {
        let f = WhyFile::new(Arch::X86_64, &Why::default());
        assert!(WhyFile::is_one(&serde_json::to_vec(&f.to_json()).unwrap()));
        assert!(WhyFile::is_one(br#"{"version": 2, "calls": {}}"#));
        assert!(!WhyFile::is_one(b"my notes"));
        assert!(!WhyFile::is_one(br#"{"defaultAction": "SCMP_ACT_ERRNO"}"#));
        assert!(!WhyFile::is_one(br#"{"version": "1", "calls": {}}"#));
    }

    #[test]
    fn the_side_file_sits_next_to_the_profile() {
        assert_eq!(
            why_path(Path::new("/p/web.json")),
            Path::new("/p/web.why.json")
        );
        assert_eq!(why_path(Path::new("web.yaml")), Path::new("web.why.json"));
    }
}
