//! The daemon's driver of its session: answers `add`, `remove`, `status` and `export`
//! through the session's public methods, and checkpoints into the state file.

use std::{path::PathBuf, time::SystemTime};

use tokio::sync::{mpsc, oneshot};

use super::{
    protocol::{curve, Request, Response, Status, TargetStatus},
    state::State,
};
use crate::{
    profile::formats::Format,
    record::{
        display::{self, refused_names},
        targets::epoch_secs,
        Driver, RecordError, Session,
    },
    target::{
        selector::{is_pattern, Selector},
        TargetSpec,
    },
};

/// Requests from the control socket, and the state file checkpoints go to.
pub struct Control {
    pub requests: mpsc::Receiver<(Request, oneshot::Sender<Response>)>,
    pub state_file: PathBuf,
}

impl Driver for Control {
    type Request = (Request, oneshot::Sender<Response>);

    async fn next_request(&mut self) -> Option<Self::Request> {
        match self.requests.recv().await {
            Some(r) => Some(r),
            // The socket is gone: keep recording until a signal.
            None => std::future::pending().await,
        }
    }

    async fn on_request(&mut self, session: &mut Session, (req, reply): Self::Request) {
        let resp = self.answer(session, req).await;
        let _ = reply.send(resp);
    }

    fn checkpoint(&mut self, session: &Session) -> Result<(), RecordError> {
        State::new(session.snapshot()?, session.targets().selectors().to_vec())
            .save(&self.state_file)
    }
}

/// Keeps the syscall programs attached while the daemon records anything, and says so.
pub fn sync_hooks(session: &mut Session, busy: bool) -> Result<(), RecordError> {
    match session.sync_hooks(busy)? {
        Some(true) => display::say("syscall programs attached"),
        Some(false) => display::say(
            "nothing to record: syscall programs detached (the host's syscalls pay nothing)",
        ),
        None => {}
    }
    Ok(())
}

impl Control {
    async fn answer(&mut self, session: &mut Session, req: Request) -> Response {
        let changes = matches!(req, Request::Add { .. } | Request::Remove { .. });
        let mut result = match req {
            // Attached before anything is watched, so that a container created from now on is
            // traced from its first syscall.
            Request::Add {
                containers,
                labels,
                engine,
            } => match same_engine(session, engine).and_then(|()| sync_hooks(session, true)) {
                Ok(()) => self.add(session, &containers, &labels).await,
                Err(e) => Err(e),
            },
            Request::Remove { containers } => self.remove(session, &containers),
            Request::Status => status(session).map(Response::Status),
            Request::Export {
                container,
                format,
                heal: false,
            } => export(session, &container, format),
            Request::Export {
                container,
                heal: true,
                ..
            } => heal(session, &container),
        };
        if changes {
            if let Err(e) = sync_hooks(session, false) {
                result = Err(e);
            }
        }
        result.unwrap_or_else(|e| Response::Error {
            message: e.to_string(),
        })
    }

    async fn add(
        &mut self,
        session: &mut Session,
        args: &[String],
        labels: &[String],
    ) -> Result<Response, RecordError> {
        for a in args {
            crate::target::check_container_ref(a, true).map_err(RecordError::Refused)?;
        }
        let mut lines = Vec::new();
        let (patterns, mut names): (Vec<String>, Vec<String>) =
            args.iter().cloned().partition(|a| is_pattern(a));
        let mut new: Vec<Selector> = patterns
            .into_iter()
            .map(|p| Selector {
                pattern: Some(p),
                labels: labels.to_vec(),
            })
            .collect();
        if new.is_empty() && !labels.is_empty() {
            new.push(Selector {
                pattern: None,
                labels: labels.to_vec(),
            });
        }
        if !new.is_empty() {
            let existing = match session.engine() {
                Some(e) => e.client.list_all().await?,
                None => Vec::new(),
            };
            for s in &new {
                let matching: Vec<String> = existing
                    .iter()
                    .filter(|(_, name, l)| s.matches(name, l))
                    .map(|(_, name, _)| name.clone())
                    .collect();
                lines.push(format!(
                    "{}: {} existing container{}, and those created from now on",
                    s.describe(),
                    matching.len(),
                    if matching.len() == 1 { "" } else { "s" }
                ));
                names.extend(matching);
            }
            session.add_selectors(new);
        }
        for name in &names {
            if let Some(i) = session.find(name).filter(|&i| session.target(i).active()) {
                lines.push(format!("{}: already recorded", session.target(i).label()));
                continue;
            }
            let i = session
                .add_target(TargetSpec::Container(name.clone()))
                .await?;
            let t = session.target(i);
            lines.push(if !t.live().is_empty() {
                format!("{}: recording", t.label())
            } else {
                format!("{}: not running yet; recorded from its creation", t.label())
            });
            display::say(&format!("{}: added", t.label()));
        }
        self.checkpoint(session)?;
        Ok(Response::Ok {
            message: lines.join("\n"),
        })
    }

    fn remove(&mut self, session: &mut Session, names: &[String]) -> Result<Response, RecordError> {
        let mut lines = Vec::new();
        for name in names {
            let Some(i) = session.find(name).filter(|&i| session.target(i).active()) else {
                return Err(RecordError::Refused(format!(
                    "{name} is not being recorded"
                )));
            };
            session.remove_target(i)?;
            let label = session.target(i).label();
            lines.push(format!("{label}: no longer recorded"));
            display::say(&format!("{label}: removed"));
        }
        self.checkpoint(session)?;
        Ok(Response::Ok {
            message: lines.join("\n"),
        })
    }
}

fn status(session: &Session) -> Result<Status, RecordError> {
    let counters = session.counters()?;
    let now = epoch_secs(SystemTime::now());
    let mut targets = Vec::new();
    for (i, t) in session.targets().iter().enumerate() {
        if !t.active() {
            continue;
        }
        let (learned, c) = session.compose(i)?;
        // As the profile's provenance file has them (an unconfined target's set-up calls too).
        let why = session.why_file(i, Some(&c));
        let firsts: Vec<u64> = why
            .calls
            .values()
            .chain(why.compat_calls.values())
            .map(|e| e.first_seen.0)
            .collect();
        let since = t
            .history()
            .since
            .into_iter()
            .chain(firsts.iter().copied())
            .min()
            .unwrap_or(now);
        let (interval_secs, new_calls) = curve(firsts, since, now);
        targets.push(TargetStatus {
            name: t.label().to_string(),
            container_id: t.container_id().map(String::from),
            running: !t.live().is_empty(),
            syscalls: c.allowed.len(),
            refused: refused_names(session.arch(), &learned)
                .into_iter()
                .map(String::from)
                .collect(),
            last_new: t.last_new().map(|(n, _)| n.clone()),
            last_new_at: t.last_new().map(|(_, at)| epoch_secs(*at)),
            restarts: t.restarts(),
            events: t.events(),
            new_calls,
            interval_secs,
        });
    }
    Ok(Status {
        targets,
        syscalls: counters.syscalls,
        ring_drops: counters.ring_drops,
        refusals: counters.refusals,
        map_full: session.targets().map_full(),
        traced_cgroups: session.traced_cgroups()?,
        now,
    })
}

fn export(session: &Session, name: &str, format: Format) -> Result<Response, RecordError> {
    let Some(i) = session.find(name) else {
        return Err(RecordError::Refused(format!(
            "{name} is not recorded by the daemon"
        )));
    };
    let t = session.target(i);
    let (learned, c, rendered) = session.render(i, format, false)?;
    let refused = refused_names(session.arch(), &learned);
    Ok(Response::Profile {
        doc: rendered.doc,
        kubelet: rendered.kubelet,
        summary: format!(
            "{}: {} syscalls allowed ({} refused while recording, allowed), {} restarts",
            t.label(),
            c.allowed.len(),
            refused.len(),
            t.restarts()
        ),
        why: Some(session.why_file(i, Some(&c)).to_json()),
        diff: None,
    })
}

/// `export --heal`: the profile target `name` runs under, as the engine holds it, allowing
/// what it refused under that profile too.
fn heal(session: &Session, name: &str) -> Result<Response, RecordError> {
    let Some(i) = session.find(name) else {
        return Err(RecordError::Refused(format!(
            "{name} is not recorded by the daemon"
        )));
    };
    let t = session.target(i);
    let label = t.label();
    if let Some(crate::profile::moby::SeccompInForce::Unreadable(why)) =
        t.security().map(|s| &s.seccomp)
    {
        if t.security().is_some_and(|s| s.own_profile.is_none()) {
            return Err(RecordError::Refused(format!(
                "{label} runs under a profile of its own that cannot be read ({why}): heal it \
                 by hand"
            )));
        }
    }
    let Some(in_force) = t.security().and_then(|s| s.own_profile.as_deref()) else {
        return Err(RecordError::Refused(format!(
            "{label} does not run under a profile of its own (--security-opt seccomp=FILE, a \
             Localhost profile), so there is none to heal; `export {label}` writes the profile \
             it learned"
        )));
    };
    let refused: Vec<&str> = t.refused_own().iter().map(String::as_str).collect();
    let healed = crate::profile::heal::heal(in_force, session.arch(), &refused)
        .map_err(|e| RecordError::Refused(format!("{label}: {e}")))?;
    let diff = match &healed.profiles {
        Some((before, after)) => crate::profiles::diff(before, after, "in force", "healed"),
        None if healed.added.is_empty() => String::new(),
        None => format!(
            "only healed allows ({}): {}\n",
            healed.added.len(),
            healed.added.join(", ")
        ),
    };
    let summary = if healed.added.is_empty() {
        format!("{label}: its profile refused nothing; the healed profile is the one in force")
    } else {
        format!(
            "{label}: the profile in force, plus {} it refused: {}",
            healed.added.len(),
            healed.added.join(", ")
        )
    };
    let (_, c) = session.compose(i)?;
    Ok(Response::Profile {
        doc: healed.doc,
        kubelet: None,
        summary,
        why: Some(session.why_file(i, Some(&c)).to_json()),
        diff: Some(diff),
    })
}

/// `add --engine E` asks for containers of E: refused unless the daemon records E's.
fn same_engine(
    session: &Session,
    wanted: Option<crate::target::engine::EngineKind>,
) -> Result<(), RecordError> {
    let Some(wanted) = wanted else {
        return Ok(());
    };
    match session.engine().map(|e| e.client.kind()) {
        Some(kind) if kind == wanted => Ok(()),
        Some(kind) => Err(RecordError::Refused(format!(
            "this daemon records {} containers, not {}'s (start one with `daemon --engine {}` \
             and its own --socket and --state-dir)",
            kind.name(),
            wanted.name(),
            format!("{wanted:?}").to_lowercase()
        ))),
        None => Err(RecordError::Refused("this daemon has no engine".into())),
    }
}
