//! DER training throughput: loads an env plugin library at run time (the ALE plugin), builds
//! this Rainbow in-process through its exported root module, and trains one env with one
//! update per env step once the warm-up is recorded, as a study's scratch run does. Used by
//! `benches/der.sh`.
//!
//! ```text
//! der_train <env-plugin.so> <family:task> <total-steps> [key=value ...]   (task: a name or an id)
//!   seed=1  threads=1  algo=<TOML>  env=<TOML>
//! ```
//! Prints, last, `<steps/s> steps/s`: env steps (acting and one update each) over wall time,
//! counted from the first update, so that the warm-up of random-ish acting is not averaged in.

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use abi_stable::library::lib_header_from_path;
use abi_stable::std_types::RStr;
use metarl_algo_rainbow::RainbowPlugin;
use metarl_plugin_api::export::{HostLogger, PluginRoot, PluginRoot_Ref};
use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::driver::{self, Driver, MemoryReset};

extern "C" fn log_line(_level: u8, target: RStr<'_>, message: RStr<'_>) {
    eprintln!("[{target}] {message}");
}

fn main() -> Result<(), Box<dyn Error>> {
    // What the metarl host does at start (see metarl_plugin_kit::process).
    metarl_plugin_kit::process::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [lib, task, total, rest @ ..] = args.as_slice() else {
        return Err("usage: der_train <env-plugin.so> <family:task> <total-steps> [seed=N threads=N algo=TOML env=TOML]".into());
    };
    let (family, task) = task.split_once(':').ok_or("the task is family:name or family:id, e.g. atari:pong")?;
    let total: u64 = total.parse()?;
    let opt = |key: &str, default: &str| -> String {
        rest.iter().find_map(|a| a.strip_prefix(&format!("{key}="))).unwrap_or(default).to_string()
    };
    let seed: u64 = opt("seed", "1").parse()?;
    let threads: u32 = opt("threads", "1").parse()?;
    metarl_plugin_kit::process::limit_threads(threads);
    let (algo_cfg, env_cfg) = (opt("algo", ""), opt("env", ""));
    let logger = HostLogger { max_level: 3, log: log_line };

    let root = lib_header_from_path(Path::new(lib))?.init_root_module::<PluginRoot_Ref>()?;
    let descriptor = (root.init())(logger).into_result()?;
    let tasks = &descriptor.families.iter().find(|f| f.name.as_str() == family).ok_or("no such family")?.tasks;
    let task = match task.parse::<u64>() {
        Ok(id) => id,
        Err(_) => tasks.names.iter().position(|n| n.as_str() == task).ok_or("no such task in the family")? as u64,
    };
    let env = (root.new_env())(&EnvRequest {
        family: family.into(),
        tasks: vec![task].into(),
        num_envs: 1,
        trials: 1,
        seed,
        threads,
        config: env_cfg.into(),
    })
    .into_result()?;
    let spec = env.spec().into_result()?;

    let rainbow = PluginRoot::for_plugin::<RainbowPlugin>();
    (rainbow.init())(logger).into_result()?;
    let mut algo = (rainbow.new_algo())(&AlgoRequest {
        obs: spec.obs.clone(),
        action: spec.action.clone(),
        num_envs: 1,
        context_dim: 0,
        seed,
        device: "cpu".into(),
        threads,
        config: algo_cfg.into(),
    })
    .into_result()?;
    let info = algo.info().into_result()?;
    let plan = driver::default_plan(&info, &[task]);

    let mut d = Driver::new(env, &algo, seed, MemoryReset::Episode)?;
    let mut timed: Option<(Instant, u64)> = None;
    let mut returns: Vec<f32> = Vec::new();
    while d.env_steps < total {
        d.step(&mut algo, true, false)?;
        if d.env_steps >= info.learning_starts {
            let (start, from) = *timed.get_or_insert_with(|| (Instant::now(), d.env_steps));
            driver::update(&mut algo, &plan)?;
            returns.extend(d.take_episodes()?.iter().map(|e| e.ret));
            if d.env_steps % 1000 == 0 {
                let recent = &returns[returns.len().saturating_sub(10)..];
                eprintln!(
                    "steps {} | {:.1} steps/s | return(last 10 episodes) {:.1}",
                    d.env_steps,
                    (d.env_steps - from) as f64 / start.elapsed().as_secs_f64(),
                    recent.iter().sum::<f32>() / recent.len().max(1) as f32
                );
            }
        }
    }
    let (start, from) = timed.ok_or("the run ended before the warm-up: give more steps than learning_starts")?;
    println!("{:.1} steps/s", (d.env_steps - from) as f64 / start.elapsed().as_secs_f64());
    Ok(())
}
