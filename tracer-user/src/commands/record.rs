//! `record` and `check`: a session over running (or coming) containers and cgroups.

use std::process::ExitCode;

use crate::{
    cli::{CheckArgs, RecordArgs},
    privileges,
    record::{self, display},
};

/// `record`: writes one profile per target; fails if a target never ran.
pub async fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    privileges::check()?;
    let summary = record::record(args.into_config()).await?;
    display::print(&summary.text);
    if !summary.missing.is_empty() {
        anyhow::bail!(
            "no profile for {}: never seen running",
            summary.missing.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `check`: reports what the targets' profiles refuse; exits 3 if anything was.
pub async fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    privileges::check()?;
    let summary = record::record(args.into_config()).await?;
    display::print(&summary.text);
    Ok(if summary.refusals > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
