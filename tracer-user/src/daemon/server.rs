//! The daemon's control socket: binding it (refusing to take over a live daemon's), and
//! answering connections, one request line and one answer line each, root only.

use std::{
    os::unix::fs::{FileTypeExt, PermissionsExt},
    path::Path,
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
};

use super::{
    protocol::{Request, Response},
    DaemonError,
};
use crate::record::display;

/// A request and where its answer goes.
pub type Requests = mpsc::Sender<(Request, oneshot::Sender<Response>)>;

/// Binds the control socket, refusing to take over one a live daemon listens on.
pub async fn bind(socket: &Path) -> Result<UnixListener, DaemonError> {
    let io = |source| DaemonError::Io {
        path: socket.to_path_buf(),
        source,
    };
    // Only a stale socket (nobody answers) is removed; anything else there is refused.
    if let Ok(m) = std::fs::symlink_metadata(socket) {
        if !m.file_type().is_socket() {
            return Err(DaemonError::NotASocket(socket.to_path_buf()));
        }
        if UnixStream::connect(socket).await.is_ok() {
            return Err(DaemonError::AlreadyRunning(socket.to_path_buf()));
        }
        std::fs::remove_file(socket).map_err(io)?;
    }
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|source| DaemonError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let listener = UnixListener::bind(socket).map_err(io)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// Connections answered at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// How long a client has to send its request line.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections until aborted, each answered in a task of its own, at most
/// [`MAX_CONNECTIONS`] at a time: idle clients cannot exhaust the daemon's descriptors.
pub async fn accept(listener: UnixListener, requests: Requests) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    drop(stream);
                    continue;
                };
                let requests = requests.clone();
                tokio::spawn(async move {
                    serve_connection(stream, requests).await;
                    drop(slot);
                });
            }
            Err(e) => {
                display::warn(&format!("control socket: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Answers one connection: one request line, one answer line. Only root (uid 0) is served,
/// whatever the socket's mode.
async fn serve_connection(stream: UnixStream, requests: Requests) {
    let (read, mut write) = stream.into_split();
    let uid = read.as_ref().peer_cred().map(|c| c.uid()).ok();
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(1 << 16);
    let stopping = || Response::Error {
        message: "the daemon is stopping".into(),
    };
    let read = tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await;
    let answer = match read.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())) {
        Err(e) => Response::Error {
            message: format!("reading the request: {e}"),
        },
        Ok(_) if uid != Some(0) => Response::Error {
            message: "only root may control the daemon".into(),
        },
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::Error {
                message: format!("not a request: {e}"),
            },
            Ok(req) => {
                let (tx, rx) = oneshot::channel();
                if requests.send((req, tx)).await.is_err() {
                    stopping()
                } else {
                    rx.await.unwrap_or_else(|_| stopping())
                }
            }
        },
    };
    if let Ok(mut text) = serde_json::to_vec(&answer) {
        text.push(b'\n');
        let _ = write.write_all(&text).await;
    }
}
