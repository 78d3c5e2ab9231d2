//! The client side of the daemon's socket: `add`, `remove`, `status` and `export` send one
//! request and read one answer.

use std::path::{Path, PathBuf};

use thiserror::Error;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::UnixStream,
};

use super::protocol::{Request, Response};

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("the daemon is not running (nothing listens on {0}): start it with `seccomp-tracer daemon` or `systemctl start seccomp-tracer`")]
    NotRunning(PathBuf),
    #[error("{0}: permission denied: only root can control the daemon")]
    Denied(PathBuf),
    #[error("talking to the daemon on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the daemon's answer is not understood: {0}")]
    Protocol(String),
    #[error("{0}")]
    Refused(String),
}

/// Sends `req` to the daemon on `socket`; an `Error` answer becomes [`ClientError::Refused`].
pub async fn request(socket: &Path, req: &Request) -> Result<Response, ClientError> {
    let io = |source| ClientError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let stream = match UnixStream::connect(socket).await {
        Ok(s) => s,
        Err(e) => {
            return Err(match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    ClientError::NotRunning(socket.to_path_buf())
                }
                std::io::ErrorKind::PermissionDenied => ClientError::Denied(socket.to_path_buf()),
                _ => io(e),
            })
        }
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push(b'\n');
    write.write_all(&line).await.map_err(io)?;
    let mut answer = String::new();
    BufReader::new(read)
        .read_line(&mut answer)
        .await
        .map_err(io)?;
    match serde_json::from_str(&answer) {
        Ok(Response::Error { message }) => Err(ClientError::Refused(message)),
        Ok(r) => Ok(r),
        Err(e) if answer.is_empty() => Err(ClientError::Protocol(format!("no answer ({e})"))),
        Err(e) => Err(ClientError::Protocol(e.to_string())),
    }
}
