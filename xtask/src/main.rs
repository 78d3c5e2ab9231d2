//! Project tasks: `cargo xtask setup | images | demo | test | lint | syscall-tables |
//! refresh-default-profile`. Setup installs what is missing (idempotent); `demo` and `test` run
//! it first, so each works on a fresh machine.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

mod syscall_tables;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the eBPF toolchain pieces, Docker engine and test tools; start dockerd; set up
    /// Podman and a containerd with CRI beside it.
    Setup,
    /// Setup, then build the offline test images (and load them into Podman and containerd).
    Images,
    /// Setup, build, then learn a Redis profile end to end and prove it works.
    Demo,
    /// Setup, build, run every test: unit tests, then the end-to-end suite (root, BPF, Docker).
    Test {
        /// Only the tests whose name contains this.
        filter: Option<String>,
    },
    /// Setup, build, then measure the per-syscall overhead and write BENCHMARKS.md.
    Bench,
    /// cargo fmt --check and clippy.
    Lint,
    /// Regenerate tracer-user/src/syscalls/{x86_64,aarch64,i386}.rs from libseccomp's
    /// src/syscalls.csv (e.g. tracer-user/tests/reference/libseccomp/syscalls.csv).
    SyscallTables { csv: PathBuf },
    /// Replace the vendored copy of Docker's default seccomp profile
    /// (tracer-user/data/moby-default-seccomp.json) with the file at PATH: moby/profiles'
    /// seccomp/default.json, downloaded beforehand (this task does no network access).
    RefreshDefaultProfile {
        /// The new default.json.
        path: PathBuf,
    },
}

/// Where the embedded default profile lives, from the workspace root.
const DEFAULT_PROFILE: &str = "tracer-user/data/moby-default-seccomp.json";

/// Checks that `path` holds a Docker seccomp profile and replaces the vendored one with it.
fn refresh_default_profile(path: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let rules = doc["syscalls"].as_array().map_or(0, Vec::len);
    if !doc["defaultAction"].is_string() || rules == 0 {
        bail!(
            "{} is not a Docker seccomp profile (no defaultAction or no syscalls)",
            path.display()
        );
    }
    let dest = root().join(DEFAULT_PROFILE);
    let tmp = dest.with_extension("json.new");
    std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &dest).with_context(|| format!("replacing {}", dest.display()))?;
    println!(
        "{DEFAULT_PROFILE}: replaced ({rules} rules); update the version in \
         tracer-user/data/README.md and run `cargo test -p tracer-user --lib moby`"
    );
    Ok(())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn script(name: &str) -> Result<()> {
    run(Command::new("bash").arg(root().join("xtask/scripts").join(name)))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Docker and the toolchain, then the other engines the tests drive (Podman, containerd CRI).
fn setup() -> Result<()> {
    script("setup.sh")?;
    script("engines.sh")
}

/// The offline test images in Docker, then in Podman and containerd.
fn images() -> Result<()> {
    script("images.sh")?;
    script("images-engines.sh")
}

fn build() -> Result<()> {
    run(cargo().args(["build", "--package", "tracer-user", "--bins"]))
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Setup => setup(),
        Task::Images => {
            setup()?;
            images()
        }
        Task::Demo => {
            setup()?;
            images()?;
            build()?;
            script("demo.sh")
        }
        Task::Test { filter } => {
            setup()?;
            images()?;
            build()?;
            // Pure logic first: no root, BPF or Docker needed.
            run(cargo().args([
                "test",
                "--workspace",
                "--exclude",
                "tracer-ebpf",
                "--exclude",
                "e2e",
                // The CRI code generator: its output is committed.
                "--exclude",
                "cri-codegen",
            ]))?;
            let bin = root().join("target/debug/seccomp-tracer");
            let mut e2e = cargo();
            // Every test file of the e2e package (cargo runs their binaries one after another).
            e2e.args(["test", "--package", "e2e", "--tests", "--"]);
            if let Some(f) = filter {
                e2e.arg(f);
            }
            // One Docker engine and one set of kernel programs at a time.
            e2e.arg("--test-threads=1").env("SECCOMP_TRACER", bin);
            run(&mut e2e)
        }
        Task::Bench => {
            setup()?;
            images()?;
            build()?;
            // Attach and export times are user space's: measure the release build.
            run(cargo().args(["build", "--release", "--package", "tracer-user"]))?;
            script("bench.sh")
        }
        Task::SyscallTables { csv } => syscall_tables::generate(&root(), &csv),
        Task::RefreshDefaultProfile { path } => refresh_default_profile(&path),
        Task::Lint => {
            run(cargo().args(["fmt", "--all", "--check"]))?;
            run(cargo().args([
                "clippy",
                "--workspace",
                // The eBPF crate builds for the BPF target with nightly only.
                "--exclude",
                "tracer-ebpf",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        }
    }
}
