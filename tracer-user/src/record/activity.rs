//! Pure: what happens in a session as records (a first sighting, a refusal, a new instance, a
//! checkpoint), from which the `--events` JSON lines and the `--alert-command` environment are
//! made. Everything in them that came from a container (a program's name) is data: it goes
//! into JSON strings and environment values, never into a command line.

use serde_json::{json, Value};

use crate::profile::why::Timestamp;

/// What a target's refused call ran under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Under {
    /// Its own profile (`--security-opt seccomp=FILE`, a Localhost profile): the one being
    /// guarded.
    OwnProfile,
    /// The engine's default profile.
    Default,
    /// No filter of the engine's (unconfined, privileged): a filter of the program's own.
    Unconfined,
    /// Not known (a cgroup target, an engine that does not say).
    Unknown,
}

impl Under {
    pub fn as_str(self) -> &'static str {
        match self {
            Under::OwnProfile => "own-profile",
            Under::Default => "default",
            Under::Unconfined => "unconfined",
            Under::Unknown => "unknown",
        }
    }
}

/// Which target, which call and who made it first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub target: String,
    pub container_id: Option<String>,
    /// The call's name in its ABI's table, or `#NR`.
    pub name: String,
    /// `x86_64`, `i386`, `aarch64`...
    pub abi: &'static str,
    pub program: String,
    pub pid: u32,
    /// Wall-clock time, nanoseconds since the epoch.
    pub at_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Activity {
    /// A call the target had not made before, allowed.
    FirstSighting(Call),
    /// A call the filter in force refused, the first time for this target; `fix` is what to do.
    Refusal {
        call: Call,
        under: Under,
        fix: String,
    },
    /// A new instance (cgroup) traced from its creation: a restart when the container was seen
    /// running before.
    Instance {
        target: String,
        container_id: Option<String>,
        cgroup: u64,
        restart: bool,
        at_ns: u64,
    },
    /// The session saved what it learned (`ok`), or tried to.
    Checkpoint {
        targets: usize,
        ok: bool,
        at_ns: u64,
    },
}

/// `2026-11-27T09:41:07Z`
fn time(at_ns: u64) -> String {
    Timestamp(at_ns / 1_000_000_000).to_string()
}

impl Call {
    fn fields(&self, kind: &str) -> Value {
        json!({
            "event": kind,
            "time": time(self.at_ns),
            "time_ns": self.at_ns,
            "container": self.target,
            "container_id": self.container_id,
            "syscall": self.name,
            "abi": self.abi,
            "program": self.program,
            "pid": self.pid,
        })
    }
}

impl Activity {
    /// The `event` field of its JSON line.
    pub fn kind(&self) -> &'static str {
        match self {
            Activity::FirstSighting(_) => "first_sighting",
            Activity::Refusal { .. } => "refusal",
            Activity::Instance { restart: true, .. } => "restart",
            Activity::Instance { restart: false, .. } => "start",
            Activity::Checkpoint { .. } => "checkpoint",
        }
    }

    /// One JSON object, for `--events`.
    pub fn to_json(&self) -> Value {
        let kind = self.kind();
        match self {
            Activity::FirstSighting(c) => c.fields(kind),
            Activity::Refusal { call, under, fix } => {
                let mut v = call.fields(kind);
                v["profile"] = json!(under.as_str());
                v["fix"] = json!(fix);
                v
            }
            Activity::Instance {
                target,
                container_id,
                cgroup,
                at_ns,
                ..
            } => json!({
                "event": kind,
                "time": time(*at_ns),
                "time_ns": at_ns,
                "container": target,
                "container_id": container_id,
                "cgroup": cgroup,
            }),
            Activity::Checkpoint { targets, ok, at_ns } => json!({
                "event": kind,
                "time": time(*at_ns),
                "time_ns": at_ns,
                "targets": targets,
                "ok": ok,
            }),
        }
    }

    /// The environment of `--alert-command` for a refusal (`None` for anything else).
    pub fn alert_env(&self) -> Option<Vec<(&'static str, String)>> {
        let Activity::Refusal { call, under, fix } = self else {
            return None;
        };
        Some(vec![
            ("SECCOMP_TRACER_CONTAINER", call.target.clone()),
            (
                "SECCOMP_TRACER_CONTAINER_ID",
                call.container_id.clone().unwrap_or_default(),
            ),
            ("SECCOMP_TRACER_SYSCALL", call.name.clone()),
            ("SECCOMP_TRACER_ABI", call.abi.into()),
            ("SECCOMP_TRACER_PROGRAM", call.program.clone()),
            ("SECCOMP_TRACER_PID", call.pid.to_string()),
            ("SECCOMP_TRACER_TIME", time(call.at_ns)),
            ("SECCOMP_TRACER_PROFILE", under.as_str().into()),
            ("SECCOMP_TRACER_FIX", fix.clone()),
            ("SECCOMP_TRACER_EVENT", self.to_json().to_string()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Call {
        Call {
            target: "web".into(),
            container_id: Some("abc".into()),
            name: "mbind".into(),
            abi: "x86_64",
            program: "numa\"probe\\x00".into(),
            pid: 42,
            at_ns: 1_764_236_467_123_456_789,
        }
    }

    #[test]
    fn a_refusal_is_one_json_object_with_its_details() {
        let a = Activity::Refusal {
            call: call(),
            under: Under::OwnProfile,
            fix: "seccomp-tracer export web --heal -o web.healed.json".into(),
        };
        let line = a.to_json().to_string();
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "refusal");
        assert_eq!(v["syscall"], "mbind");
        assert_eq!(v["program"], "numa\"probe\\x00", "hostile names stay data");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["profile"], "own-profile");
        assert_eq!(v["time"], "2025-11-27T09:41:07Z");
        assert_eq!(v["time_ns"], 1_764_236_467_123_456_789u64);
        let env = a.alert_env().unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("SECCOMP_TRACER_SYSCALL"), Some("mbind"));
        assert_eq!(get("SECCOMP_TRACER_PROGRAM"), Some("numa\"probe\\x00"));
        assert_eq!(get("SECCOMP_TRACER_EVENT"), Some(line.as_str()));
    }

    #[test]
    fn other_activity_has_no_alert_and_its_own_kind() {
        let seen = Activity::FirstSighting(call());
        assert!(seen.alert_env().is_none());
        assert_eq!(seen.to_json()["event"], "first_sighting");
        let restart = Activity::Instance {
            target: "web".into(),
            container_id: None,
            cgroup: 7,
            restart: true,
            at_ns: 0,
        };
        assert_eq!(restart.to_json()["event"], "restart");
        assert_eq!(restart.to_json()["cgroup"], 7);
        let cp = Activity::Checkpoint {
            targets: 2,
            ok: true,
            at_ns: 0,
        };
        assert_eq!(cp.to_json()["event"], "checkpoint");
    }
}
