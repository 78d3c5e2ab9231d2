//! The hidden `floor` subcommand: attaches benchmark programs alone until Ctrl-C/SIGTERM.

use std::process::ExitCode;

use tokio::signal::unix::{signal, SignalKind};

use crate::{bpf, privileges, record::display, syscalls::Arch};

pub async fn floor(programs: &[String]) -> anyhow::Result<ExitCode> {
    privileges::check()?;
    let arch = Arch::host().ok_or_else(|| anyhow::anyhow!("unsupported architecture"))?;
    let layout = bpf::KernelLayout::detect(arch)?;
    let _attached = bpf::attach_floor(&layout, programs)?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    display::print("floor program attached\n");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(ExitCode::SUCCESS)
}
