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

/// A failed call on an env or algo object: which call, and the plugin's error.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFailed {
    /// The call, e.g. `step`.
    pub call: &'static str,
    /// The plugin's error.
    pub error: PluginError,
}

impl std::fmt::Display for CallFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", self.call, self.error)
    }
}

impl std::error::Error for CallFailed {}

impl From<CallFailed> for PluginError {
    fn from(e: CallFailed) -> Self {
        PluginError { kind: e.error.kind, message: format!("{} failed: {}", e.call, e.error.message).into() }
    }
}

fn ffi<T>(call: &'static str, r: PResult<T>) -> Result<T, CallFailed> {
    r.into_result().map_err(|error| CallFailed { call, error })
}

/// A stream of seeds (SplitMix64): meta-methods draw task choices and env seeds from it, and
/// save its state with their own so that a resumed run draws the same ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedStream(u64);

impl SeedStream {
    /// A stream starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// The state, for a checkpoint.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }

    /// Restores [`SeedStream::to_bytes`]; `what` names the owner in the error.
    pub fn from_bytes(what: &str, bytes: &[u8]) -> Result<Self, PluginError> {
        let b: [u8; 8] = bytes.try_into().map_err(|_| PluginError::invalid(format!("{what} state is 8 bytes, got {}", bytes.len())))?;
        Ok(Self(u64::from_le_bytes(b)))
    }
}

/// When the recurrent state (and the previous action and reward) go back to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryReset {
    /// At every episode end (ordinary recurrent policies).
    Episode,
    /// Only when the env signals `task_end`: memory carries across the trials of one task (RL²).
    Task,
}

/// A batched env with the buffers its outputs land in.
///
/// The env writes each step's observations into a spare buffer which is then swapped in, so
/// the observations an action was taken in stay available ([`EnvBatch::prev_obs`]) without a
/// copy: what a transition needs.
pub struct EnvBatch {
    env: EnvBox,
    /// The env's spaces and batch size.
    pub spec: EnvSpec,
    /// Current observations (after the latest reset or step).
    pub obs: ObsBuf,
    spare_obs: ObsBuf,
    /// Task of each current observation.
    pub task: Vec<u64>,
    spare_task: Vec<u64>,
    /// Rewards of the latest step.
    pub reward: Vec<f32>,
    /// Terminal flags of the latest step.
    pub terminated: Vec<u8>,
    /// Truncation flags of the latest step.
    pub truncated: Vec<u8>,
    /// Success flags of the latest step.
    pub success: Vec<u8>,
    /// End-of-task flags of the latest step (last trial of a task finished).
    pub task_end: Vec<u8>,
}

impl EnvBatch {
    /// Wraps `env`, sizing buffers from its spec.
    pub fn new(env: EnvBox) -> Result<Self, CallFailed> {
        let spec = ffi("spec", env.spec())?;
        let n = spec.num_envs as usize;
        Ok(Self {
            obs: ObsBuf::zeros(&spec.obs, n),
            spare_obs: ObsBuf::zeros(&spec.obs, n),
            task: vec![0; n],
            spare_task: vec![0; n],
            reward: vec![0.0; n],
            terminated: vec![0; n],
            truncated: vec![0; n],
            success: vec![0; n],
            task_end: vec![0; n],
            spec,
            env,
        })
    }

    /// Number of envs.
    pub fn num_envs(&self) -> usize {
        self.spec.num_envs as usize
    }

    /// Resets every env with `seed`.
    pub fn reset(&mut self, seed: u64) -> Result<(), CallFailed> {
        ffi("reset", self.env.reset(seed, ResetBuffers { obs: self.obs.as_mut(), task: self.task.as_mut_slice().into() }))
    }

    /// Steps every env once; the observations acted in become [`EnvBatch::prev_obs`].
    pub fn step(&mut self, actions: ActionsRef<'_>) -> Result<(), CallFailed> {
        ffi(
            "step",
            self.env.step(
                actions,
                StepBuffers {
                    obs: self.spare_obs.as_mut(),
                    reward: self.reward.as_mut_slice().into(),
                    terminated: self.terminated.as_mut_slice().into(),
                    truncated: self.truncated.as_mut_slice().into(),
                    success: self.success.as_mut_slice().into(),
                    task_end: self.task_end.as_mut_slice().into(),
                    task: self.spare_task.as_mut_slice().into(),
                },
            ),
        )?;
        std::mem::swap(&mut self.obs, &mut self.spare_obs);
        std::mem::swap(&mut self.task, &mut self.spare_task);
        Ok(())
    }

    /// Observations the latest step's actions were taken in.
    pub fn prev_obs(&self) -> ObsRef<'_> {
        self.spare_obs.as_ref()
    }

    /// Tasks of [`EnvBatch::prev_obs`].
    pub fn prev_task(&self) -> &[u64] {
        &self.spare_task
    }

    /// Episodes finished since the last call.
    pub fn take_episodes(&mut self) -> Result<Vec<EpisodeStat>, CallFailed> {
        Ok(ffi("take_episodes", self.env.take_episodes())?.into_vec())
    }

    /// Expert demonstrations (needs [`Caps::ENV_DEMOS`]).
    pub fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> Result<Vec<crate::env::Trajectory>, CallFailed> {
        Ok(ffi("demos", self.env.demos(task, episodes, seed))?.into_vec())
    }
}

/// A batched env driven by an algo: carries recurrent state, previous actions and rewards.
pub struct Driver {
    /// The env and its latest outputs.
    pub batch: EnvBatch,
    n: usize,
    state_dim: usize,
    memory_reset: MemoryReset,
    actions: ActionBuf,
    prev_actions: ActionBuf,
    prev_reward: Vec<f32>,
    first: Vec<u8>,
    state: Vec<f32>,
    state_before: Vec<f32>,
    extras: Vec<f32>,
    rec_terminated: Vec<u8>,
    rec_truncated: Vec<u8>,
    /// Context rows handed to `act` (`num_envs * context_dim`, empty without context).
    pub context: Vec<f32>,
    /// Env steps taken so far (summed over envs).
    pub env_steps: u64,
}

impl Driver {
    /// Resets `env` with `seed` and prepares buffers sized for `algo`.
    pub fn new(env: EnvBox, algo: &AlgoBox, seed: u64, memory_reset: MemoryReset) -> Result<Self, CallFailed> {
        let mut batch = EnvBatch::new(env)?;
        batch.reset(seed)?;
        let info = ffi("info", algo.info())?;
        let extras_dim = ffi("extras_dim", algo.extras_dim())? as usize;
        let n = batch.num_envs();
        let state_dim = info.state_dim as usize;
        Ok(Self {
            actions: ActionBuf::zeros(&batch.spec.action, n),
            prev_actions: ActionBuf::zeros(&batch.spec.action, n),
            prev_reward: vec![0.0; n],
            first: vec![1; n],
            state: vec![0.0; n * state_dim],
            state_before: vec![0.0; n * state_dim],
            extras: vec![0.0; n * extras_dim],
            rec_terminated: vec![0; n],
            rec_truncated: vec![0; n],
            context: Vec::new(),
            env_steps: 0,
            batch,
            n,
            state_dim,
            memory_reset,
        })
    }

    /// Number of envs.
    pub fn num_envs(&self) -> usize {
        self.n
    }

    /// The recurrent state, `num_envs * state_dim` floats.
    pub fn state(&self) -> &[f32] {
        &self.state
    }

    /// One batched step: act, step the env, optionally record the transitions.
    pub fn step(&mut self, algo: &mut AlgoBox, record: bool, deterministic: bool) -> Result<(), CallFailed> {
        if record && self.state_dim > 0 {
            self.state_before.copy_from_slice(&self.state);
        }
        ffi(
            "act",
            algo.act(
                ActInput {
                    obs: self.batch.obs.as_ref(),
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
        self.batch.step(self.actions.as_ref())?;
        if record {
            let b = &self.batch;
            // With task-scoped memory (RL²) the learning episode is the whole run of trials on a
            // task: returns flow across trial boundaries and stop only where the task ends.
            for i in 0..self.n {
                let scope = match self.memory_reset {
                    MemoryReset::Episode => 1,
                    MemoryReset::Task => b.task_end[i],
                };
                self.rec_terminated[i] = b.terminated[i] & scope;
                self.rec_truncated[i] = b.truncated[i] & scope;
            }
            let state: RSlice<'_, f32> =
                if self.state_dim > 0 { self.state_before.as_slice().into() } else { RSlice::from_slice(&[]) };
            ffi(
                "record",
                algo.record(Transitions {
                    obs: b.prev_obs(),
                    actions: self.actions.as_ref(),
                    extras: self.extras.as_slice().into(),
                    rewards: b.reward.as_slice().into(),
                    terminated: self.rec_terminated.as_slice().into(),
                    truncated: self.rec_truncated.as_slice().into(),
                    next_obs: b.obs.as_ref(),
                    state,
                    task: b.prev_task().into(),
                }),
            )?;
        }
        self.advance();
        Ok(())
    }

    /// Carries the step's outputs over as the next step's inputs.
    fn advance(&mut self) {
        std::mem::swap(&mut self.prev_actions, &mut self.actions);
        self.prev_reward.copy_from_slice(&self.batch.reward);
        for i in 0..self.n {
            let episode_end = self.batch.terminated[i] | self.batch.truncated[i];
            self.first[i] = episode_end;
            let forget = match self.memory_reset {
                MemoryReset::Episode => episode_end == 1,
                MemoryReset::Task => self.batch.task_end[i] == 1,
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
    pub fn take_episodes(&mut self) -> Result<Vec<EpisodeStat>, CallFailed> {
        self.batch.take_episodes()
    }
}

/// How [`roll`] plays and learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollouts {
    /// Episodes per sampled task (RL² trials; 1 otherwise).
    pub trials: u32,
    /// When the agent's memory is cleared.
    pub memory: MemoryReset,
    /// Record full rollouts and update after each; `false` only plays (RL² adaptation).
    pub learn: bool,
}

/// Plays `ctx.tasks` with the agent in rollouts of `steps_per_update` steps per env, updating
/// after each one if `r.learn`, and reports progress after each; until the budget is spent or
/// the host says stop.
///
/// The budget is spent exactly: when less than one full rollout is left, the agent plays the
/// remaining steps without learning from them, rather than making an update from a sliver of
/// data (which for PPO means many gradient steps on a handful of samples).
pub fn roll(ctx: &mut MetaContext<'_>, seed: u64, r: Rollouts) -> Result<u64, PluginError> {
    let info = ffi("info", ctx.algo.info())?;
    let env = ffi("make_env", ctx.host.make_env(ctx.tasks, ctx.num_envs, r.trials, seed))?;
    let mut driver = Driver::new(env, ctx.algo, seed, r.memory)?;
    let rollout = info.steps_per_update.max(1) as u64 * driver.num_envs() as u64;
    while driver.env_steps < ctx.budget_env_steps {
        let full = ctx.budget_env_steps - driver.env_steps >= rollout;
        let record = r.learn && full;
        let target = if full { driver.env_steps + rollout } else { ctx.budget_env_steps };
        while driver.env_steps < target {
            driver.step(ctx.algo, record, false)?;
        }
        let scalars = if record {
            let plan = UpdatePlan { tasks: Default::default(), samples_per_task: 0, grad_steps: 0, want_context_grad: false };
            update(ctx.algo, &plan)?.scalars.into_vec()
        } else {
            Vec::new()
        };
        if !ffi("progress", ctx.host.progress(ctx.algo, driver.env_steps, scalars.as_slice().into()))? {
            break;
        }
    }
    Ok(driver.env_steps)
}

/// Plain training on `ctx.tasks` with the base algorithm ([`roll`] with one trial per task and
/// per-episode memory). This is fine-tuning (and the from-scratch baseline) for every method
/// whose adaptation is "keep training the agent", and multi-task pretraining when `ctx.tasks`
/// has many tasks.
pub fn train(ctx: &mut MetaContext<'_>, seed: u64) -> Result<u64, PluginError> {
    roll(ctx, seed, Rollouts { trials: 1, memory: MemoryReset::Episode, learn: true })
}

/// `algo.update(plan)` with the call named in errors.
pub fn update(algo: &mut AlgoBox, plan: &UpdatePlan) -> Result<UpdateStats, CallFailed> {
    ffi("update", algo.update(plan))
}
