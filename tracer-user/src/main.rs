//! The `seccomp-tracer` binary: parse the command line, send each subcommand to its function
//! in `commands/`, turn errors into one line on stderr and a non-zero exit code.

use std::process::ExitCode;

use clap::Parser;
use seccomp_tracer::{
    cli::{Cli, Command},
    commands::{daemon, floor, profiles, record, report, run, shell},
};

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Record(args) => record::record(args).await,
        Command::Run(args) => run::run(args).await,
        Command::Check(args) => record::check(args).await,
        Command::Merge {
            profiles: paths,
            output,
            format,
        } => profiles::merge(&paths, &output, format),
        Command::Diff { a, b, json } => profiles::diff(&a, &b, json),
        Command::Explain {
            profile,
            json,
            kernel,
        } => profiles::explain(&profile, json, kernel),
        Command::Report {
            target,
            output,
            socket,
        } => report::report(&target, &output, &socket.path).await,
        Command::Daemon {
            state_dir,
            socket,
            checkpoint,
            no_refusals,
            engine,
            runtime_endpoint,
            guard,
        } => {
            let engine = daemon::EngineArgs {
                kind: engine,
                runtime_endpoint,
            };
            let guard = daemon::GuardArgs {
                events: guard.events,
                alert_command: guard.alert_command,
            };
            daemon::serve(
                state_dir,
                socket.path,
                checkpoint,
                no_refusals,
                engine,
                guard,
            )
            .await
        }
        Command::Add {
            containers,
            labels,
            engine,
            socket,
        } => daemon::add(&socket.path, containers, labels, engine).await,
        Command::Remove { containers, socket } => daemon::remove(&socket.path, containers).await,
        Command::Status {
            json,
            watch,
            socket,
        } => daemon::status(&socket.path, json, watch).await,
        Command::Export {
            container,
            output,
            format,
            heal,
            socket,
        } => daemon::export(&socket.path, container, output, format, heal).await,
        Command::Completions { shell: s } => shell::completions(s),
        Command::Man { dir } => shell::man(&dir),
        Command::Floor { programs } => floor::floor(&programs).await,
    }
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
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Every error's message already carries its cause: print it once.
            eprintln!("seccomp-tracer: {e}");
            ExitCode::FAILURE
        }
    }
}
