//! `record` and `check`: a session over running (or coming) containers and cgroups.

use std::process::ExitCode;

use crate::{
    cli::{CheckArgs, RecordArgs},
    output, privileges,
    record::{self, display},
};

/// The end-of-session summary: words, or one JSON document (`--json`).
fn print_summary(summary: &record::Summary, json: bool) -> anyhow::Result<()> {
    if json {
        display::print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&summary.json)?
        ));
    } else {
        display::print(&summary.text);
    }
    Ok(())
}

/// `record`: writes one profile per target; fails if a target never ran.
pub async fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    privileges::check()?;
    let json = args.json;
    if json {
        display::live_to_stderr();
    }
    let summary = record::record(args.into_config()).await?;
    print_summary(&summary, json)?;
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
    let json = args.json;
    let events_out = args.guard.events.as_deref().is_some_and(output::is_stdout);
    if json && events_out {
        anyhow::bail!("--json and --events - both want standard output: give --events a file");
    }
    privileges::check()?;
    if json || events_out {
        // Standard output takes the summary alone, or the events alone.
        display::live_to_stderr();
    }
    let summary = record::record(args.into_config()).await?;
    if events_out {
        display::warn_plain(summary.text.trim_end());
    } else {
        print_summary(&summary, json)?;
    }
    Ok(if summary.refusals > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
