//! The recording session, one owner for `record`, `run`, `check` and the daemon: its config
//! ([`config`]), its targets and their instances ([`targets`]), its lifecycle and event loop
//! ([`session`]), the live display ([`display`]) and where profiles go ([`sink`]). Nothing here
//! knows the daemon: it wraps a session through [`session::Driver`].

pub mod activity;
pub mod config;
pub mod display;
pub mod observers;
pub mod session;
pub mod sink;
pub mod standalone;
pub mod targets;

use thiserror::Error;

pub use config::{Config, Mode, Output, ProfileOptions};
pub use session::{Driver, Session};
pub use sink::Summary;
pub use standalone::{record, record_until, Profiles};

use crate::{baseline::BaselineError, bpf::BpfError, output::OutputError, target::TargetError};

#[derive(Debug, Error)]
pub enum RecordError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Bpf(#[from] BpfError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("runtime baseline: {0}")]
    Baseline(#[from] BaselineError),
    #[error("this CPU architecture ({0}) is not supported")]
    Arch(&'static str),
    #[error("nothing to record: name a container, --cgroup or --pid")]
    NoTargets,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Refused(String),
}
