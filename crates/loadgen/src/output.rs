//! `loadgen report`: loads the run files of a benchmark and writes its
//! three outputs, `<name>.json` (the [`crate::report`] summary and every
//! run), `<name>.md` (its table) and `<name>.svg` (its [`crate::chart`]).

use std::path::PathBuf;

use anyhow::Context;

use crate::chart::chart;
use crate::report::{build, markdown};
use crate::scenario::RunReport;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Directory receiving `<name>.json`, `<name>.md` and `<name>.svg`.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// Base name of the outputs, usually the date.
    #[arg(long)]
    pub name: String,
    /// Free text describing the machine (cores, memory, CPU model).
    #[arg(long, default_value = "")]
    pub machine: String,
    /// Free text describing CPU pinning and other conditions.
    #[arg(long, default_value = "")]
    pub notes: String,
    /// Run reports written by `loadgen ... --json`.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
}

/// Loads the run files and writes the three outputs.
pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for path in &args.runs {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let run: RunReport =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        runs.push(run);
    }
    let report = build(&args.name, &args.machine, &args.notes, runs);
    std::fs::create_dir_all(&args.out_dir)?;
    let base = args.out_dir.join(&args.name);
    std::fs::write(
        base.with_extension("json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(base.with_extension("md"), markdown(&report))?;
    std::fs::write(base.with_extension("svg"), chart(&report))?;
    println!("wrote {}.json, .md and .svg", base.display());
    Ok(())
}
