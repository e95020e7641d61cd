//! Command-line interface: clap definitions and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::registry::{Registry, RegistryError};

mod env;
mod plugins;
mod report;

/// metarl: multi-task pretraining, fine-tuning and meta-RL over plugins loaded at run time.
#[derive(Parser, Debug)]
#[command(name = "metarl", version, about)]
pub struct Cli {
    /// The plugin registry.
    #[arg(long, global = true, default_value = "registry.toml", value_name = "PATH")]
    pub registry: PathBuf,
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The default log filter for the chosen verbosity.
    pub fn log_filter(&self) -> &'static str {
        match self.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    }
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Inspect the plugins named in the registry.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Work with env plugins directly.
    #[command(subcommand)]
    Env(EnvCommand),
    /// Pretrain, adapt to held-out tasks, compare with training from scratch; write metrics,
    /// checkpoints, a summary table and plots into a run directory.
    Run(RunArgs),
    /// Rebuild the tables and figures of finished run directories from their saved curves,
    /// without running anything; several directories of one experiment (say, its seeds run as
    /// separate jobs) are merged into one report.
    Report(report::ReportArgs),
    /// Show where each unit of a run directory stands: done, running, failed or pending.
    Status(report::StatusArgs),
    /// Internal: run one unit of a run directory that `metarl run` prepared and holds (the
    /// worker process `metarl run` starts for each unit; see host/src/executor.rs).
    #[command(hide = true)]
    Worker(WorkerArgs),
}

/// Arguments of `metarl run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The experiment file (see examples/).
    pub experiment: PathBuf,
    /// Run directory (default: runs/<experiment name>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue an interrupted run in its existing directory; finished work is kept.
    #[arg(long)]
    pub resume: bool,
    /// Only validate: resolve plugins, tasks and capabilities, check leakage, print the plan.
    #[arg(long)]
    pub check: bool,
    /// Units to run at once, each in its own worker process (default: the available cores
    /// divided by the experiment's `threads`). Results do not depend on it.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Where the units run: `local` (worker processes on this machine, `--jobs` at a time) or
    /// `slurm` (job arrays submitted with sbatch; the run directory must be on a filesystem
    /// the nodes share).
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    pub executor: Executor,
    /// Minutes between a unit's mid-phase checkpoints, where its meta plugin takes them
    /// (mt, reptile, rl2, and the scratch baseline): an interrupted or crashed unit continues from
    /// its last one. Stopping (Ctrl-C, SIGTERM, Slurm's warning) always takes one.
    #[arg(long, value_name = "MINUTES", default_value_t = 30.0, value_parser = minutes)]
    pub checkpoint_every: f64,
    /// With `--resume`: units stopped or killed mid-phase start again from their beginning,
    /// giving the bytes of an uninterrupted run, instead of continuing from their mid-phase
    /// checkpoints (which are discarded).
    #[arg(long, requires = "resume")]
    pub restart_unfinished: bool,
    /// With `--executor slurm`: write the job scripts into RUN_DIR/slurm/ and submit nothing.
    #[arg(long, requires = "executor")]
    pub dry_run: bool,
    /// With `--executor slurm`: a job option over the experiment's `[slurm]` table, as
    /// KEY=VALUE (partition, time, cpus_per_task, mem, gres, account; extra and setup append
    /// a line). Repeatable.
    #[arg(long = "slurm", value_name = "KEY=VALUE")]
    pub slurm: Vec<String>,
}

/// Where `metarl run` runs the units.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Executor {
    /// Worker processes on this machine.
    Local,
    /// Job arrays on a Slurm cluster.
    Slurm,
}

/// Arguments of the hidden `metarl worker`: what `metarl run` passes to each worker.
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// The experiment file of the run.
    pub experiment: PathBuf,
    /// The run directory (prepared and locked by the parent `metarl run`).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The unit to run, by its id (the name of its files, e.g. `pretrain-...-1a2b3c4d`).
    #[arg(long, value_name = "ID", required_unless_present = "report", conflicts_with = "report")]
    pub unit: Option<String>,
    /// Run no unit: write the run's report, if every unit is done (the Slurm executor's last
    /// job).
    #[arg(long)]
    pub report: bool,
    /// Where to write the env steps done so far, for the parent's progress bar.
    #[arg(long, value_name = "FILE")]
    pub progress: Option<PathBuf>,
    /// Minutes between mid-phase checkpoints.
    #[arg(long, value_name = "MINUTES", default_value_t = 30.0, value_parser = minutes)]
    pub checkpoint_every: f64,
}

/// A non-negative number of minutes.
fn minutes(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(m) if m.is_finite() && m >= 0.0 => Ok(m),
        _ => Err(format!("'{s}' is not a number of minutes (0 or more)")),
    }
}

/// `metarl plugins ...`
#[derive(Subcommand, Debug)]
pub enum PluginsCommand {
    /// Print name, kind, version, capabilities and task families of every plugin.
    List,
    /// Load and validate every registry entry; exit 0 only if all load.
    Check,
}

/// `metarl env ...`
#[derive(Subcommand, Debug)]
pub enum EnvCommand {
    /// Step an env plugin with random actions and print its throughput (last line: steps/s).
    Bench(env::BenchArgs),
    /// Count held-out tasks whose first frame is identical to a training task's.
    Leakage(env::LeakageArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // A report needs no plugins: it reads run directories only, wherever they were copied to.
    if let Command::Report(args) = &cli.command {
        return report::report(args);
    }
    if let Command::Status(args) = &cli.command {
        return report::status(args);
    }
    let registry = Registry::load(&cli.registry).map_err(|e| match e {
        RegistryError::Read { .. } if cli.registry.is_relative() && !cli.registry.exists() => anyhow::anyhow!(
            "{e} (run metarl from the directory that holds the registry, or pass --registry PATH)"
        ),
        e => e.into(),
    })?;
    match cli.command {
        Command::Plugins(PluginsCommand::List) => plugins::list(&registry),
        Command::Plugins(PluginsCommand::Check) => plugins::check(&registry),
        Command::Env(EnvCommand::Bench(args)) => env::bench(&registry, &args),
        Command::Env(EnvCommand::Leakage(args)) => env::leakage(&registry, &args),
        Command::Report(_) | Command::Status(_) => unreachable!("answered before the registry is loaded"),
        Command::Run(args) => {
            let (plan, plugins) = crate::experiment::Plan::load(&args.experiment, &registry)?;
            check_leakage(&plan, &plugins, &args.experiment)?;
            if args.check {
                let units = crate::run::count_units(&plan);
                println!("{}: ok: {} panel(s), {} method(s) + {}, {} seed(s), {} held-out task(s): {units} units",
                    args.experiment.display(), plan.panels.len(), plan.methods.len(),
                    if plan.scratch { "scratch" } else { "no scratch" }, plan.seeds.len(), plan.test_tasks.len());
                return Ok(ExitCode::SUCCESS);
            }
            let out = args.out.clone().unwrap_or_else(|| plan.default_out());
            let launch = crate::executor::Launch {
                registry: cli.registry.clone(),
                verbose: cli.verbose,
                experiment: args.experiment.clone(),
                checkpoint_every: args.checkpoint_every,
            };
            match args.executor {
                Executor::Local => {
                    if args.dry_run || !args.slurm.is_empty() {
                        anyhow::bail!("--dry-run and --slurm only apply with --executor slurm");
                    }
                    crate::run::run(&plan, &out, args.resume, args.restart_unfinished, args.jobs.map(|j| j as usize), &launch)?;
                }
                Executor::Slurm => {
                    if args.jobs.is_some() {
                        anyhow::bail!("--jobs applies to the local executor; Slurm runs as many units at once as it schedules");
                    }
                    let options = plan.slurm.with_overrides(&args.slurm)?;
                    let submit = crate::slurm::Submit {
                        out: &out,
                        resume: args.resume,
                        dry_run: args.dry_run,
                        restart_unfinished: args.restart_unfinished,
                        launch: &launch,
                        options,
                    };
                    crate::slurm::submit(&plan, &submit)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(args) => {
            crate::executor::name_worker_process();
            // The parent checked leakage; the worker checks that its plan is the run's.
            let (plan, plugins) = crate::experiment::Plan::load(&args.experiment, &registry)?;
            match &args.unit {
                Some(unit) => {
                    crate::executor::catch_interrupts();
                    let every = std::time::Duration::from_secs_f64(args.checkpoint_every * 60.0);
                    match crate::run::work(&plan, &plugins, &args.out, unit, args.progress.clone(), every) {
                        Err(e) if e.downcast_ref::<crate::run::Interrupted>().is_some() => {
                            eprintln!("{e}");
                            return Ok(ExitCode::from(crate::executor::EXIT_INTERRUPTED));
                        }
                        r => r?,
                    }
                }
                None => crate::run::report_when_done(&plan, &args.out)?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Applies the experiment's leakage policy to every panel, before anything is written.
fn check_leakage(plan: &crate::experiment::Plan, plugins: &crate::experiment::Plugins, file: &std::path::Path) -> anyhow::Result<()> {
    use crate::experiment::Leakage;
    if plan.leakage == Leakage::Off {
        return Ok(());
    }
    for panel in &plan.panels {
        // Each panel against the held-out tasks it adapts to (a split's: its own one).
        let tests: Vec<u64> = (0..plan.test_tasks.len()).filter(|&t| panel.adapts_to(t)).map(|t| plan.test_tasks[t]).collect();
        let report = crate::leakage::check(&plugins.env, &plan.family, &plan.env_config, &panel.tasks, &tests)?;
        if report.leaked.is_empty() {
            continue;
        }
        let msg = format!("{}: env.train '{}': {}", file.display(), panel.selector, report.summary());
        match plan.leakage {
            Leakage::Refuse => anyhow::bail!("{msg} (env.leakage = \"refuse\"; choose other held-out tasks or set it to \"warn\")"),
            _ => log::warn!("{msg}"),
        }
    }
    Ok(())
}
