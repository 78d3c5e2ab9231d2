//! Pure: what a session does, as one validated config. The command line (cli.rs) and the
//! daemon build it here, from [`Config::new`]'s defaults for their [`Mode`].

use std::{path::PathBuf, time::Duration};

use crate::{
    profile::formats::Format,
    target::{engine::EngineKind, TargetSpec},
};

/// What a session is for; matched wherever behaviour differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `record`: learn profiles of running (or coming) targets and write them.
    Record,
    /// `check`: report what the targets' current profiles refuse; write nothing.
    Check,
    /// `run -- CMD`: learn the profile of a command traced from its first call, in a cgroup of
    /// its own; calls made without a filter count too (no runtime sets it up).
    Run,
    /// The daemon: checkpoints save its state file, not profiles.
    Daemon { state_file: PathBuf },
}

impl Mode {
    /// Whether the session writes profile files.
    pub fn writes_profiles(&self) -> bool {
        matches!(self, Mode::Record | Mode::Run)
    }

    /// Whether calls made before a seccomp filter was installed belong in the profile.
    pub fn includes_setup(&self) -> bool {
        matches!(self, Mode::Run)
    }

    /// Whether a hang-up (SIGHUP) ends the session: it ends with its terminal, except the
    /// daemon's, which only saves its state.
    pub fn ends_on_hangup(&self) -> bool {
        matches!(self, Mode::Record | Mode::Check)
    }

    /// Whether Ctrl-C and SIGTERM end the session now. `run` forwards them to its command
    /// (as `timeout(1)` does) and ends when the command does.
    pub fn ends_on_signal(&self) -> bool {
        !matches!(self, Mode::Run)
    }
}

/// Where profiles go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// `./<name>.json`
    Default,
    /// `-o PATH`: a file for one target, a directory for several.
    Path(PathBuf),
}

/// How the profile documents are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileOptions {
    pub format: Format,
    /// Log what is not allowed instead of refusing it.
    pub complain: bool,
    /// Argument rules for the calls Docker's default filters by argument (off: `--no-args`).
    pub args: bool,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            format: Format::Docker,
            complain: false,
            args: true,
        }
    }
}

/// Everything a session needs, validated.
#[derive(Clone, Debug)]
pub struct Config {
    pub mode: Mode,
    pub targets: Vec<TargetSpec>,
    pub output: Output,
    pub duration: Option<Duration>,
    /// How often what was learned is saved while recording, so a crash loses little.
    pub checkpoint: Duration,
    /// Keep calls the current filter refused in the profile.
    pub include_refused: bool,
    /// Add the container runtime's own calls made after it installs the filter.
    pub runtime_baseline: bool,
    /// Restart each container once right after attaching.
    pub restart: bool,
    /// Record targets that do not run yet from their creation.
    pub wait: bool,
    pub profile: ProfileOptions,
    /// Name of the (single) target, instead of one derived from it.
    pub label: Option<String>,
    /// Detect calls the current filter refuses (one more tracepoint on every syscall).
    pub refusals: bool,
    /// The engine that names the containers; `None`: whichever has them (Docker first).
    pub engine: Option<EngineKind>,
    /// The CRI socket (`unix:///run/containerd/containerd.sock`), as crictl spells it.
    pub runtime_endpoint: Option<String>,
    /// `--events`: where one JSON object per event is appended (`-`: standard output).
    pub events: Option<PathBuf>,
    /// `--alert-command`: run with `sh -c` once per new refusal.
    pub alert_command: Option<String>,
}

/// How often a session saves what it learned, unless told otherwise.
pub const DEFAULT_CHECKPOINT: Duration = Duration::from_secs(30);

impl Config {
    /// The defaults of `mode`: what each subcommand does without options.
    pub fn new(mode: Mode) -> Self {
        let (runtime_baseline, wait) = match mode {
            Mode::Record => (true, false),
            Mode::Check | Mode::Run => (false, false),
            Mode::Daemon { .. } => (true, true),
        };
        Self {
            mode,
            targets: Vec::new(),
            output: Output::Default,
            duration: None,
            checkpoint: DEFAULT_CHECKPOINT,
            include_refused: true,
            runtime_baseline,
            restart: false,
            wait,
            profile: ProfileOptions::default(),
            label: None,
            refusals: true,
            engine: None,
            runtime_endpoint: None,
            events: None,
            alert_command: None,
        }
    }

    /// The state file of a daemon session.
    pub fn state_file(&self) -> Option<&PathBuf> {
        match &self.mode {
            Mode::Daemon { state_file } => Some(state_file),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_mode() {
        let record = Config::new(Mode::Record);
        assert!(record.runtime_baseline && !record.wait && record.refusals);
        assert!(record.mode.writes_profiles() && !record.mode.includes_setup());
        let check = Config::new(Mode::Check);
        assert!(!check.runtime_baseline && !check.mode.writes_profiles());
        let run = Config::new(Mode::Run);
        assert!(run.mode.includes_setup() && run.mode.writes_profiles());
        let daemon = Config::new(Mode::Daemon {
            state_file: "/s".into(),
        });
        assert!(daemon.wait && !daemon.mode.writes_profiles());
        assert!(!daemon.mode.ends_on_hangup() && record.mode.ends_on_hangup());
        assert!(!run.mode.ends_on_hangup() && !run.mode.ends_on_signal());
        assert!(record.mode.ends_on_signal() && daemon.mode.ends_on_signal());
        assert_eq!(daemon.state_file(), Some(&PathBuf::from("/s")));
        assert_eq!(record.state_file(), None);
    }
}
