//! Pure: the daemon's control protocol, one JSON object per line each way over its Unix
//! socket, and how status is shown to a person.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::profile::formats::Format;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Start recording these containers (names, ids, or name patterns such as `web-*`) and
    /// those carrying every label in `labels` (`key=value` or `key`); patterns and labels also
    /// take in containers created later, from their creation.
    Add {
        containers: Vec<String>,
        #[serde(default)]
        labels: Vec<String>,
        /// The engine the client means; `None`: the daemon's.
        #[serde(default)]
        engine: Option<crate::target::engine::EngineKind>,
    },
    Remove {
        containers: Vec<String>,
    },
    Status,
    /// The profile of one target as it stands; recording goes on.
    Export {
        container: String,
        format: Format,
        /// Instead: the profile the container runs under plus the calls it refused.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        heal: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Response {
    Ok {
        message: String,
    },
    Status(Status),
    Profile {
        doc: serde_json::Value,
        /// With the Kubernetes format: the plain JSON for kubelet's `seccomp/` directory.
        kubelet: Option<serde_json::Value>,
        summary: String,
        /// The first sightings (`profile::why::WhyFile`), written next to the profile.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<serde_json::Value>,
        /// With `heal`: what the healed profile allows that the one in force does not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        diff: Option<String>,
    },
    Error {
        message: String,
    },
}

/// Everything `status` shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub targets: Vec<TargetStatus>,
    /// Kernel counters since the programs were attached.
    pub syscalls: u64,
    pub ring_drops: u64,
    pub refusals: u64,
    /// Cgroups the kernel's map had no room for (their calls are not recorded).
    #[serde(default)]
    pub map_full: u64,
    /// Cgroups in the kernel's map now (instances, provisional adoptions, folded ones not yet
    /// checkpointed): flat over time when dead instances are retired.
    #[serde(default)]
    pub traced_cgroups: usize,
    /// Seconds since the Unix epoch, when this status was taken.
    pub now: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub name: String,
    pub container_id: Option<String>,
    /// Whether an instance is traced now.
    pub running: bool,
    /// Distinct syscalls learned so far (as the profile would allow them).
    pub syscalls: usize,
    pub refused: Vec<String>,
    pub last_new: Option<String>,
    /// Seconds since the epoch of `last_new`.
    pub last_new_at: Option<u64>,
    pub restarts: u32,
    /// First sightings reported by the kernel for this target.
    pub events: u64,
    /// New calls per `interval_secs`, oldest first, the last interval ending now: the learning
    /// curve's slope (see [`curve`]).
    #[serde(default)]
    pub new_calls: Vec<u32>,
    #[serde(default)]
    pub interval_secs: u64,
}

/// Intervals in the sparkline.
pub const SPARK_INTERVALS: usize = 12;

/// Interval lengths a sparkline takes, in seconds: the shortest that covers the recording.
const NICE: [u64; 17] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21_600, 43_200, 86_400,
];

/// New calls per interval from `since` to `now` (seconds since the epoch), from the times of
/// first sightings (`firsts`): [`SPARK_INTERVALS`] intervals of a round length, the last
/// ending at `now`. Sightings before the first interval count in it.
pub fn curve(firsts: impl IntoIterator<Item = u64>, since: u64, now: u64) -> (u64, Vec<u32>) {
    let n = SPARK_INTERVALS as u64;
    let span = now.saturating_sub(since).max(1);
    let interval = NICE
        .iter()
        .copied()
        .find(|i| i * n >= span)
        .unwrap_or_else(|| span.div_ceil(n).div_ceil(86_400) * 86_400);
    let mut counts = vec![0u32; SPARK_INTERVALS];
    for t in firsts {
        let back = now.saturating_sub(t) / interval;
        let k = (n - 1).saturating_sub(back) as usize;
        counts[k] = counts[k].saturating_add(1);
    }
    (interval, counts)
}

/// `counts` as one line of block characters (`·` for none), scaled to the largest.
pub fn sparkline(counts: &[u32]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = counts.iter().copied().max().unwrap_or(0);
    counts
        .iter()
        .map(|&c| match c {
            0 => '·',
            c => {
                let level = (u64::from(c) * 8).div_ceil(u64::from(max)).clamp(1, 8);
                BARS[level as usize - 1]
            }
        })
        .collect()
}

/// `5m`, `1h`, `30s`: an interval's length.
fn unit(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn ago(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    }
}

/// The table `status` prints. "since new" is the time since the last new syscall: when it
/// keeps growing under the usual load, learning has converged.
pub fn render_status(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:>8} {:<20} {:>9} {:>8} {:>8}  {:<18}  REFUSED",
        "CONTAINER", "SYSCALLS", "LAST NEW", "SINCE NEW", "RESTARTS", "EVENTS", "NEW CALLS"
    );
    for t in &s.targets {
        let name = if t.running {
            t.name.clone()
        } else {
            format!("{} (not running)", t.name)
        };
        let since = t
            .last_new_at
            .map(|at| ago(s.now.saturating_sub(at)))
            .unwrap_or_else(|| "-".into());
        let refused = if t.refused.is_empty() {
            "-".to_string()
        } else {
            t.refused.join(",")
        };
        let spark = if t.new_calls.is_empty() || t.interval_secs == 0 {
            "-".to_string()
        } else {
            format!("{} /{}", sparkline(&t.new_calls), unit(t.interval_secs))
        };
        let _ = writeln!(
            out,
            "{name:<24} {:>8} {:<20} {since:>9} {:>8} {:>8}  {spark:<18}  {refused}",
            t.syscalls,
            t.last_new.as_deref().unwrap_or("-"),
            t.restarts,
            t.events
        );
    }
    if s.targets.is_empty() {
        out.push_str("(no containers: add some with `seccomp-tracer add NAME`)\n");
    }
    let _ = writeln!(
        out,
        "kernel: {} syscalls traced, {} refusals, {} ring-buffer drops (the maps lose nothing)",
        s.syscalls, s.refusals, s.ring_drops
    );
    if s.map_full > 0 {
        let _ = writeln!(
            out,
            "WARNING: {} cgroups could not be traced: the kernel's map is full",
            s.map_full
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_line() {
        let r = Request::Export {
            container: "web".into(),
            format: Format::Oci,
            heal: false,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, r#"{"op":"export","container":"web","format":"oci"}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        let s: Request = serde_json::from_str(r#"{"op":"status"}"#).unwrap();
        assert_eq!(s, Request::Status);
        assert!(serde_json::from_str::<Request>(r#"{"op":"reboot"}"#).is_err());
    }

    #[test]
    fn the_curve_counts_first_sightings_per_round_interval_ending_now() {
        // 10 minutes of recording: intervals of one minute (12 cover it).
        let since = 1_000_000;
        let now = since + 600;
        let firsts = [since, since + 1, since + 2, since + 59, now - 30, now];
        let (interval, counts) = curve(firsts, since, now);
        assert_eq!(interval, 60);
        assert_eq!(counts.len(), SPARK_INTERVALS);
        assert_eq!(counts.iter().sum::<u32>(), 6, "{counts:?}");
        assert_eq!(counts[SPARK_INTERVALS - 1], 2, "{counts:?}");
        assert_eq!(counts[1] + counts[2], 4, "the start: {counts:?}");
        // Nothing recorded yet, a sighting before `since`, a recording of 40 days.
        assert_eq!(curve([], now, now), (1, vec![0; SPARK_INTERVALS]));
        assert_eq!(curve([0], since, now).1[0], 1);
        let (long, _) = curve([], 0, 40 * 86_400);
        assert_eq!(long, 4 * 86_400);
        assert_eq!(unit(long), "4d");
        assert_eq!(unit(300), "5m");
        assert_eq!(unit(15), "15s");
    }

    #[test]
    fn the_sparkline_scales_to_the_largest_and_shows_none_apart() {
        assert_eq!(sparkline(&[0, 1, 8, 4, 0]), "·▁█▄·");
        assert_eq!(sparkline(&[1, 100]), "▁█");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn status_table() {
        let s = Status {
            targets: vec![TargetStatus {
                name: "web".into(),
                running: true,
                syscalls: 61,
                last_new: Some("sendfile".into()),
                last_new_at: Some(1000),
                refused: vec!["mbind".into()],
                restarts: 2,
                events: 63,
                new_calls: vec![40, 20, 3, 0],
                interval_secs: 300,
                ..Default::default()
            }],
            now: 1000 + 300,
            ..Default::default()
        };
        let t = render_status(&s);
        assert!(t.contains("web"), "{t}");
        assert!(t.contains("sendfile"), "{t}");
        assert!(t.contains(" 5m "), "{t}");
        assert!(t.contains("█▄▁· /5m"), "{t}");
        assert!(t.contains("mbind"), "{t}");
        assert!(render_status(&Status::default()).contains("no containers"));
        assert!(!t.contains("map is full"));
        let full = Status {
            map_full: 3,
            ..Default::default()
        };
        assert!(render_status(&full).contains("3 cgroups could not be traced"));
    }
}
