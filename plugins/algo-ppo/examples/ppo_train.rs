//! A minimal trainer: loads an env plugin library at run time, builds this PPO in-process
//! through its exported root module, and trains with `metarl_plugin_api::driver` (act, step,
//! record, update) for a fixed number of env steps. Used by `benches/ppo.sh`.
//!
//! ```text
//! ppo_train <env-plugin.so> <family> <total-steps> [key=value ...]
//!   envs=64  seed=1  tasks=0..200 (empty: the env's default)  algo=<TOML>  env=<TOML>
//! ```
//! Prints one line per update and, last, `<steps/s> steps/s` (env steps over wall time since
//! the first step, as CleanRL's `SPS`).

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use abi_stable::library::lib_header_from_path;
use abi_stable::std_types::RStr;
use metarl_algo_ppo::PpoPlugin;
use metarl_plugin_kit::driver::{self, Driver, MemoryReset};
use metarl_plugin_api::export::{HostLogger, PluginRoot, PluginRoot_Ref};
use metarl_plugin_api::prelude::*;

extern "C" fn log_line(_level: u8, target: RStr<'_>, message: RStr<'_>) {
    eprintln!("[{target}] {message}");
}

fn parse_tasks(s: &str) -> Result<Vec<u64>, Box<dyn Error>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    if let Some((a, b)) = s.split_once("..") {
        return Ok((a.parse()?..b.parse()?).collect());
    }
    Ok(s.split(',').map(str::parse).collect::<Result<_, _>>()?)
}

fn main() -> Result<(), Box<dyn Error>> {
    // What the metarl host does at start (see metarl_plugin_api::process).
    metarl_plugin_kit::process::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [lib, family, total, rest @ ..] = args.as_slice() else {
        return Err("usage: ppo_train <env-plugin.so> <family> <total-steps> [envs=N seed=N threads=N tasks=A..B algo=TOML env=TOML]".into());
    };
    let total: u64 = total.parse()?;
    let opt = |key: &str, default: &str| -> String {
        rest.iter().find_map(|a| a.strip_prefix(&format!("{key}="))).unwrap_or(default).to_string()
    };
    let envs: u32 = opt("envs", "64").parse()?;
    let seed: u64 = opt("seed", "1").parse()?;
    // libtorch's intra-op threads, which the metarl host decides for the whole process.
    let threads: u32 = opt("threads", "2").parse()?;
    let tasks = parse_tasks(&opt("tasks", ""))?;
    let (algo_cfg, env_cfg) = (opt("algo", ""), opt("env", ""));
    // Info and above; RUST_LOG=debug adds the plugin's per-update timings.
    let max_level = if std::env::var("RUST_LOG").is_ok_and(|v| v.contains("debug")) { 4 } else { 3 };
    let logger = HostLogger { max_level, log: log_line };

    let root = lib_header_from_path(Path::new(lib))?.init_root_module::<PluginRoot_Ref>()?;
    (root.init())(logger).into_result()?;
    let env = (root.new_env())(&EnvRequest {
        family: family.as_str().into(),
        tasks: tasks.into(),
        num_envs: envs,
        trials: 1,
        seed,
        threads,
        config: env_cfg.into(),
    })
    .into_result()?;
    let spec = env.spec().into_result()?;

    let ppo = PluginRoot::for_plugin::<PpoPlugin>();
    (ppo.init())(logger).into_result()?;
    let mut algo = (ppo.new_algo())(&AlgoRequest {
        obs: spec.obs.clone(),
        action: spec.action.clone(),
        num_envs: envs,
        context_dim: 0,
        seed,
        device: "auto".into(),
        threads,
        config: algo_cfg.into(),
    })
    .into_result()?;
    let info = algo.info().into_result()?;
    let per_update = info.steps_per_update.max(1);

    let mut driver = Driver::new(env, &algo, seed, MemoryReset::Episode)?;
    let plan = UpdatePlan::on_policy(info.grad_steps);
    let start = Instant::now();
    let mut returns: Vec<f32> = Vec::new();
    while driver.env_steps < total {
        for _ in 0..per_update {
            driver.step(&mut algo, true, false)?;
        }
        let stats = driver::update(&mut algo, &plan)?;
        returns.extend(driver.take_episodes()?.iter().map(|e| e.ret));
        let recent = &returns[returns.len().saturating_sub(100)..];
        let mean = recent.iter().sum::<f32>() / recent.len().max(1) as f32;
        let get = |k: &str| stats.scalars.iter().find(|s| s.name.as_str() == k).map_or(f64::NAN, |s| s.value);
        println!(
            "steps {} | {:.1} steps/s | return(last 100) {mean:.2} | value_loss {:.3} entropy {:.3} approx_kl {:.4}",
            driver.env_steps,
            driver.env_steps as f64 / start.elapsed().as_secs_f64(),
            get("value_loss"),
            get("entropy"),
            get("approx_kl"),
        );
    }
    println!("{:.1} steps/s", driver.env_steps as f64 / start.elapsed().as_secs_f64());
    Ok(())
}
