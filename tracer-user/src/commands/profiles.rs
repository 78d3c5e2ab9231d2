//! `merge`, `diff` and `explain`: profile files in, a profile or a report out.

use std::{path::Path, process::ExitCode};

use crate::{
    privileges::{self, KernelVersion},
    profile::{
        formats::{self, Format},
        moby::Host,
    },
    profiles,
    record::{
        display,
        sink::{self, Rendered},
    },
    syscalls::Arch,
};

fn host_arch() -> anyhow::Result<Arch> {
    Arch::host().ok_or_else(|| anyhow::anyhow!("unsupported architecture"))
}

/// `merge`: the union of `paths` in `output` (format: `format`, or the first profile's).
pub fn merge(
    paths: &[std::path::PathBuf],
    output: &Path,
    format: Option<Format>,
) -> anyhow::Result<ExitCode> {
    let arch = host_arch()?;
    let mut loaded = Vec::new();
    for p in paths {
        loaded.push(profiles::load(p)?);
    }
    let format = format.unwrap_or(loaded[0].0);
    let merged = formats::merge(loaded.iter().map(|(_, p)| p));
    let name = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    sink::write(output, &Rendered::new(format, arch, &name, &merged))?;
    display::print(&format!(
        "{}: {} syscalls allowed (union of {} profiles)\n",
        output.display(),
        merged.allowed.len(),
        paths.len()
    ));
    Ok(ExitCode::SUCCESS)
}

/// `diff`: what one profile allows that the other does not.
pub fn diff(a: &Path, b: &Path) -> anyhow::Result<ExitCode> {
    let (_, pa) = profiles::load(a)?;
    let (_, pb) = profiles::load(b)?;
    display::print(&profiles::diff(
        &pa,
        &pb,
        &a.display().to_string(),
        &b.display().to_string(),
    ));
    Ok(ExitCode::SUCCESS)
}

/// `explain`: a profile against Docker's default, on this host's architecture and kernel
/// (or `kernel`), in words or as JSON.
pub fn explain(
    profile: &Path,
    json: bool,
    kernel: Option<KernelVersion>,
) -> anyhow::Result<ExitCode> {
    let arch = host_arch()?;
    let kernel = kernel
        .or_else(privileges::running_kernel)
        .ok_or_else(|| anyhow::anyhow!("cannot tell the kernel's version: give --kernel"))?;
    let host = Host { arch, kernel };
    let (_, p) = profiles::load(profile)?;
    let name = profile.display().to_string();
    let out = if json {
        let mut s = serde_json::to_string_pretty(&profiles::explained(&p, host, &name)?)?;
        s.push('\n');
        s
    } else {
        profiles::explain(&p, host, &name)?
    };
    display::print(&out);
    Ok(ExitCode::SUCCESS)
}
