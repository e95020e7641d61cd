//! Rollout plumbing: an env driven by an algo, batch by batch.
//!
//! Every meta-method (and the host's evaluation) needs the same loop: act, step, record, carry
//! the recurrent state and the previous action and reward, reset them where an episode (or an
//! RL² task) ends. It lives here once, as plain Rust over the FFI objects, so a meta plugin's
//! own code can read like its paper's pseudo-code. Nothing here crosses the boundary.

use abi_stable::std_types::RSlice;

use crate::algo::{ActInput, ActOutput, AlgoBox, Transitions, UpdatePlan, UpdateStats};
use crate::env::{EnvBox, EnvSpec, EpisodeStat, ResetBuffers, StepBuffers};
use crate::meta::MetaContext;
use crate::types::*;

fn ffi<T>(call: &str, r: PResult<T>) -> Result<T, PluginError> {
    r.into_result().map_err(|e| PluginError { kind: e.kind, message: format!("{call}: {}", e.message).into() })
}

/// When the recurrent state (and the previous action and reward) go back to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryReset {
    /// At every episode end (ordinary recurrent policies).
    Episode,
    /// Only when the env signals `task_end`: memory carries across the trials of one task (RL²).
    Task,
}

/// A batched env and everything needed to drive it with an algo.
pub struct Driver {
    env: EnvBox,
    /// The env's spaces and batch size.
    pub spec: EnvSpec,
    n: usize,
    state_dim: usize,
    memory_reset: MemoryReset,
    obs: ObsBuf,
    next_obs: ObsBuf,
    task: Vec<u64>,
    next_task: Vec<u64>,
    actions: ActionBuf,
    prev_actions: ActionBuf,
    prev_reward: Vec<f32>,
    first: Vec<u8>,
    state: Vec<f32>,
    state_before: Vec<f32>,
    extras: Vec<f32>,
    reward: Vec<f32>,
    terminated: Vec<u8>,
    truncated: Vec<u8>,
    success: Vec<u8>,
    task_end: Vec<u8>,
    /// Context rows handed to `act` (`num_envs * context_dim`, empty without context).
    pub context: Vec<f32>,
    /// Env steps taken so far (summed over envs).
    pub env_steps: u64,
}

impl Driver {
    /// Resets `env` with `seed` and prepares buffers sized for `algo`.
    pub fn new(mut env: EnvBox, algo: &AlgoBox, seed: u64, memory_reset: MemoryReset) -> Result<Self, PluginError> {
        let spec = ffi("spec", env.spec())?;
        let info = ffi("info", algo.info())?;
        let extras_dim = ffi("extras_dim", algo.extras_dim())? as usize;
        let n = spec.num_envs as usize;
        let state_dim = info.state_dim as usize;
        let mut obs = ObsBuf::zeros(&spec.obs, n);
        let mut task = vec![0; n];
        ffi("reset", env.reset(seed, ResetBuffers { obs: obs.as_mut(), task: task.as_mut_slice().into() }))?;
        Ok(Self {
            next_obs: ObsBuf::zeros(&spec.obs, n),
            next_task: task.clone(),
            actions: ActionBuf::zeros(&spec.action, n),
            prev_actions: ActionBuf::zeros(&spec.action, n),
            prev_reward: vec![0.0; n],
            first: vec![1; n],
            state: vec![0.0; n * state_dim],
            state_before: vec![0.0; n * state_dim],
            extras: vec![0.0; n * extras_dim],
            reward: vec![0.0; n],
            terminated: vec![0; n],
            truncated: vec![0; n],
            success: vec![0; n],
            task_end: vec![0; n],
            context: Vec::new(),
            env_steps: 0,
            obs,
            task,
            env,
            spec,
            n,
            state_dim,
            memory_reset,
        })
    }

    /// Number of envs.
    pub fn num_envs(&self) -> usize {
        self.n
    }

    /// Task of each current observation.
    pub fn tasks(&self) -> &[u64] {
        &self.task
    }

    /// One batched step: act, step the env, optionally record the transitions.
    pub fn step(&mut self, algo: &mut AlgoBox, record: bool, deterministic: bool) -> Result<(), PluginError> {
        if record && self.state_dim > 0 {
            self.state_before.copy_from_slice(&self.state);
        }
        ffi(
            "act",
            algo.act(
                ActInput {
                    obs: self.obs.as_ref(),
                    state: self.state.as_mut_slice().into(),
                    prev_action: self.prev_actions.as_ref(),
                    prev_reward: self.prev_reward.as_slice().into(),
                    first: self.first.as_slice().into(),
                    context: self.context.as_slice().into(),
                    deterministic,
                },
                ActOutput { actions: self.actions.as_mut(), extras: self.extras.as_mut_slice().into() },
            ),
        )?;
        ffi(
            "step",
            self.env.step(
                self.actions.as_ref(),
                StepBuffers {
                    obs: self.next_obs.as_mut(),
                    reward: self.reward.as_mut_slice().into(),
                    terminated: self.terminated.as_mut_slice().into(),
                    truncated: self.truncated.as_mut_slice().into(),
                    success: self.success.as_mut_slice().into(),
                    task_end: self.task_end.as_mut_slice().into(),
                    task: self.next_task.as_mut_slice().into(),
                },
            ),
        )?;
        if record {
            let state: RSlice<'_, f32> =
                if self.state_dim > 0 { self.state_before.as_slice().into() } else { RSlice::from_slice(&[]) };
            ffi(
                "record",
                algo.record(Transitions {
                    obs: self.obs.as_ref(),
                    actions: self.actions.as_ref(),
                    extras: self.extras.as_slice().into(),
                    rewards: self.reward.as_slice().into(),
                    terminated: self.terminated.as_slice().into(),
                    truncated: self.truncated.as_slice().into(),
                    next_obs: self.next_obs.as_ref(),
                    state,
                    task: self.task.as_slice().into(),
                }),
            )?;
        }
        self.advance();
        Ok(())
    }

    /// Carries the step's outputs over as the next step's inputs.
    fn advance(&mut self) {
        std::mem::swap(&mut self.obs, &mut self.next_obs);
        std::mem::swap(&mut self.task, &mut self.next_task);
        std::mem::swap(&mut self.prev_actions, &mut self.actions);
        self.prev_reward.copy_from_slice(&self.reward);
        for i in 0..self.n {
            let episode_end = self.terminated[i] | self.truncated[i];
            self.first[i] = episode_end;
            let forget = match self.memory_reset {
                MemoryReset::Episode => episode_end == 1,
                MemoryReset::Task => self.task_end[i] == 1,
            };
            if forget {
                self.state[i * self.state_dim..(i + 1) * self.state_dim].fill(0.0);
                self.prev_reward[i] = 0.0;
                match &mut self.prev_actions {
                    ActionBuf::Discrete(a) => a[i] = 0,
                    ActionBuf::Continuous(a) => {
                        let w = a.len() / self.n;
                        a[i * w..(i + 1) * w].fill(0.0);
                    }
                }
            }
        }
        self.env_steps += self.n as u64;
    }

    /// Episodes finished since the last call.
    pub fn take_episodes(&mut self) -> Result<Vec<EpisodeStat>, PluginError> {
        Ok(ffi("take_episodes", self.env.take_episodes())?.into_vec())
    }
}

/// Plain training on `ctx.tasks` with the base algorithm: collect `steps_per_update` steps per
/// env, update, report progress; until the budget is spent or the host says stop. This is
/// fine-tuning (and the from-scratch baseline) for every method whose adaptation is
/// "keep training the agent", and multi-task pretraining when `ctx.tasks` has many tasks.
pub fn train(ctx: &mut MetaContext<'_>, seed: u64) -> Result<u64, PluginError> {
    let info = ffi("info", ctx.algo.info())?;
    let env = ffi("make_env", ctx.host.make_env(ctx.tasks, ctx.num_envs, 1, seed))?;
    let mut driver = Driver::new(env, ctx.algo, seed, MemoryReset::Episode)?;
    let per_update = info.steps_per_update.max(1) as u64;
    while driver.env_steps < ctx.budget_env_steps {
        for _ in 0..per_update {
            driver.step(ctx.algo, true, false)?;
            if driver.env_steps >= ctx.budget_env_steps {
                break;
            }
        }
        let stats = update(ctx.algo, &UpdatePlan { tasks: Default::default(), samples_per_task: 0, grad_steps: 0, want_context_grad: false })?;
        if !ffi("progress", ctx.host.progress(ctx.algo, driver.env_steps, stats.scalars.as_slice().into()))? {
            break;
        }
    }
    Ok(driver.env_steps)
}

/// `algo.update(plan)` with the call named in errors.
pub fn update(algo: &mut AlgoBox, plan: &UpdatePlan) -> Result<UpdateStats, PluginError> {
    ffi("update", algo.update(plan))
}
