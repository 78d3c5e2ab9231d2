//! `completions` and `man`: the generated scripts and pages (`crate::shell`) onto standard
//! output or into a directory, never over a file this tool did not generate.

use std::{
    fs::{self, OpenOptions},
    io::Read,
    os::unix::fs::OpenOptionsExt,
    path::Path,
    process::ExitCode,
};

use anyhow::{bail, Context};

use crate::{
    output,
    profile::formats::escape,
    record::display,
    shell::{self, Shell},
};

/// How much of an existing file is read to tell whether it is one of our man pages: the
/// `.TH` line comes after a few lines of preamble.
const HEAD_BYTES: u64 = 4096;

/// `completions SHELL`: the script on standard output.
pub fn completions(shell: Shell) -> anyhow::Result<ExitCode> {
    output::write_atomic(Path::new(output::STDOUT), &shell::completion_script(shell))?;
    Ok(ExitCode::SUCCESS)
}

/// `man DIR`: every man page into `dir` (created if missing). Every destination is checked
/// before any is written: one that exists and is not a man page this tool generated (another
/// program's, a symlink, a directory) stops it with nothing written.
pub fn man(dir: &Path) -> anyhow::Result<ExitCode> {
    let shown = || escape(&dir.display().to_string()).into_owned();
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", shown()))?;
    let pages = shell::man_pages().context("rendering the man pages")?;
    for page in &pages {
        check_replaceable(&dir.join(&page.file_name))?;
    }
    for page in &pages {
        output::write_atomic(&dir.join(&page.file_name), &page.roff)?;
    }
    display::print(&format!("{}: {} man pages\n", shown(), pages.len()));
    Ok(ExitCode::SUCCESS)
}

/// Refuses `path` if it exists and is not a regular file holding a man page of ours (a
/// symlink is refused as such, never followed).
fn check_replaceable(path: &Path) -> anyhow::Result<()> {
    let shown = || escape(&path.display().to_string()).into_owned();
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        r => r.with_context(|| format!("cannot read {}", shown()))?,
    };
    if !meta.file_type().is_file() {
        let what = if meta.file_type().is_symlink() {
            "a symbolic link"
        } else {
            "not a regular file"
        };
        bail!("{} is {what}; refusing to replace it", shown());
    }
    let mut head = Vec::new();
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .and_then(|f| f.take(HEAD_BYTES).read_to_end(&mut head))
        .with_context(|| format!("cannot read {}", shown()))?;
    if !shell::is_our_man_page(&head) {
        bail!(
            "{} exists and is not a man page seccomp-tracer generated; refusing to replace it",
            shown()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn man_writes_every_page_into_a_new_directory_and_replaces_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("share/man/man1");
        man(&dir).unwrap();
        let written = files(&dir);
        assert_eq!(written.len(), shell::man_pages().unwrap().len());
        assert!(written.contains(&"seccomp-tracer-record.1".to_string()));
        assert!(!written.iter().any(|f| f.contains("floor")), "{written:?}");
        // Again: its own pages are replaced, nothing else appears.
        fs::write(
            dir.join("seccomp-tracer-diff.1"),
            ".TH seccomp-tracer-diff 1\nold\n",
        )
        .unwrap();
        man(&dir).unwrap();
        assert_eq!(files(&dir), written);
        let diff = fs::read_to_string(dir.join("seccomp-tracer-diff.1")).unwrap();
        assert!(diff.contains("json"), "{diff}");
    }

    #[test]
    fn man_refuses_to_replace_another_file_or_a_symlink_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let foreign = dir.join("seccomp-tracer-record.1");
        fs::write(&foreign, ".TH LS 1 \"GNU coreutils\"\n").unwrap();
        let err = man(dir).unwrap_err().to_string();
        assert!(
            err.contains(
                "seccomp-tracer-record.1 exists and is not a man page seccomp-tracer generated"
            ),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        assert_eq!(files(dir), ["seccomp-tracer-record.1"], "nothing written");
        assert_eq!(
            fs::read_to_string(&foreign).unwrap(),
            ".TH LS 1 \"GNU coreutils\"\n"
        );

        // A link to one of our own pages is still a link: refused, its target untouched.
        fs::remove_file(&foreign).unwrap();
        let victim = dir.join("victim");
        fs::write(&victim, ".TH seccomp-tracer 1\n").unwrap();
        std::os::unix::fs::symlink(&victim, &foreign).unwrap();
        let err = man(dir).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert_eq!(
            fs::read_to_string(&victim).unwrap(),
            ".TH seccomp-tracer 1\n"
        );
        assert_eq!(files(dir), ["seccomp-tracer-record.1", "victim"]);
    }
}
