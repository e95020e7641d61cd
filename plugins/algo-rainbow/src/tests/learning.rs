//! Rainbow learns the toy gridworld: within a fixed step budget its training episodes, and
//! greedy noise-off evaluation episodes afterwards, reach the goal far more often than a
//! uniformly random policy on the same envs.
//!
//! Gridworld `size = 4` in 76x76 frames (16-step time limit, reward 1 at the goal), task 0,
//! 4 envs, 2500 steps per env (10,000 transitions, 2,450 updates), one libtorch thread.
//! The configuration is [`SMALL`] (all 51 atoms and every Rainbow part; hidden 64, n = 3,
//! target period 100, warm-up 200) with Adam 2.5e-4 and NoisyNet σ₀ = 0.5 (the NoisyNet
//! paper's value): with DER's 1e-4 and σ₀ = 0.1 the near-deterministic start policy got stuck
//! (no-op loops) on 2 of 3 seeds at this budget (returns 0.005, 0.99, and 0.46 / 0.12 with
//! 2.5e-4).
//!
//! Measured on the project's 2-core machine: random 0.385 (last 200 episodes); Rainbow 1.000
//! (training, last 200 episodes) and 1.000 (greedy, 200 episodes) with seeds 11 and 12;
//! about 35 s. At 1500 steps seeds 11-15 gave 1.000, 0.760, 0.990, 1.000, 0.960 (training)
//! and 1.000, 0.210, 1.000, 1.000, 0.945 (greedy); two tasks at 1500 steps 0.83, 0.67, 0.39.

use super::common::*;

const ENVS: u32 = 4;
const TASKS: &[u64] = &[0];
const STEPS: usize = 2500;
const LAST: usize = 200;

#[test]
fn rainbow_beats_random_on_gridworld() {
    let mut dummy = agent(ENVS, 0, 0, SMALL);
    let mut rand_loop = Loop::new(&env_request(ENVS, TASKS, 7), 1, 0);
    let mut s = 3u64;
    for _ in 0..STEPS {
        rand_loop.step(&mut dummy, Some(&mut s), false);
    }
    let random_return = mean(&rand_loop.returns[rand_loop.returns.len() - LAST..]);

    let config = format!("{SMALL}\nlearning_rate = 2.5e-4\nnoisy_std = 0.5");
    let mut a = agent(ENVS, 0, 11, &config);
    let mut lp = Loop::new(&env_request(ENVS, TASKS, 7), 1, 0);
    let started = std::time::Instant::now();
    let mut recorded = 0;
    let losses = lp.train(&mut a, STEPS, &mut recorded, TASKS);
    assert!(lp.returns.len() >= LAST, "only {} episodes finished", lp.returns.len());
    let train_return = mean(&lp.returns[lp.returns.len() - LAST..]);
    // Greedy evaluation with the noise off, on envs with another seed.
    let mut ev = Loop::new(&env_request(ENVS, TASKS, 8), 2, 0);
    while ev.returns.len() < LAST {
        ev.play(&mut a, Policy::Greedy, false);
    }
    let greedy_return = mean(&ev.returns[..LAST]);
    eprintln!(
        "gridworld: random {random_return:.3}, rainbow {train_return:.3} training, {greedy_return:.3} greedy \
         (last {LAST} episodes; {} updates, {:.1} s)",
        losses.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(random_return < 0.5, "random baseline unexpectedly strong: {random_return:.3}");
    assert!(train_return > 0.8, "rainbow reached only {train_return:.3} in training (random {random_return:.3})");
    assert!(greedy_return > 0.8, "greedy rainbow reached only {greedy_return:.3} (random {random_return:.3})");
}
