//! `metarl report`: the tables and figures of finished run directories, rebuilt from their saved
//! curves (see [`crate::run::report`]).

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `metarl report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Finished run directories of one experiment. Several are merged: they may differ in their
    /// seeds only, and a curve that two of them hold must be the same in both. Seeds are taken
    /// in the order the directories first name them.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where to write the tables and figures (default: the first RUN_DIR, whose report files
    /// are rewritten; units, checkpoints, curves and config are never touched).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Runs `metarl report`.
pub fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    crate::run::report(&args.dirs, args.out.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `metarl status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// A run directory (finished, running or interrupted).
    #[arg(value_name = "RUN_DIR")]
    pub dir: PathBuf,
}

/// Runs `metarl status`: one line of counts, then one line per unit that is not done.
pub fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    use crate::run::UnitState;
    let (plan, rows) = crate::run::status(&args.dir)?;
    let count = |s: UnitState| rows.iter().filter(|r| r.state == s).count();
    let queued = match count(UnitState::Queued) {
        0 => String::new(),
        n => format!(", {n} queued in Slurm"),
    };
    println!(
        "{}: {} units: {} done, {} running, {} failed or interrupted, {} pending{queued}",
        plan.name,
        rows.len(),
        count(UnitState::Done),
        count(UnitState::Running),
        count(UnitState::Failed),
        count(UnitState::Pending)
    );
    for r in &rows {
        let word = match r.state {
            UnitState::Done => continue,
            UnitState::Running => "running",
            UnitState::Failed => "failed",
            UnitState::Pending => "pending",
            UnitState::Queued => "queued",
        };
        let mut line = format!("{word:<8} {}", r.name);
        let mut notes = Vec::new();
        if let Some(job) = &r.job {
            notes.push(format!("Slurm job {job}"));
        }
        if let Some(at) = r.checkpoint {
            notes.push(format!("checkpoint at {at} env steps"));
        }
        if let Some(log) = &r.log {
            notes.push(format!("log: {}", log.display()));
        }
        if !notes.is_empty() {
            line.push_str(&format!("  ({})", notes.join(", ")));
        }
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
