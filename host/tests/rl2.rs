//! RL² learns to learn: on bandits whose best arm is the task (inferable only from reward),
//! after meta-training the agent's reward rises within an episode, with no gradient step.

mod common;
use abi_stable::std_types::RSlice;
use metarl::loader::{check, Plugin};
use metarl::registry::Registry;
use metarl::services::PhaseServices;
use metarl_plugin_api::algo::{AlgoBox, AlgoRequest};
use metarl_plugin_kit::driver::{Driver, MemoryReset};
use metarl_plugin_api::env::EnvRequest;
use metarl_plugin_api::meta::MetaContext;
use metarl_plugin_api::types::*;

use common::*;

const HORIZON: usize = 10;
const ENV_CONFIG: &str = "horizon = 10\nhigh = 0.9\nlow = 0.1\n";

fn load(package: &str, name: &str, kind: &str) -> Plugin {
    let reg = Registry::parse(std::path::Path::new("/t/registry.toml"), &entry(name, kind, &plugin(package))).unwrap();
    Plugin::load(&reg.entries[0]).unwrap()
}

/// Mean reward at each pull of an episode, over `episodes` episodes per env, acting from memory.
fn reward_by_pull(env_p: &Plugin, algo: &mut AlgoBox, episodes: usize) -> Vec<f64> {
    let req = EnvRequest { family: "bandit5".into(), tasks: Default::default(), num_envs: 16, trials: 1, seed: 99, threads: 1, config: ENV_CONFIG.into() };
    let mut d = Driver::new(env_p.new_env(&req).unwrap(), algo, 5, MemoryReset::Task).unwrap();
    let mut sums = vec![0.0; HORIZON];
    for step in 0..episodes * HORIZON {
        d.step(algo, false, false).unwrap();
        sums[step % HORIZON] += d.batch.reward.iter().map(|&r| r as f64).sum::<f64>();
    }
    sums.iter().map(|s| s / (episodes * 16) as f64).collect()
}

#[test]
fn rl2_reward_rises_within_an_episode_after_meta_training() {
    let env = load("metarl-example-bandit", "bandit", "env");
    let ppo = load("metarl-algo-ppo", "ppo", "algo");
    let rl2 = load("metarl-meta-rl2", "rl2", "meta");
    let config = "preset = \"cpu-small\"\nrecurrent = true\nlstm_hidden = 64\nnum_steps = 40\nnum_minibatches = 4\nlearning_rate = 0.001\nnormalize_reward = false\n";
    let req = AlgoRequest {
        obs: ObsSpace::vector(1),
        action: ActionSpace::discrete(5),
        num_envs: 16,
        context_dim: 0,
        seed: 3,
        device: "cpu".into(),
        threads: 1,
        config: config.into(),
    };
    let mut algo = ppo.new_algo(&req).unwrap();
    let before = reward_by_pull(&env, &mut algo, 30);

    let mut meta = rl2.new_meta(&meta_request(4, "trials = 1")).unwrap();
    let mut services = PhaseServices::new(&env, "bandit5", ENV_CONFIG.into(), Vec::new(), 1, None, Box::new(|_, _, _| Ok(true)));
    let ctx = MetaContext { host: services.handle(), algo: &mut algo, tasks: RSlice::from_slice(&[]), budget_env_steps: 120_000, num_envs: 16, seed: 1 };
    check("rl2", "pretrain", meta.pretrain(ctx)).unwrap();
    drop(services);

    let after = reward_by_pull(&env, &mut algo, 30);
    let early = |r: &[f64]| (r[0] + r[1]) / 2.0;
    let late = |r: &[f64]| r[HORIZON - 3..].iter().sum::<f64>() / 3.0;
    eprintln!("reward by pull before: {before:.2?}\nreward by pull after:  {after:.2?}");
    // A policy that does not learn within the episode pays the same at every pull (about
    // 0.1 + 0.8 / 5 = 0.26 when uniform). Meta-trained RL² explores first, then exploits.
    assert!((late(&before) - early(&before)).abs() < 0.15, "untrained: {before:.2?}");
    assert!(late(&after) > early(&after) + 0.2 && late(&after) > 0.55, "after meta-training: {after:.2?}");
}
