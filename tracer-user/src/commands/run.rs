//! `run -- CMD`: traces a command and all its descendants from its first syscall, in a cgroup
//! of its own, and passes its exit status through.

use std::{ffi::CString, os::unix::process::ExitStatusExt, path::PathBuf, process::ExitStatus};

use thiserror::Error;
use tokio::sync::oneshot;

use crate::{
    cli::RunArgs,
    privileges,
    record::{self, display, Config, RecordError, Summary},
    target::{cgroup, TargetSpec},
};

#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("creating cgroup {}: {source}", path.display())]
    Cgroup {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting `{cmd}`: {source}")]
    Spawn { cmd: String, source: std::io::Error },
}

/// The exit code a shell would report for `status`.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Records `cmd` (profile named after its program) and returns the summary and its exit code.
pub async fn record_command(mut cfg: Config, cmd: Vec<String>) -> Result<(Summary, i32), RunError> {
    // A command that cannot start ends here, before anything is written.
    find_program(&cmd[0]).map_err(|source| RunError::Spawn {
        cmd: cmd.join(" "),
        source,
    })?;
    let root = cgroup::cgroup2_root().map_err(RecordError::from)?;
    let name = format!("seccomp-tracer-run-{}", std::process::id());
    let dir = root.join(&name);
    std::fs::create_dir(&dir).map_err(|source| RunError::Cgroup {
        path: dir.clone(),
        source,
    })?;
    let label = cmd
        .first()
        .and_then(|c| c.rsplit('/').next())
        .unwrap_or("cmd")
        .to_string();
    cfg.targets = vec![TargetSpec::Cgroup(format!("/{name}"))];
    cfg.label = Some(label);

    let procs = CString::new(
        dir.join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .map_err(|e| RunError::Cgroup {
        path: dir.clone(),
        source: std::io::Error::other(e),
    })?;
    let (ready_tx, ready_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel::<Result<ExitStatus, std::io::Error>>();
    let program = cmd.clone();
    let (root, name) = (root.clone(), name.clone());
    tokio::spawn(async move {
        if ready_rx.await.is_err() {
            return;
        }
        let mut command = tokio::process::Command::new(&program[0]);
        command.args(&program[1..]);
        // SAFETY: the closure runs in the child between fork and exec and only makes
        // async-signal-safe calls (open, write, close) on memory prepared before the fork.
        unsafe {
            command.pre_exec(move || join_cgroup(&procs));
        }
        let status = match command.spawn() {
            Ok(mut child) => {
                let forward = child.id().map(|pid| tokio::spawn(forward_signals(pid)));
                let status = child.wait().await;
                if let Some(f) = forward {
                    f.abort();
                }
                status
            }
            Err(e) => Err(e),
        };
        // Descendants may outlive it (`cmd &`): give them a moment to finish, so their calls
        // are in the profile; a daemon that stays is left running.
        for _ in 0..40 {
            if cgroup::is_empty(&root, &format!("/{name}")) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = done_tx.send(status);
    });
    let mut status = None;
    let summary = record::record_until(cfg, Some(ready_tx), async {
        status = done_rx.await.ok();
        // Nothing ran: the destination is left as it was.
        !matches!(status, Some(Err(_)))
    })
    .await;
    // Fails if descendants still run in it; the cgroup is then left for them.
    let _ = std::fs::remove_dir(&dir);
    let summary = summary?;
    match (status, summary) {
        (Some(Ok(s)), Some(summary)) => Ok((summary, exit_code(s))),
        (Some(Err(source)), _) => Err(RunError::Spawn {
            cmd: cmd.join(" "),
            source,
        }),
        // Ended before the command did (killed with SIGKILL meanwhile?): report SIGINT's code.
        (_, summary) => Ok((summary.unwrap_or_default(), 130)),
    }
}

/// Forwards SIGINT, SIGTERM and SIGHUP to the command (process `pid`), as `timeout(1)` does:
/// the session ends when the command does, with its status (143 after SIGTERM).
async fn forward_signals(pid: u32) {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        (SignalKind::interrupt(), libc::SIGINT),
        (SignalKind::terminate(), libc::SIGTERM),
        (SignalKind::hangup(), libc::SIGHUP),
    ];
    let mut streams = Vec::new();
    for (kind, sig) in kinds {
        if let Ok(s) = signal(kind) {
            streams.push((s, sig));
        }
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    loop {
        let next = futures_util::future::select_all(
            streams
                .iter_mut()
                .map(|(s, sig)| Box::pin(async move { s.recv().await.map(|_| *sig) })),
        );
        match next.await.0 {
            // SAFETY: kill(2) on our own child, which `wait` has not reaped yet (this task is
            // aborted once it has).
            Some(sig) => unsafe {
                libc::kill(pid, sig);
            },
            None => return,
        }
    }
}

/// Whether `program` can be started: a path to an executable file, or a name found in PATH.
fn find_program(program: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        executable(std::path::Path::new(program))
    } else {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| executable(&dir.join(program)))
        })
    };
    if found {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such executable file (or not in PATH)",
        ))
    }
}

/// `run -- CMD`: the summary on standard error, CMD's exit status as ours.
pub async fn run(args: RunArgs) -> anyhow::Result<std::process::ExitCode> {
    privileges::check()?;
    let (cfg, cmd) = args.split();
    let (summary, code) = record_command(cfg, cmd).await?;
    display::warn_plain(summary.text.trim_end_matches('\n'));
    Ok(std::process::ExitCode::from(
        u8::try_from(code).unwrap_or(1),
    ))
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is `procs` ("0" = self).
fn join_cgroup(procs: &CString) -> std::io::Result<()> {
    // SAFETY: open/write/close on a valid NUL-terminated path and a 1-byte buffer.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = libc::write(fd, b"0".as_ptr().cast(), 1);
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if n != 1 {
            return Err(err);
        }
    }
    Ok(())
}
