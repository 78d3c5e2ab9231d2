//! `report`: a profile file (with its provenance file) or a container the daemon records, in;
//! one self-contained HTML page out. The page is made by `page`; this file reads, asks the
//! daemon and writes.

use std::{
    fs::OpenOptions,
    io::Read,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::ExitCode,
    time::SystemTime,
};

use anyhow::{anyhow, bail, Context as _};

use crate::{
    cli::DEFAULT_SOCKET,
    daemon::{
        client::request,
        protocol::{Request, Response},
    },
    output,
    page::{self, html, usage::Source, Report},
    privileges,
    profile::{
        formats::{self, escape, Format, Parsed},
        moby::Host,
        why::{Timestamp, WhyFile},
    },
    profiles,
    record::display,
    syscalls::Arch,
};

/// Refuses to replace a file at `path` that is not a report this tool wrote (one without
/// [`html::GENERATOR`] near its start); what is not a regular file is refused by
/// [`output::check_writable`].
pub fn check_replaceable(path: &Path) -> anyhow::Result<()> {
    output::check_writable(path)?;
    if output::is_stdout(path) {
        return Ok(());
    }
    let shown = || escape(&path.display().to_string()).into_owned();
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => {}
        _ => return Ok(()),
    }
    // No link followed, no blocking on what may have become a FIFO since.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .with_context(|| format!("cannot read {}", shown()))?;
    let mut head = Vec::new();
    file.take(html::MARKER_WITHIN as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", shown()))?;
    if !html::is_report(&head) {
        bail!(
            "{} exists and is not a report seccomp-tracer wrote; refusing to replace it (name \
             another file, or `-` for standard output)",
            shown()
        );
    }
    Ok(())
}

/// Whether `target` names a profile file: an existing regular file (through links).
fn is_profile_file(target: &str) -> bool {
    std::fs::metadata(target).is_ok_and(|m| m.is_file())
}

/// A name that can only mean a file (`.json`, `.yaml`, `.yml`): its absence is an error, not
/// a question to the daemon.
fn looks_like_a_file(target: &str) -> bool {
    let p = Path::new(target);
    formats::is_yaml_path(p)
        || p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// `report`: the page for `target` (a profile file if one exists at that path, else a container
/// the daemon on `socket` records) written to `out` (`-`: standard output).
pub async fn report(target: &str, out: &Path, socket: &Path) -> anyhow::Result<ExitCode> {
    check_replaceable(out)?;
    let host_arch = Arch::host();
    let (parsed, why, source): (Parsed, Option<WhyFile>, Source) = if is_profile_file(target) {
        let path = Path::new(target);
        let parsed = profiles::load_parsed(path)?;
        let why = profiles::load_why(path);
        let abs = std::path::absolute(path)
            .with_context(|| format!("cannot tell where {} is", escape(target)))?;
        let format = parsed.format;
        (parsed, why, Source::File { path: abs, format })
    } else if looks_like_a_file(target) {
        bail!(
            "{}: no such profile file (a container's name would be asked of the daemon)",
            escape(target)
        );
    } else {
        from_daemon(target, socket).await?
    };
    let arch = formats::common_arch(
        [(target, parsed.arches.as_slice())],
        host_arch.or(Some(Arch::X86_64)),
    )?;
    let kernel = privileges::running_kernel()
        .ok_or_else(|| anyhow!("cannot tell the running kernel's version (uname)"))?;
    let generated = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let page = page::render(&Report {
        title: target,
        source,
        host: Host { arch, kernel },
        profile: &parsed.profile,
        why: why.as_ref(),
        generated: Timestamp(generated),
    })?;
    output::write_atomic(out, page.as_bytes())?;
    if !output::is_stdout(out) {
        display::warn_plain(&format!(
            "report on {} -> {}",
            escape(target),
            escape(&out.display().to_string())
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The profile of `container` as the daemon has it, and its first sightings.
async fn from_daemon(
    container: &str,
    socket: &Path,
) -> anyhow::Result<(Parsed, Option<WhyFile>, Source)> {
    let req = Request::Export {
        container: container.to_string(),
        format: Format::Docker,
        heal: false,
    };
    let Response::Profile { doc, why, .. } = request(socket, &req).await? else {
        bail!("the daemon answered export with something else");
    };
    let parsed = formats::parse(&doc, Arch::host().unwrap_or(Arch::X86_64))
        .map_err(|e| anyhow!("the daemon's profile of {}: {e}", escape(container)))?;
    // Best-effort, like what it holds (a daemon of an older version sends none).
    let why = why.and_then(|w| match serde_json::from_value::<WhyFile>(w) {
        Ok(w) => Some(w),
        Err(e) => {
            display::warn(&format!("first sightings not shown: {e}"));
            None
        }
    });
    let dir = std::env::current_dir().context("cannot tell the current directory")?;
    let socket: Option<PathBuf> =
        (socket != Path::new(DEFAULT_SOCKET)).then(|| socket.to_path_buf());
    Ok((
        parsed,
        why,
        Source::Daemon {
            container: container.to_string(),
            socket,
            dir,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_reports_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(check_replaceable(&d.join("new.html")).is_ok());
        assert!(check_replaceable(Path::new("-")).is_ok());
        let ours = d.join("ours.html");
        std::fs::write(
            &ours,
            format!("<!DOCTYPE html><head>{}</head>", html::GENERATOR),
        )
        .unwrap();
        assert!(check_replaceable(&ours).is_ok());
        let notes = d.join("notes.html");
        std::fs::write(&notes, "<html>my notes</html>").unwrap();
        let e = check_replaceable(&notes).unwrap_err().to_string();
        assert!(e.contains("is not a report seccomp-tracer wrote"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        // A link to our own report is refused all the same (never written through).
        let link = d.join("link.html");
        std::os::unix::fs::symlink(&ours, &link).unwrap();
        assert!(check_replaceable(&link).is_err());
        assert!(check_replaceable(d).is_err());
    }

    #[test]
    fn what_names_a_profile_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.json");
        std::fs::write(&p, "{}").unwrap();
        assert!(is_profile_file(p.to_str().unwrap()));
        assert!(!is_profile_file(dir.path().to_str().unwrap()));
        assert!(!is_profile_file("web"));
        assert!(looks_like_a_file("missing.json") && looks_like_a_file("x.YAML"));
        assert!(!looks_like_a_file("web") && !looks_like_a_file("default/web/nginx"));
    }
}
