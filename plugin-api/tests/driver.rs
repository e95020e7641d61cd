//! The rollout driver's memory handling, with an in-process env and algo: RL² memory persists
//! across trials and is reset between tasks; ordinary memory is reset at every episode end.

use metarl_plugin_api::algo::{self, ActInput, ActOutput, Algo, AlgoInfo, Transitions, UpdatePlan, UpdateStats};
use metarl_plugin_api::driver::{Driver, MemoryReset};
use metarl_plugin_api::env::{self, Env, EnvSpec, ResetBuffers, StepBuffers};
use metarl_plugin_api::types::*;

/// Episodes of 2 steps; a task lasts `trials` episodes; reward = step index within the episode.
struct TwoStep {
    n: usize,
    trials: u32,
    t: Vec<u32>,
    trial: Vec<u32>,
}

impl Env for TwoStep {
    fn spec(&self) -> EnvSpec {
        EnvSpec { obs: ObsSpace::vector(1), action: ActionSpace::discrete(2), num_envs: self.n as u32, max_episode_steps: 2 }
    }
    fn reset(&mut self, _seed: u64, mut out: ResetBuffers<'_>) -> Result<(), PluginError> {
        out.task.iter_mut().for_each(|t| *t = 0);
        Ok(())
    }
    fn step(&mut self, _a: ActionsRef<'_>, mut out: StepBuffers<'_>) -> Result<(), PluginError> {
        for i in 0..self.n {
            self.t[i] += 1;
            let done = self.t[i] == 2;
            out.reward[i] = self.t[i] as f32;
            out.terminated[i] = done as u8;
            out.truncated[i] = 0;
            out.success[i] = 0;
            out.task_end[i] = 0;
            if done {
                self.t[i] = 0;
                self.trial[i] += 1;
                if self.trial[i] == self.trials {
                    self.trial[i] = 0;
                    out.task_end[i] = 1;
                }
            }
        }
        Ok(())
    }
}

/// A "recurrent" agent whose state counts the steps it has seen since the caller last reset it.
struct Counter {
    recorded: std::sync::Arc<std::sync::Mutex<Vec<(f32, u8)>>>,
}

impl Algo for Counter {
    fn info(&self) -> AlgoInfo {
        AlgoInfo { caps: Caps::ON_POLICY | Caps::RECURRENT | Caps::DISCRETE, state_dim: 1, param_count: 0, steps_per_update: 1 }
    }
    fn extras_dim(&self) -> u32 {
        0
    }
    fn act(&mut self, mut input: ActInput<'_>, mut out: ActOutput<'_>) -> Result<(), PluginError> {
        input.state.iter_mut().for_each(|s| *s += 1.0);
        if let ActionsMut::Discrete(a) = &mut out.actions {
            a.iter_mut().for_each(|a| *a = 1);
        }
        Ok(())
    }
    fn record(&mut self, batch: Transitions<'_>) -> Result<(), PluginError> {
        let mut r = self.recorded.lock().unwrap();
        r.extend(batch.state.iter().zip(batch.terminated.iter()).step_by(2).map(|(s, t)| (*s, *t)));
        Ok(())
    }
    fn update(&mut self, _plan: &UpdatePlan) -> Result<UpdateStats, PluginError> {
        Ok(UpdateStats { scalars: Default::default(), context_grad: Default::default() })
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

/// Env 0's memory after each of `steps` steps, and what the algo recorded for env 0:
/// (state before the step, terminal flag).
fn memory_trace(reset: MemoryReset, trials: u32, steps: usize) -> (Vec<f32>, Vec<(f32, u8)>) {
    let env = env::into_ffi(Box::new(TwoStep { n: 2, trials, t: vec![0; 2], trial: vec![0; 2] }));
    let recorded = std::sync::Arc::default();
    let mut agent = algo::into_ffi(Box::new(Counter { recorded: std::sync::Arc::clone(&recorded) }));
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
}
