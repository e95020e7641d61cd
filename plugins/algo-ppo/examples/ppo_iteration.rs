//! Times full PPO iterations (rollout forwards + update) on synthetic 64x64x3 frames, without
//! an env, so the figure is the algorithm's cost alone (env stepping is ~1% of CleanRL's time).
//!
//! ```text
//! cargo run --release -p metarl-algo-ppo --example ppo_iteration -- [fp32|bf16] [iterations] [extra TOML]
//! ```
//! Default: the paper preset (64 envs x 256 steps, IMPALA 16-32-32), 2 threads, 1 iteration.

use std::time::Instant;

use metarl_algo_ppo::PpoAgent;
use metarl_plugin_api::abi_stable::std_types::{RSlice, RSliceMut};
use metarl_plugin_api::prelude::*;

fn main() -> Result<(), PluginError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let precision = args.first().cloned().unwrap_or_else(|| "fp32".into());
    let iterations: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let extra = args.get(2).cloned().unwrap_or_default();
    let config = format!("preset = \"paper\"\nprecision = \"{precision}\"\n{extra}");
    let n = 64usize;
    let mut agent = PpoAgent::new(&AlgoRequest {
        obs: ObsSpace::image(64, 64, 3),
        action: ActionSpace::discrete(15),
        num_envs: n as u32,
        context_dim: 0,
        seed: 1,
        device: "cpu".into(),
        threads: 2,
        config: config.clone().into(),
    })?;
    let steps = agent.info().steps_per_update as usize;
    let frame = 64 * 64 * 3;
    let mut lcg = 1u64;
    let mut next = || {
        lcg = lcg.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (lcg >> 33) as u32
    };
    // A pool of frames with random content, cycled through.
    let pool: Vec<Vec<u8>> = (0..8).map(|_| (0..n * frame).map(|_| next() as u8).collect()).collect();
    let (mut actions, mut extras) = (vec![0i32; n], vec![0f32; 2 * n]);
    let zeros = vec![0u8; n];
    let tasks = vec![0u64; n];
    println!("config: {}", config.replace('\n', "; "));
    for it in 0..iterations {
        let t0 = Instant::now();
        for t in 0..steps {
            let obs = &pool[t % pool.len()];
            agent.act(
                ActInput::observations(RSlice::from_slice(&[ArrayRef::new(obs.as_slice())]), false),
                ActOutput { actions: RSliceMut::from_mut_slice(&mut [ArrayMut::new(actions.as_mut_slice())]), extras: extras.as_mut_slice().into() },
            )?;
            let rewards: Vec<f32> = (0..n).map(|_| if next() % 50 == 0 { 10.0 } else { 0.0 }).collect();
            let terminated: Vec<u8> = rewards.iter().map(|&r| (r > 0.0) as u8).collect();
            let (obs_a, actions_a) = ([ArrayRef::new(obs.as_slice())], [ArrayRef::new(actions.as_slice())]);
            let next_a = [ArrayRef::new(pool[(t + 1) % pool.len()].as_slice())];
            agent.record(Transitions {
                obs: obs_a.as_slice().into(),
                actions: actions_a.as_slice().into(),
                extras: extras.as_slice().into(),
                rewards: rewards.as_slice().into(),
                terminated: terminated.as_slice().into(),
                truncated: zeros.as_slice().into(),
                next_obs: next_a.as_slice().into(),
                task: tasks.as_slice().into(),
                ..Default::default()
            })?;
        }
        let t1 = Instant::now();
        let stats = agent.update(&UpdatePlan::on_policy(agent.info().grad_steps))?;
        let (rollout, update) = ((t1 - t0).as_secs_f64(), t1.elapsed().as_secs_f64());
        let loss = stats.scalars.iter().find(|s| s.name.as_str() == "value_loss").map_or(f64::NAN, |s| s.value);
        println!(
            "iteration {it}: rollout {rollout:.1} s, update {update:.1} s, {:.0} steps/s (value_loss {loss:.3})",
            (steps * n) as f64 / (rollout + update)
        );
    }
    Ok(())
}
