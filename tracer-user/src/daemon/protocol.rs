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
        "{:<24} {:>8} {:<20} {:>9} {:>8} {:>8}  REFUSED",
        "CONTAINER", "SYSCALLS", "LAST NEW", "SINCE NEW", "RESTARTS", "EVENTS"
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
        let _ = writeln!(
            out,
            "{name:<24} {:>8} {:<20} {since:>9} {:>8} {:>8}  {refused}",
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
                ..Default::default()
            }],
            now: 1000 + 300,
            ..Default::default()
        };
        let t = render_status(&s);
        assert!(t.contains("web"), "{t}");
        assert!(t.contains("sendfile"), "{t}");
        assert!(t.contains(" 5m "), "{t}");
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
