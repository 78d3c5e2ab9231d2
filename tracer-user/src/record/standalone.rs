//! The session of `record`, `run` and `check` on its own: [`Profiles`], its driver, rewrites
//! the profiles at checkpoints and takes no requests; [`record`] runs the whole session and
//! ends it with its profiles and summary.

use std::future::Future;

use super::{
    config::Mode,
    display,
    session::{Driver, Session},
    Config, RecordError, Summary,
};
use serde_json::json;

use crate::{
    bpf::Tracer,
    profile::moby::refusal_hint,
    report::{self, Startup, TargetReport},
};

/// The driver of `record`, `run` and `check`: no requests; checkpoints rewrite the profiles.
pub struct Profiles;

impl Driver for Profiles {
    type Request = ();
    async fn next_request(&mut self) -> Option<()> {
        std::future::pending().await
    }
    async fn on_request(&mut self, _: &mut Session, _: ()) {}
    fn checkpoint(&mut self, session: &Session) -> Result<(), RecordError> {
        session.write_profiles().map(|_| ())
    }
}

/// Runs a whole `record` or `check` session with a freshly loaded set of kernel programs,
/// until Ctrl-C, SIGTERM, a hang-up or `--duration`.
pub async fn record(cfg: Config) -> Result<Summary, RecordError> {
    let never = async {
        std::future::pending::<()>().await;
        true
    };
    let summary = record_until(cfg, None, never).await?;
    // Only a signal or the duration ends this session, and it writes.
    summary.ok_or_else(|| RecordError::Refused("the session ended without a summary".into()))
}

/// Like [`record`]; also tells `ready` once every target is traced, and stops when `stop`
/// completes (`run` starts its command only once it is watched, and stops when it exits).
/// When `stop` says false (the command never started), nothing is written and there is no
/// summary.
pub async fn record_until(
    cfg: Config,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
    stop: impl Future<Output = bool>,
) -> Result<Option<Summary>, RecordError> {
    let refusals = cfg.refusals;
    let (mut session, events) =
        Session::start(cfg, |layout| Ok(Tracer::load(layout, refusals)?)).await?;
    if let Some(ready) = ready {
        let _ = ready.send(());
    }
    let mut write = true;
    let stop = async {
        write = stop.await;
    };
    let ran = session.run(events, stop, &mut Profiles).await;
    let summary = match ran {
        Ok(()) if write => summary(&session).map(Some),
        Ok(()) => Ok(None),
        Err(e) => Err(e),
    };
    session.finish_observers().await;
    summary
}

/// Writes every profile (record, run) or reports refusals (check), and the summary.
pub fn summary(session: &Session) -> Result<Summary, RecordError> {
    let mut s = Summary {
        text: String::from("\n"),
        ..Default::default()
    };
    let mut targets = Vec::new();
    for i in 0..session.targets().len() {
        let t = session.targets().get(i);
        if !t.has_instance() {
            s.text.push_str(&format!(
                "{}: never seen running; no profile written\n",
                t.label()
            ));
            s.missing.push(t.label().to_string());
            targets.push(json!({ "name": t.label(), "ran": false }));
            continue;
        }
        if session.config().mode == Mode::Check {
            let refused = display::refused_names(session.arch(), &session.learned(i)?);
            let why = session.why_file(i, None);
            let host = session.targets().host();
            s.text.push_str(&report::check_summary(
                t.label(),
                &refused,
                host,
                t.security(),
                Some(&why),
            ));
            s.refusals += refused.len();
            let refused_json: Vec<serde_json::Value> = refused
                .iter()
                .map(|n| {
                    json!({
                        "name": n,
                        "fix": refusal_hint(n, host, t.security()),
                        "first_seen": why.first(n),
                    })
                })
                .collect();
            targets.push(json!({
                "name": t.label(),
                "ran": true,
                "profile": t.under().as_str(),
                "refused": refused_json,
            }));
            continue;
        }
        // One composition for both, so the file and the summary agree.
        let ((learned, c), written) = session.write_profile(i, true)?;
        let output = written.first().cloned().unwrap_or_default();
        let files = written.clone();
        s.written.extend(written);
        let refused = display::refused_names(session.arch(), &learned);
        let why = session.why_file(i, Some(&c));
        let startup = match (t.fresh(), t.restarts()) {
            (0, 0) => Startup::Missed,
            (0, restarts) => Startup::Restarted { restarts },
            (fresh, restarts) => Startup::Observed {
                restarts: fresh + restarts,
            },
        };
        targets.push(json!({
            "name": t.label(),
            "ran": true,
            "profile": output,
            "files": files,
            "syscalls": c.allowed.len(),
            "allowed": c.allowed,
            "argument_rules": c.conditions.keys().collect::<Vec<_>>(),
            "from_runtime_baseline": c.from_baseline,
            "refused": refused,
            "refused_included": c.refused_included,
            "startup": match startup {
                Startup::Observed { .. } => "observed",
                Startup::Restarted { .. } => "restarts only",
                Startup::Missed => "missed",
            },
            "instances_from_creation": t.fresh() + t.restarts(),
            "restarts": t.restarts(),
            "first_sightings": why.to_json(),
        }));
        s.text.push_str(&report::target_summary(&TargetReport {
            label: t.label(),
            composition: &c,
            refused: &refused,
            include_refused: session.config().include_refused,
            baseline_used: session.baseline_used(i),
            startup,
            is_container: t.is_container(),
            output: &output,
            why: Some(&why),
            host: session.targets().host(),
            security: t.security(),
        }));
    }
    let counters = session.counters()?;
    s.text.push_str(&report::counters_summary(&counters));
    s.text.push('\n');
    s.json = json!({
        "targets": targets,
        "kernel": {
            "syscalls": counters.syscalls,
            "refusals": counters.refusals,
            "ring_drops": counters.ring_drops,
            "out_of_range": counters.out_of_range,
        },
    });
    Ok(s)
}
