//! `daemon` and its clients: `add`, `remove`, `status` and `export`.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use tokio::signal::unix::{signal, SignalKind};

use crate::{
    daemon::{
        self,
        client::request,
        protocol::{render_status, Request, Response},
    },
    privileges,
    profile::{formats::Format, why::WhyFile},
    record::{
        display,
        sink::{self, Rendered},
    },
    target::engine::EngineKind,
};

/// The daemon's engine: `--engine` and `--runtime-endpoint`.
pub struct EngineArgs {
    pub kind: Option<EngineKind>,
    pub runtime_endpoint: Option<String>,
}

/// The daemon's `--events` and `--alert-command`.
pub struct GuardArgs {
    pub events: Option<PathBuf>,
    pub alert_command: Option<String>,
}

/// `daemon`: records until SIGTERM.
pub async fn serve(
    state_dir: PathBuf,
    socket: PathBuf,
    checkpoint: u64,
    no_refusals: bool,
    engine: EngineArgs,
    guard: GuardArgs,
) -> anyhow::Result<ExitCode> {
    privileges::check()?;
    if guard
        .events
        .as_deref()
        .is_some_and(crate::output::is_stdout)
    {
        // Standard output takes the events alone.
        display::live_to_stderr();
    }
    daemon::serve(daemon::DaemonConfig {
        state_dir,
        socket,
        checkpoint: Duration::from_secs(checkpoint),
        refusals: !no_refusals,
        engine: engine.kind,
        runtime_endpoint: engine.runtime_endpoint,
        events: guard.events,
        alert_command: guard.alert_command,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

fn print_ok(r: Response) {
    if let Response::Ok { message } = r {
        display::print(&format!("{message}\n"));
    }
}

/// `add`
pub async fn add(
    socket: &Path,
    containers: Vec<String>,
    labels: Vec<String>,
    engine: Option<EngineKind>,
) -> anyhow::Result<ExitCode> {
    let req = Request::Add {
        containers,
        labels,
        engine,
    };
    print_ok(request(socket, &req).await?);
    Ok(ExitCode::SUCCESS)
}

/// `remove`
pub async fn remove(socket: &Path, containers: Vec<String>) -> anyhow::Result<ExitCode> {
    print_ok(request(socket, &Request::Remove { containers }).await?);
    Ok(ExitCode::SUCCESS)
}

/// `status`, once or every 2 s until Ctrl-C.
pub async fn status(socket: &Path, json: bool, watch: bool) -> anyhow::Result<ExitCode> {
    loop {
        let Response::Status(status) = request(socket, &Request::Status).await? else {
            anyhow::bail!("the daemon answered status with something else");
        };
        if json {
            display::print(&format!("{}\n", serde_json::to_string_pretty(&status)?));
        } else {
            if watch {
                // Clear the screen and go home, then redraw.
                display::print("\x1b[2J\x1b[H");
            }
            display::print(&render_status(&status));
        }
        if !watch {
            return Ok(ExitCode::SUCCESS);
        }
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = int.recv() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// `export`: the profile of a recorded container, to `output` or standard output.
pub async fn export(
    socket: &Path,
    container: String,
    output: Option<PathBuf>,
    format: Format,
    heal: bool,
) -> anyhow::Result<ExitCode> {
    let req = Request::Export {
        container,
        format,
        heal,
    };
    let Response::Profile {
        doc,
        kubelet,
        summary,
        why,
        diff,
    } = request(socket, &req).await?
    else {
        anyhow::bail!("the daemon answered export with something else");
    };
    // The difference goes where the profile does not.
    if let Some(diff) = diff {
        if output.is_some() {
            display::print(&diff);
        } else {
            display::warn_plain(diff.trim_end());
        }
    }
    match output {
        Some(path) => {
            sink::write(&path, &Rendered { doc, kubelet })?;
            // Best-effort, like what it holds (a daemon of an older version sends none).
            if let Some(why) = why {
                let written = serde_json::from_value::<WhyFile>(why)
                    .map_err(|e| e.to_string())
                    .and_then(|w| sink::write_why(&path, &w).map_err(|e| e.to_string()));
                if let Err(e) = written {
                    display::warn(&format!("first sightings not written: {e}"));
                }
            }
            display::warn_plain(&format!("{summary} -> {}", path.display()));
        }
        None => {
            display::print(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
            display::warn_plain(&summary);
        }
    }
    Ok(ExitCode::SUCCESS)
}
