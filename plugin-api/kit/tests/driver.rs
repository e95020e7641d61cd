//! The driver's memory handling, with an in-process env and algo: RL² memory persists across
//! trials and is reset between tasks; ordinary memory is reset at every episode end; the
//! latest step's columns stay readable after the step.

use metarl_plugin_api::algo::{self, ActInput, ActOutput, Algo, AlgoInfo, Transitions, UpdatePlan, UpdateStats};
use metarl_plugin_api::env::{self, Env, EnvSpec, ResetBuffers, StepBuffers};
use metarl_plugin_api::types::*;
use metarl_plugin_kit::driver::{Driver, MemoryReset};

/// Episodes of 2 steps; a task lasts `trials` episodes; reward = step index within the episode;
/// the observation is the step index too, and the true final one goes to `final_obs`.
struct TwoStep {
    n: usize,
    trials: u32,
    t: Vec<u32>,
    trial: Vec<u32>,
}

impl Env for TwoStep {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            obs: ObsSpace::vector(1),
            action: ActionSpace::discrete(2),
            num_envs: self.n as u32,
            max_episode_steps: 2,
            caps: Caps::ENV_FINAL_OBS,
        }
    }
    fn reset(&mut self, _seed: u64, mut out: ResetBuffers<'_>) -> Result<(), PluginError> {
        out.task.iter_mut().for_each(|t| *t = 0);
        Ok(())
    }
    fn step(&mut self, _a: Arrays<'_>, mut out: StepBuffers<'_>) -> Result<(), PluginError> {
        for i in 0..self.n {
            self.t[i] += 1;
            let done = self.t[i] == 2;
            out.reward[i] = self.t[i] as f32;
            out.terminated[i] = done as u8;
            out.truncated[i] = 0;
            out.success[i] = 0;
            out.task_end[i] = 0;
            if done {
                out.final_obs[0].f32().unwrap()[i] = self.t[i] as f32;
                self.t[i] = 0;
                self.trial[i] += 1;
                if self.trial[i] == self.trials {
                    self.trial[i] = 0;
                    out.task_end[i] = 1;
                }
            }
            out.obs[0].f32().unwrap()[i] = self.t[i] as f32;
        }
        Ok(())
    }
}

type Log = std::sync::Arc<std::sync::Mutex<Vec<(f32, u8, f32)>>>;

/// A "recurrent" agent whose state counts the steps it has seen since the caller last reset
/// it; records env 0's (state before the step, terminal flag, final observation).
struct Counter {
    recorded: Log,
}

impl Algo for Counter {
    fn info(&self) -> AlgoInfo {
        AlgoInfo {
            caps: Caps::ON_POLICY | Caps::RECURRENT | Caps::DISCRETE,
            state_dim: 1,
            extras_dim: 0,
            param_count: 0,
            steps_per_update: 1,
            grad_steps: 1,
            batch_size: 2,
            learning_starts: 0,
        }
    }
    fn act(&mut self, mut input: ActInput<'_>, mut out: ActOutput<'_>) -> Result<(), PluginError> {
        input.state.iter_mut().for_each(|s| *s += 1.0);
        out.actions[0].i32().unwrap().fill(1);
        Ok(())
    }
    fn record(&mut self, batch: Transitions<'_>) -> Result<(), PluginError> {
        let final_obs = batch.final_obs[0].f32().unwrap()[0];
        self.recorded.lock().unwrap().push((batch.state[0], batch.terminated[0], final_obs));
        Ok(())
    }
    fn update(&mut self, _plan: &UpdatePlan) -> Result<UpdateStats, PluginError> {
        Ok(UpdateStats { scalars: Default::default(), context_grad: Default::default(), grad_steps: 1, samples: 0 })
    }
    fn params(&self) -> Result<Vec<f32>, PluginError> {
        Ok(Vec::new())
    }
    fn set_params(&mut self, _p: &[f32]) -> Result<(), PluginError> {
        Ok(())
    }
    fn save(&self) -> Result<Vec<u8>, PluginError> {
        Ok(Vec::new())
    }
    fn load(&mut self, _b: &[u8]) -> Result<(), PluginError> {
        Ok(())
    }
    fn reset_heads(&mut self, _seed: u64) -> Result<(), PluginError> {
        Ok(())
    }
    fn clear(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// Env 0's memory after each of `steps` steps, and what the algo recorded for env 0.
fn memory_trace(reset: MemoryReset, trials: u32, steps: usize) -> (Vec<f32>, Vec<(f32, u8, f32)>) {
    let env = env::into_ffi(Box::new(TwoStep { n: 2, trials, t: vec![0; 2], trial: vec![0; 2] }));
    let recorded = Log::default();
    let mut agent = algo::into_ffi(Box::new(Counter { recorded: Log::clone(&recorded) }));
    let mut d = Driver::new(env, &agent, 0, reset).unwrap();
    let trace = (0..steps)
        .map(|_| {
            d.step(&mut agent, true, false).unwrap();
            d.state()[0]
        })
        .collect();
    let rec = recorded.lock().unwrap().clone();
    (trace, rec)
}

#[test]
fn rl2_memory_persists_across_trials_and_resets_between_tasks() {
    // 3 trials of 2 steps: the memory counts 1..5, is cleared when the task ends at step 6.
    let (trace, recorded) = memory_trace(MemoryReset::Task, 3, 13);
    assert_eq!(trace, vec![1., 2., 3., 4., 5., 0., 1., 2., 3., 4., 5., 0., 1.]);
    // The recorded state is the one the action was chosen with; the learning episode ends
    // only with the task, so returns flow across the trials.
    let terminal: Vec<u8> = recorded.iter().map(|r| r.1).collect();
    assert_eq!(terminal, vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0]);
    let before: Vec<f32> = recorded.iter().take(8).map(|r| r.0).collect();
    assert_eq!(before, vec![0., 1., 2., 3., 4., 5., 0., 1.], "each row holds the memory the action was chosen from");
}

#[test]
fn ordinary_memory_resets_at_every_episode_end() {
    let (trace, recorded) = memory_trace(MemoryReset::Episode, 3, 6);
    assert_eq!(trace, vec![1., 0., 1., 0., 1., 0.]);
    assert_eq!(recorded.iter().map(|r| r.1).collect::<Vec<_>>(), vec![0, 1, 0, 1, 0, 1]);
    // Where an episode ended, the recorded final observation is its last (step 2), while the
    // next observation is already the next episode's first.
    assert!(recorded.iter().filter(|r| r.1 == 1).all(|r| r.2 == 2.0), "{recorded:?}");
}

#[test]
fn the_last_steps_columns_stay_readable_after_the_step() {
    let env = env::into_ffi(Box::new(TwoStep { n: 2, trials: 1, t: vec![0; 2], trial: vec![0; 2] }));
    let mut agent = algo::into_ffi(Box::new(Counter { recorded: Log::default() }));
    let mut d = Driver::new(env, &agent, 0, MemoryReset::Episode).unwrap();
    for step in 1..=4u32 {
        d.step(&mut agent, false, false).unwrap();
        let last = d.last();
        // The action taken and the inputs it was chosen with, not the next step's.
        assert_eq!(last.actions[0].i32().unwrap(), &[1, 1]);
        // Memory before the step: fresh at an episode's first step, one step in at its second.
        let expect_state = if step % 2 == 0 { 1.0 } else { 0.0 };
        assert_eq!(last.state, &[expect_state; 2][..], "step {step}");
        let expect_prev = if step % 2 == 0 { [1, 1] } else { [0, 0] };
        assert_eq!(last.prev_action[0].i32().unwrap(), &expect_prev, "step {step}");
        assert_eq!(last.rewards, &[((step - 1) % 2 + 1) as f32; 2][..]);
        assert_eq!(last.transitions().obs.len(), 1);
    }
}
