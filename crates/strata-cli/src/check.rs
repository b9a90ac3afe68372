//! `strata check`

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use strata::Store;
use strata::check::{Outcome, Severity};

use crate::Format;

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Mend what can be mended.
    #[arg(long)]
    repair: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub(crate) fn run(root: &Path, args: CheckArgs) -> Result<ExitCode> {
    let report = strata::check::check(&Store::open(root)?, args.repair)?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report.findings {
            let severity = match f.severity {
                Severity::Leftover => "leftover",
                Severity::Damage => "damage",
            };
            let outcome = match f.outcome {
                Outcome::Repairable => "repairable with --repair",
                Outcome::Repaired => "repaired",
                Outcome::Manual => "not repairable automatically",
            };
            println!("{severity:<8} {}: {} ({}) [{outcome}]", f.kind, f.detail, f.path.display());
        }
        let damage =
            report.findings.iter().filter(|f| f.severity == Severity::Damage && f.outcome != Outcome::Repaired).count();
        let verdict = if report.is_clean() { "clean".to_owned() } else { format!("{damage} problem(s) left") };
        println!("{} layer(s) checked, {} finding(s): {verdict}", report.layers, report.findings.len());
    }
    Ok(if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
