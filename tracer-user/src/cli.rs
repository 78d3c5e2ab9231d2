//! Command-line definitions (clap) and their translation into a validated [`Config`]: every
//! session option starts from the mode's defaults ([`Config::new`]) and is set here only.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{
    profile::formats::Format,
    record::{Config, Mode, Output, ProfileOptions},
    target::{self, engine::EngineKind, TargetSpec},
};

#[derive(Debug, Parser)]
#[command(
    name = "seccomp-tracer",
    version,
    about = "Learn minimal seccomp profiles for containers by watching their syscalls with eBPF"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record what containers (or cgroups) call until Ctrl-C/SIGTERM, then write profiles.
    Record(RecordArgs),
    /// Trace CMD and all its descendants from its first syscall (in a cgroup of its own), then
    /// write its profile; exits with CMD's exit status.
    Run(RunArgs),
    /// Watch running containers (or cgroups) under the profile they have and report, live,
    /// every call it refuses; writes nothing. Exits 3 if anything was refused.
    Check(CheckArgs),
    /// Union of profiles (replicas, several runs) in one file.
    Merge {
        /// Profiles of any format.
        #[arg(required = true, num_args = 2..)]
        profiles: Vec<PathBuf>,
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Default: the format of the first profile.
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// What one profile allows that the other does not.
    Diff {
        /// A profile of any format (`a` in --json).
        a: PathBuf,
        /// The profile to compare it with (`b` in --json).
        b: PathBuf,
        /// Write one JSON object: `a` and `b` (the two paths), `identical`, `allowed_by_both`
        /// (how many calls both allow), `only_in_a` and `only_in_b` (call names),
        /// `argument_rules_differ` (per call both allow with different rules: `name`, and its
        /// rule in `a` and in `b`: `any arguments` or `only ...`).
        #[arg(long)]
        json: bool,
    },
    /// A profile against Docker's default (moby's default.json, evaluated as dockerd does):
    /// each call it allows beyond it, and whether a capability (least privilege first) would
    /// make the default allow it, none would, or the default allows fewer argument values.
    Explain {
        profile: PathBuf,
        /// Write the verdicts as JSON (`beyond_default`: name, verdict, capabilities).
        #[arg(long)]
        json: bool,
        /// Evaluate Docker's `minKernel` rules for this kernel instead of the running one.
        #[arg(long, value_name = "MAJOR.MINOR", value_parser = kernel_version)]
        kernel: Option<crate::privileges::KernelVersion>,
    },
    /// One self-contained HTML page on a profile: its learning curve, its calls by what they
    /// do (who made each first, and when), what it allows beyond Docker's default, the calls
    /// refused while recording and their fixes, and the docker/podman/Kubernetes lines to use
    /// it. No script, nothing fetched: open it anywhere.
    Report {
        /// A profile file (any format; its `<stem>.why.json` is read too) when an existing
        /// regular file has this path; otherwise a container the daemon records (asked on
        /// --socket). A missing `*.json`/`*.yaml` is an error.
        #[arg(value_name = "PROFILE|CONTAINER")]
        target: String,
        /// The page (`-`: standard output). An existing file is replaced only if it is a
        /// report seccomp-tracer wrote.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Record containers all day, across their restarts and the daemon's own; control it with
    /// add, remove, status and export.
    Daemon {
        #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        #[command(flatten)]
        socket: SocketArg,
        /// Save the state every SECS (and on SIGTERM): a reboot loses at most this much.
        #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = seconds)]
        checkpoint: u64,
        /// Do not watch for calls the current profiles refuse: saves every syscall on the
        /// host a second tracepoint (see BENCHMARKS.md).
        #[arg(long)]
        no_refusals: bool,
        /// The engine whose containers it records; default: the one that answers, Docker
        /// first, then Podman, then a CRI runtime at its default socket.
        #[arg(long, value_enum, value_name = "ENGINE")]
        engine: Option<EngineKind>,
        /// The CRI runtime's socket, as crictl spells it (with --engine cri).
        #[arg(long, value_name = "URL")]
        runtime_endpoint: Option<String>,
        #[command(flatten)]
        guard: GuardArgs,
    },
    /// Start recording containers in the daemon: names or ids (ones not created yet: from
    /// their creation), or name patterns (`'web-*'`) and labels, which also take in matching
    /// containers created later, from their first syscall.
    Add {
        #[arg(value_name = "CONTAINER", required_unless_present = "labels", value_parser = container_pattern)]
        containers: Vec<String>,
        /// Containers carrying this label (`key=value` or `key`; repeatable: all must match).
        #[arg(long = "label", value_name = "KEY[=VALUE]")]
        labels: Vec<String>,
        /// The engine the containers are in: must be the daemon's (refused otherwise).
        #[arg(long, value_enum, value_name = "ENGINE")]
        engine: Option<EngineKind>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Stop recording containers in the daemon (what they learned can still be exported).
    Remove {
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// What the daemon has learned: per container, syscalls, the last new one and how long
    /// ago (learning has converged when that keeps growing), refusals, restarts, events.
    Status {
        #[arg(long)]
        json: bool,
        /// Redraw every 2 s until Ctrl-C.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// The profile of a container recorded by the daemon, as it stands; recording goes on.
    Export {
        container: String,
        /// Default: standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "docker")]
        format: Format,
        /// Instead of the learned profile: the profile the container runs under (its own
        /// --security-opt seccomp=FILE, or Localhost profile), in the form it is in force,
        /// changed only to allow every call it refused, whatever the arguments; prints what
        /// changed, as `diff` does.
        #[arg(long, conflicts_with = "format")]
        heal: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Print the completion script for SHELL on standard output.
    Completions {
        #[arg(value_enum)]
        shell: crate::shell::Shell,
    },
    /// Write the man pages (seccomp-tracer.1 and one per subcommand) into DIR, created if
    /// missing; replaces only man pages this tool generated.
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Benchmark helper: attach only the named benchmark programs (default: the empty one on
    /// sys_enter) until Ctrl-C/SIGTERM.
    #[command(hide = true)]
    Floor {
        #[arg(default_value = "floor")]
        programs: Vec<String>,
    },
}

pub const DEFAULT_STATE_DIR: &str = "/var/lib/seccomp-tracer";
pub const DEFAULT_SOCKET: &str = "/run/seccomp-tracer.sock";

/// `--socket`: shared by the daemon and its clients.
#[derive(Debug, Args)]
pub struct SocketArg {
    /// The daemon's control socket.
    #[arg(long = "socket", value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub path: PathBuf,
}

/// Guarding enforced profiles: shared by `check` and the daemon.
#[derive(Debug, Args)]
pub struct GuardArgs {
    /// Append one JSON object per line for each first sighting, refusal, (re)start and
    /// checkpoint to FILE (created 0600; only ever appended to a file of such lines), or `-`
    /// for standard output: for log shippers. Never slows recording: lines a stuck reader or a
    /// full disk cannot take are dropped and counted ({"event":"dropped","count":N}).
    #[arg(long, value_name = "FILE|-")]
    pub events: Option<PathBuf>,
    /// Run CMD with /bin/sh once per new refusal (a call, per container), in the background,
    /// at most 4 at a time and 60 s each. The details are in its environment, never in the
    /// command line: SECCOMP_TRACER_CONTAINER, _CONTAINER_ID, _SYSCALL, _ABI, _PROGRAM, _PID,
    /// _TIME, _PROFILE (own-profile, default, unconfined, unknown), _FIX and _EVENT (the JSON
    /// line).
    #[arg(long, value_name = "CMD")]
    pub alert_command: Option<String>,
}

/// What to trace: shared by `record` and `check`.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Docker container name or id (a unique id prefix is enough).
    #[arg(value_name = "CONTAINER", value_parser = container_name)]
    pub containers: Vec<String>,
    /// Trace a cgroup v2 directory instead (repeatable; e.g. a systemd unit).
    #[arg(long = "cgroup", value_name = "PATH", value_parser = cgroup_path)]
    pub cgroups: Vec<String>,
    /// Trace the cgroup that PID belongs to (repeatable).
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// The engine that runs the containers; default: whichever has them (Docker first).
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub engine: Option<EngineKind>,
    /// The CRI runtime's socket, as crictl spells it; default
    /// unix:///run/containerd/containerd.sock, then unix:///run/crio/crio.sock.
    #[arg(long, value_name = "URL")]
    pub runtime_endpoint: Option<String>,
}

impl TargetArgs {
    fn specs(&self) -> Vec<TargetSpec> {
        let mut targets: Vec<TargetSpec> = self
            .containers
            .iter()
            .cloned()
            .map(TargetSpec::Container)
            .collect();
        targets.extend(self.cgroups.iter().cloned().map(TargetSpec::Cgroup));
        targets.extend(self.pids.iter().copied().map(TargetSpec::Pid));
        targets
    }
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Profile file for one target, directory for several (<name>.json); default ./<name>.json
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Stop after SECS; default: until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub duration: Option<u64>,
    /// Leave calls refused by the current profile out of the learned one.
    #[arg(long)]
    pub exclude_refused: bool,
    /// Do not add the container runtime's own calls made after it installs the filter.
    #[arg(long)]
    pub no_runtime_baseline: bool,
    /// Restart each container once right after attaching, so the profile covers its startup.
    #[arg(long)]
    pub restart: bool,
    /// Record containers (or cgroups) that do not run yet from their creation.
    #[arg(long)]
    pub wait: bool,
    /// Rewrite the profiles every SECS while recording, so a crash loses little.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = seconds)]
    pub checkpoint: u64,
    /// Do not watch for calls the current profile refuses: saves every syscall on the host a
    /// second tracepoint (see BENCHMARKS.md).
    #[arg(long)]
    pub no_refusals: bool,
    /// Print the summary at the end as one JSON document (`targets`: name, profile, files,
    /// syscalls, allowed, argument_rules, refused, startup, first_sightings...; `kernel`:
    /// counters); the live lines go to standard error.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// How the profile is written: shared by `record` and `run`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Profile format.
    #[arg(long, value_enum, default_value = "docker")]
    pub format: Format,
    /// Profile whose default action logs (SCMP_ACT_LOG) instead of refusing: the next run
    /// shows in the kernel log what it misses instead of breaking.
    #[arg(long)]
    pub complain: bool,
    /// Allow personality, socket, clone and unshare with any argument, instead of only the
    /// values seen (and clone3 as such, instead of answering ENOSYS so libc uses clone).
    #[arg(long)]
    pub no_args: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub guard: GuardArgs,
    /// Stop after SECS; default: until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub duration: Option<u64>,
    /// Print the summary at the end as one JSON document (`targets`: name, profile, refused
    /// with each fix and first sighting); the live lines go to standard error.
    #[arg(long)]
    pub json: bool,
}

impl CheckArgs {
    pub fn into_config(self) -> Config {
        let mut cfg = Config::new(Mode::Check);
        cfg.targets = self.targets.specs();
        cfg.engine = self.targets.engine;
        cfg.runtime_endpoint = self.targets.runtime_endpoint.clone();
        cfg.duration = self.duration.map(Duration::from_secs);
        cfg.events = self.guard.events;
        cfg.alert_command = self.guard.alert_command;
        cfg
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Profile file; default ./<program>.json
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Leave calls refused by a filter CMD runs under out of the profile.
    #[arg(long)]
    pub exclude_refused: bool,
    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub cmd: Vec<String>,
}

impl ProfileArgs {
    fn options(&self) -> ProfileOptions {
        ProfileOptions {
            format: self.format,
            complain: self.complain,
            args: !self.no_args,
        }
    }
}

impl RunArgs {
    /// The recording part of `run` (its target is filled in by `run`), and the command.
    pub fn split(self) -> (Config, Vec<String>) {
        let mut cfg = Config::new(Mode::Run);
        cfg.output = self.output.map_or(Output::Default, Output::Path);
        cfg.include_refused = !self.exclude_refused;
        cfg.profile = self.profile.options();
        (cfg, self.cmd)
    }
}

impl RecordArgs {
    pub fn into_config(self) -> Config {
        let mut cfg = Config::new(Mode::Record);
        cfg.targets = self.targets.specs();
        cfg.engine = self.targets.engine;
        cfg.runtime_endpoint = self.targets.runtime_endpoint.clone();
        cfg.output = self.output.map_or(Output::Default, Output::Path);
        cfg.duration = self.duration.map(Duration::from_secs);
        cfg.include_refused = !self.exclude_refused;
        cfg.runtime_baseline = !self.no_runtime_baseline;
        cfg.restart = self.restart;
        cfg.wait = self.wait;
        cfg.checkpoint = Duration::from_secs(self.checkpoint);
        cfg.profile = self.profile.options();
        cfg.refusals = !self.no_refusals;
        cfg
    }
}

/// The longest `--duration` or `--checkpoint` taken: ten years.
pub const MAX_SECS: u64 = 10 * 366 * 86_400;

/// A kernel version for `explain --kernel`: `6.8` (or a whole release, `6.8.0-45-generic`).
fn kernel_version(s: &str) -> Result<crate::privileges::KernelVersion, String> {
    crate::privileges::parse_release(s).ok_or_else(|| format!("`{s}` is not MAJOR.MINOR (6.8)"))
}

/// A number of seconds, 1 to [`MAX_SECS`].
fn seconds(s: &str) -> Result<u64, String> {
    let n: u64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number of seconds"))?;
    match n {
        0 => Err("must be at least 1 second".into()),
        n if n > MAX_SECS => Err(format!("at most {MAX_SECS} seconds (ten years)")),
        n => Ok(n),
    }
}

fn container_name(s: &str) -> Result<String, String> {
    target::check_container_ref(s, false).map(|()| s.to_string())
}

fn container_pattern(s: &str) -> Result<String, String> {
    target::check_container_ref(s, true).map(|()| s.to_string())
}

fn cgroup_path(s: &str) -> Result<String, String> {
    target::check_cgroup_path(s).map(|()| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_flags() {
        let cli = Cli::parse_from([
            "seccomp-tracer",
            "record",
            "web",
            "db",
            "--cgroup",
            "/system.slice/x.service",
            "--pid",
            "42",
            "-o",
            "out",
            "--duration",
            "5",
            "--exclude-refused",
            "--restart",
            "--format",
            "oci",
            "--no-args",
            "--no-refusals",
        ]);
        let Command::Record(args) = cli.command else {
            panic!("not record");
        };
        let cfg = args.into_config();
        assert!(!cfg.refusals);
        assert_eq!(
            cfg.targets,
            [
                TargetSpec::Container("web".into()),
                TargetSpec::Container("db".into()),
                TargetSpec::Cgroup("/system.slice/x.service".into()),
                TargetSpec::Pid(42),
            ]
        );
        assert_eq!(cfg.duration, Some(Duration::from_secs(5)));
        assert!(!cfg.include_refused && cfg.runtime_baseline && cfg.restart && !cfg.wait);
        assert_eq!(cfg.profile.format, Format::Oci);
        assert!(!cfg.profile.complain && !cfg.profile.args);
        let Command::Record(args) = Cli::parse_from(["seccomp-tracer", "record", "web"]).command
        else {
            panic!("not record");
        };
        assert!(
            args.into_config().refusals,
            "refusal detection is on by default"
        );
    }

    #[test]
    fn bad_values_are_refused_by_the_parser() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|_| ());
        assert!(parse(&["st", "record", "web", "--duration", "0"]).is_err());
        assert!(parse(&["st", "record", "web", "--duration", "99999999999999999999"]).is_err());
        assert!(parse(&["st", "record", "web", "--duration", "9300000000000000000"]).is_err());
        assert!(parse(&["st", "record", "web", "--duration", "60"]).is_ok());
        assert!(parse(&["st", "record", ""]).is_err());
        assert!(parse(&["st", "record", "--cgroup", ""]).is_err());
        assert!(parse(&["st", "record", "--cgroup", "/"]).is_err());
        assert!(parse(&["st", "add", "../../etc/passwd"]).is_err());
        assert!(parse(&["st", "add", "web-*"]).is_ok());
        assert!(parse(&["st", "record", "web-*"]).is_err());
        assert!(parse(&["st", "daemon", "--checkpoint", "0"]).is_err());
    }

    /// The systemd unit starts the daemon with options this binary takes.
    #[test]
    fn systemd_unit_command_line_parses() {
        let unit = include_str!("../../contrib/seccomp-tracer.service");
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart");
        let mut argv: Vec<&str> = exec.split_whitespace().collect();
        argv[0] = "seccomp-tracer";
        let cli = Cli::try_parse_from(argv).expect("the unit's command line parses");
        let Command::Daemon {
            state_dir, socket, ..
        } = cli.command
        else {
            panic!("not the daemon");
        };
        assert_eq!(state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(socket.path, PathBuf::from(DEFAULT_SOCKET));
    }
}
