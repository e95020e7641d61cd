//! `metarl env bench`: env throughput through the plugin boundary.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use metarl_plugin_api::env::EnvRequest;
use metarl_plugin_api::types::PluginKind;

use crate::envrun::{self, call, RandomActions};
use crate::loader::Plugin;
use crate::registry::Registry;

/// Arguments of `metarl env bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Registry name of the env plugin.
    pub name: String,
    /// Tasks to sample from: FAMILY, FAMILY:N, FAMILY:A..B or FAMILY:a,b,c.
    #[arg(long)]
    pub task: String,
    /// Envs stepped in lockstep.
    #[arg(long, default_value_t = 64)]
    pub envs: u32,
    /// Total env steps to time (summed over envs), after a warm-up of 10%.
    #[arg(long, default_value_t = 100_000)]
    pub steps: u64,
    /// Seed for the env and the random actions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Plugin config overrides, as TOML (e.g. 'distribution_mode = "hard"').
    #[arg(long, default_value = "")]
    pub config: String,
}

/// Runs the benchmark; the last line printed is `<steps/s> steps/s`.
pub fn bench(registry: &Registry, args: &BenchArgs) -> anyhow::Result<ExitCode> {
    if args.envs == 0 {
        bail!("--envs must be at least 1");
    }
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let entry = registry.require(&args.name, PluginKind::ENV).map_err(anyhow::Error::msg)?;
    let plugin = Plugin::load(entry)?;
    let selection = plugin.resolve_tasks(&args.task)
        .map_err(|e| anyhow::anyhow!("plugin '{}': --task: {e}", plugin.name))?;
    let overrides: toml::Table = toml::from_str(&args.config).context("--config is not a TOML table")?;
    let req = EnvRequest {
        family: selection.family.as_str().into(),
        tasks: selection.tasks.clone().into(),
        num_envs: args.envs,
        trials: 1,
        seed: args.seed,
        threads: 1,
        config: plugin.config_with(&overrides)?.into(),
    };
    let name = plugin.name.as_str();
    let mut env = envrun::open(&plugin, &req)?;
    let mut actions = RandomActions::new(&env.spec.action, env.num_envs(), args.seed ^ 0x5eed);
    call(name, env.reset(args.seed))?;
    let iters = args.steps.div_ceil(args.envs as u64);
    for _ in 0..(iters / 10).max(1) {
        call(name, env.step(&actions.sample()))?;
    }
    call(name, env.take_episodes())?;
    let start = Instant::now();
    for _ in 0..iters {
        call(name, env.step(&actions.sample()))?;
    }
    let secs = start.elapsed().as_secs_f64();
    let episodes = call(name, env.take_episodes())?;
    let steps = iters * args.envs as u64;
    println!(
        "{} {} x{} ({}): {steps} steps in {secs:.3} s, {} episodes finished",
        plugin.name,
        args.task,
        args.envs,
        env.spec.obs,
        episodes.len()
    );
    println!("{:.1} steps/s", steps as f64 / secs);
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `metarl env leakage`.
#[derive(clap::Args, Debug)]
pub struct LeakageArgs {
    /// Registry name of the env plugin.
    pub name: String,
    /// Training tasks, e.g. coinrun:0..200.
    #[arg(long)]
    pub train: String,
    /// Held-out tasks, e.g. coinrun:200..220.
    #[arg(long)]
    pub test: String,
    /// Plugin config overrides, as TOML.
    #[arg(long, default_value = "")]
    pub config: String,
}

/// Prints how many held-out tasks leak; the last line is the summary.
pub fn leakage(registry: &Registry, args: &LeakageArgs) -> anyhow::Result<ExitCode> {
    let entry = registry.require(&args.name, PluginKind::ENV).map_err(anyhow::Error::msg)?;
    let plugin = Plugin::load(entry)?;
    let sel = |flag: &str, s: &str| {
        plugin.resolve_tasks(s).map_err(|e| anyhow::anyhow!("plugin '{}': --{flag}: {e}", plugin.name))
    };
    let (train, test) = (sel("train", &args.train)?, sel("test", &args.test)?);
    if train.family != test.family {
        bail!("--train and --test name different families ('{}' and '{}')", train.family, test.family);
    }
    if train.tasks.is_empty() || test.tasks.is_empty() {
        bail!("list the tasks to compare (e.g. {}:0..100), not a whole family", train.family);
    }
    if let Some(t) = test.tasks.iter().find(|t| train.tasks.contains(t)) {
        bail!("task {t} is in both --train and --test");
    }
    let overrides: toml::Table = toml::from_str(&args.config).context("--config is not a TOML table")?;
    let report = crate::leakage::check(&plugin, &train.family, &plugin.config_with(&overrides)?, &train.tasks, &test.tasks)?;
    println!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}
