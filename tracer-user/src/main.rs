//! The `seccomp-tracer` binary: parse the command line, run, turn errors into one line on
//! stderr and a non-zero exit code.

use std::process::ExitCode;

use clap::Parser;
use seccomp_tracer::{
    bpf,
    cli::{Cli, Command},
    daemon::{
        self,
        client::request,
        protocol::{render_status, Request, Response},
    },
    privileges,
    profile::formats,
    profiles, recorder,
    syscalls::Arch,
};
use tokio::signal::unix::{signal, SignalKind};

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
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
        Command::Run(args) => {
            privileges::check()?;
            let (cfg, cmd) = args.split();
            let (summary, code) = seccomp_tracer::run::run(cfg, cmd).await?;
            eprint!("{}", summary.text);
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
        }
        Command::Check(args) => {
            privileges::check()?;
            let summary = recorder::record(args.into_config()).await?;
            print!("{}", summary.text);
            if summary.refusals > 0 {
                return Ok(ExitCode::from(3));
            }
        }
        Command::Merge {
            profiles: paths,
            output,
            format,
        } => {
            let arch = Arch::host().ok_or_else(|| anyhow::anyhow!("unsupported architecture"))?;
            let mut loaded = Vec::new();
            for p in &paths {
                loaded.push(profiles::load(p)?);
            }
            let format = format.map(Into::into).unwrap_or(loaded[0].0);
            let merged = formats::merge(loaded.iter().map(|(_, p)| p));
            let name = output
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            recorder::write_json(&output, &formats::render(format, arch, &name, &merged))?;
            println!(
                "{}: {} syscalls allowed (union of {} profiles)",
                output.display(),
                merged.allowed.len(),
                paths.len()
            );
        }
        Command::Diff { a, b } => {
            let (_, pa) = profiles::load(&a)?;
            let (_, pb) = profiles::load(&b)?;
            print!(
                "{}",
                profiles::diff(&pa, &pb, &a.display().to_string(), &b.display().to_string())
            );
        }
        Command::Explain { profile } => {
            let arch = Arch::host().ok_or_else(|| anyhow::anyhow!("unsupported architecture"))?;
            let (_, p) = profiles::load(&profile)?;
            print!(
                "{}",
                profiles::explain(&p, arch, &profile.display().to_string())
            );
        }
        Command::Daemon {
            state_dir,
            socket,
            checkpoint,
            no_refusals,
        } => {
            privileges::check()?;
            daemon::serve(daemon::DaemonConfig {
                state_dir,
                socket: socket.path,
                checkpoint: std::time::Duration::from_secs(checkpoint.max(1)),
                refusals: !no_refusals,
            })
            .await?;
        }
        Command::Add {
            containers,
            labels,
            socket,
        } => {
            print_ok(request(&socket.path, &Request::Add { containers, labels }).await?);
        }
        Command::Remove { containers, socket } => {
            print_ok(request(&socket.path, &Request::Remove { containers }).await?);
        }
        Command::Status {
            json,
            watch,
            socket,
        } => loop {
            let Response::Status(status) = request(&socket.path, &Request::Status).await? else {
                anyhow::bail!("the daemon answered status with something else");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                if watch {
                    // Clear the screen and go home, then redraw.
                    print!("\x1b[2J\x1b[H");
                }
                print!("{}", render_status(&status));
            }
            if !watch {
                break;
            }
            let mut int = signal(SignalKind::interrupt())?;
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                _ = int.recv() => break,
            }
        },
        Command::Export {
            container,
            output,
            format,
            socket,
        } => {
            let req = Request::Export {
                container,
                format: format.name().into(),
            };
            let Response::Profile {
                doc,
                kubelet,
                summary,
            } = request(&socket.path, &req).await?
            else {
                anyhow::bail!("the daemon answered export with something else");
            };
            match output {
                Some(path) => {
                    recorder::write_json(&path, &doc)?;
                    if let Some(k) = kubelet {
                        recorder::write_json(&recorder::kubelet_path(&path), &k)?;
                    }
                    eprintln!("{summary} -> {}", path.display());
                }
                None => {
                    println!("{}", serde_json::to_string_pretty(&doc)?);
                    eprintln!("{summary}");
                }
            }
        }
        Command::Floor { programs } => {
            privileges::check()?;
            let arch = Arch::host().ok_or_else(|| anyhow::anyhow!("unsupported architecture"))?;
            let layout = bpf::KernelLayout::detect(arch)?;
            let _attached = bpf::attach_floor(&layout, &programs)?;
            let mut term = signal(SignalKind::terminate())?;
            let mut int = signal(SignalKind::interrupt())?;
            println!("floor program attached");
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_ok(r: Response) {
    if let Response::Ok { message } = r {
        println!("{message}");
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
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Every error's message already carries its cause: print it once.
            eprintln!("seccomp-tracer: {e}");
            ExitCode::FAILURE
        }
    }
}
