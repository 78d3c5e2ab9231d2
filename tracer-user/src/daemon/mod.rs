//! `seccomp-tracer daemon`: records containers for hours, across restarts of the containers
//! and of itself. Maps and links are pinned in bpffs, so the kernel keeps recording while the
//! daemon is down and a restarted daemon picks them up; a state file (written atomically every
//! checkpoint and on SIGTERM) keeps what user space knew. Controlled over a Unix socket only
//! root can use (mode 0600 and a peer-credential check). The daemon wraps a recording session
//! ([`crate::record`]) through its driver ([`requests::Control`]).

pub mod client;
pub mod protocol;
mod requests;
mod server;
mod state;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use thiserror::Error;
use tokio::sync::mpsc;

use crate::{
    bpf::{self, Tracer},
    record::{display, Config, Mode, RecordError, Session},
};
use requests::Control;
use state::State;

/// Where the daemon pins its maps and links (one directory per build of the kernel programs).
pub const PIN_BASE: &str = "/sys/fs/bpf/seccomp-tracer";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("another daemon already listens on {0}")]
    AlreadyRunning(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is not readable state: {detail} (move it away to start afresh)")]
    BadState { path: PathBuf, detail: String },
    #[error("{path} is unsafe for the daemon's files: {why}")]
    Unsafe { path: PathBuf, why: String },
    #[error("another daemon (pid {pid}) already uses the state directory {dir}")]
    Locked { dir: PathBuf, pid: String },
    #[error("{0} exists and is not a socket; refusing to remove it")]
    NotASocket(PathBuf),
    #[error("bpffs is not mounted at /sys/fs/bpf and could not be mounted: {0}")]
    Bpffs(String),
}

#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub checkpoint: Duration,
    pub refusals: bool,
    /// The engine whose containers it records; `None`: the one that answers (Docker, Podman,
    /// then a CRI runtime: `EngineClient::detect`).
    pub engine: Option<crate::target::engine::EngineKind>,
    /// The CRI socket, as crictl spells it.
    pub runtime_endpoint: Option<String>,
    /// `--events FILE|-` and `--alert-command CMD`.
    pub events: Option<PathBuf>,
    pub alert_command: Option<String>,
}

/// Mounts bpffs at /sys/fs/bpf unless it is there.
fn ensure_bpffs() -> Result<(), DaemonError> {
    let mounted = statfs_magic("/sys/fs/bpf") == Some(BPF_FS_MAGIC);
    if mounted {
        return Ok(());
    }
    let status = std::process::Command::new("mount")
        // Only root may create pins there (the default mode would let anyone).
        .args(["-t", "bpf", "-o", "mode=0700", "bpf", "/sys/fs/bpf"])
        .status()
        .map_err(|e| DaemonError::Bpffs(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(DaemonError::Bpffs(format!("mount exited with {status}")))
    }
}

fn statfs_magic(path: &str) -> Option<i64> {
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: statfs(2) with a NUL-terminated path and a zeroed struct it fills in.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        (libc::statfs(c.as_ptr(), &mut st) == 0).then_some(st.f_type as i64)
    }
}

/// Builds of the kernel programs other than this one leave pins behind on upgrade: removing
/// them detaches those programs.
fn remove_stale_pins(current: &Path) {
    let Some(base) = current.parent() else {
        return;
    };
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        if entry.path() != current {
            display::warn(&format!(
                "removing pins of another build: {}",
                entry.path().display()
            ));
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Loads the kernel programs pinned at `pins`, or attaches and pins them. Pins without a
/// state (the state directory was emptied) hold what nothing knows: they start clean.
fn load_pinned(
    layout: &bpf::KernelLayout,
    pins: &Path,
    refusals: bool,
    has_state: bool,
) -> Result<Tracer, RecordError> {
    let tracer = Tracer::load_pinned(layout, Some(pins), refusals)?;
    if has_state || !tracer.resumed() {
        return Ok(tracer);
    }
    drop(tracer);
    let _ = std::fs::remove_dir_all(pins);
    Ok(Tracer::load_pinned(layout, Some(pins), refusals)?)
}

/// Runs the daemon until SIGTERM/SIGINT, then saves its state (pins stay: the kernel keeps
/// recording until the next start). SIGHUP saves the state too.
pub async fn serve(dc: DaemonConfig) -> Result<(), DaemonError> {
    state::private_dir(&dc.state_dir)?;
    let _lock = state::Lock::take(&dc.state_dir)?;
    let state_file = dc.state_dir.join("state.json");
    let saved = State::load(&state_file)?;
    let listener = server::bind(&dc.socket).await?;
    ensure_bpffs()?;
    state::private_dir(Path::new(PIN_BASE))?;
    let pins = bpf::pin_dir(Path::new(PIN_BASE), &dc.state_dir);
    remove_stale_pins(&pins);

    let mut cfg = Config::new(Mode::Daemon {
        state_file: state_file.clone(),
    });
    cfg.checkpoint = dc.checkpoint;
    cfg.refusals = dc.refusals;
    cfg.engine = dc.engine;
    cfg.runtime_endpoint = dc.runtime_endpoint;
    cfg.events = dc.events;
    cfg.alert_command = dc.alert_command;
    let mut resumed = false;
    let (mut session, events) = Session::start(cfg, |layout| {
        let t = load_pinned(layout, &pins, dc.refusals, saved.is_some())?;
        resumed = t.resumed();
        Ok(t)
    })
    .await?;
    if let Some(state) = saved {
        session.add_selectors(state.selectors);
        for t in state.targets {
            let name = t.name.clone();
            if let Err(e) = session.restore_target(t).await {
                display::warn(&format!("{name}: not resumed: {e}"));
            }
        }
        if let Err(e) = session.adopt_orphans() {
            display::warn(&format!("reading the kernel's map: {e}"));
        }
    }
    let (tx, rx) = mpsc::channel(16);
    let mut control = Control {
        requests: rx,
        state_file: state_file.clone(),
    };
    // A failed first checkpoint (a full disk) is a warning: the kernel keeps recording and the
    // next checkpoint tries again, instead of a crash loop under systemd.
    session.checkpoint(&mut control);
    display::say(&format!(
        "daemon: {} on {}, state in {}, kernel programs {} ({})",
        if resumed {
            "resumed recording"
        } else {
            "recording"
        },
        dc.socket.display(),
        state_file.display(),
        if resumed {
            "found pinned and kept"
        } else {
            "attached and pinned"
        },
        pins.display()
    ));
    requests::sync_hooks(&mut session, false)?;

    let acceptor = tokio::spawn(server::accept(listener, tx));
    let result = session
        .run(events, std::future::pending(), &mut control)
        .await;
    acceptor.abort();
    let saved = session.checkpoint(&mut control);
    let _ = std::fs::remove_file(&dc.socket);
    session.finish_observers().await;
    result?;
    if !saved {
        return Err(DaemonError::Record(RecordError::Refused(
            "the state could not be saved at exit; the pinned maps keep what was recorded since the last checkpoint".into(),
        )));
    }
    Ok(())
}
