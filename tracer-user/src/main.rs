//! The `seccomp-tracer` binary: parse the command line, run, turn errors into one line on
//! stderr and a non-zero exit code.

use std::process::ExitCode;

use clap::Parser;
use seccomp_tracer::{
    bpf,
    cli::{Cli, Command},
    privileges, recorder,
};
use tokio::signal::unix::{signal, SignalKind};

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Record(args) => {
            privileges::check()?;
            let summary = recorder::record(args.into_config()).await?;
            print!("{}", summary.text);
            if !summary.missing.is_empty() {
                anyhow::bail!(
                    "no profile for {}: never seen running",
                    summary.missing.join(", ")
                );
            }
        }
        Command::Floor => {
            privileges::check()?;
            let _attached = bpf::attach_floor()?;
            let mut term = signal(SignalKind::terminate())?;
            let mut int = signal(SignalKind::interrupt())?;
            println!("floor program attached");
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("seccomp-tracer: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seccomp-tracer: {e:#}");
            ExitCode::FAILURE
        }
    }
}
