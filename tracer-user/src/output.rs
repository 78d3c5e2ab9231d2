//! Writing files as a root tool must: the destination is replaced atomically (a temp file in
//! the same directory, created exclusively under a random name without following links,
//! fsync, rename), and a destination that exists but is not a regular file (a symlink, a
//! device such as /dev/null, a directory) is refused. `-` means standard output.

use std::{
    fs,
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use thiserror::Error;

#[derive(Debug, Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct OutputError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The path that means standard output.
pub const STDOUT: &str = "-";

/// Whether `path` means standard output.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == STDOUT
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Refuses a destination that exists and is not a regular file (never followed: a symlink is
/// refused as such).
fn check_destination(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(m) => {
            let what = if m.file_type().is_symlink() {
                "a symbolic link"
            } else if m.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            };
            Err(std::io::Error::other(format!(
                "it is {what}; refusing to replace it (name a regular file, or `-` for standard output)"
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `contents` to `path` so that readers see the old file or the new one, never a part;
/// `-` writes to standard output.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), OutputError> {
    let err = |source| OutputError {
        path: path.to_path_buf(),
        source,
    };
    if is_stdout(path) {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(contents)
            .and_then(|()| out.flush())
            .map_err(err);
    }
    (|| {
        check_destination(path)?;
        // O_EXCL under a random name: nobody can plant a link at it beforehand.
        let mut tmp = tempfile::Builder::new()
            .prefix(".seccomp-tracer.")
            .suffix(".tmp")
            .tempfile_in(dir_of(path))?;
        tmp.write_all(contents)?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))?;
        tmp.as_file().sync_all()?;
        // Checked again just before the rename, which never follows a link at `path` anyway.
        check_destination(path)?;
        tmp.persist(path).map_err(|e| e.error)?;
        fs::File::open(dir_of(path))?.sync_all()
    })()
    .map_err(err)
}

/// Fails now, before hours of recording, if `path` could not be written later.
pub fn check_writable(path: &Path) -> Result<(), OutputError> {
    if is_stdout(path) {
        return Ok(());
    }
    let err = |source| OutputError {
        path: path.to_path_buf(),
        source,
    };
    check_destination(path).map_err(err)?;
    tempfile::Builder::new()
        .prefix(".seccomp-tracer.")
        .tempfile_in(dir_of(path))
        .map(drop)
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_atomically_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn unwritable_destinations_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_writable(&dir.path().join("ok.json")).is_ok());
        assert!(check_writable(dir.path()).is_err());
        assert!(check_writable(&dir.path().join("missing/x.json")).is_err());
        assert!(check_writable(Path::new("-")).is_ok());
    }

    /// A link planted at the destination (or a device) is refused, and what it points to is
    /// left as it was.
    #[test]
    fn symlinks_and_devices_are_never_written_through_or_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let link = dir.path().join("web.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = write_atomic(&link, b"profile").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(check_writable(&link).is_err());
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let e = write_atomic(Path::new("/dev/null"), b"x").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(Path::new("/dev/null").exists());
    }

    /// Temp files have unpredictable names: a link planted at the old `.<name>.<pid>.tmp`
    /// name is never followed.
    #[test]
    fn a_link_at_the_old_temp_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let planted = dir
            .path()
            .join(format!(".web.json.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write_atomic(&dir.path().join("web.json"), b"profile").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }
}
