//! Rollout plumbing: an env driven by an algo, the one training loop, and evaluation.
//!
//! Every meta-method needs the same loop: act, step, record, carry the recurrent state and the
//! previous action and reward, reset them where an episode (or an RL² task) ends, update when
//! enough data is in, report progress and evaluate when the host asks. It lives here once, as
//! plain Rust over the FFI objects, so a meta plugin's own code can read like its paper's
//! pseudo-code. Nothing here crosses the boundary.
//!
//! - [`EnvBatch`]: a batched env and the buffers its outputs land in.
//! - [`Driver`]: an `EnvBatch` driven by an algo; after each step, [`Driver::last`] shows that
//!   step's transition columns (what PEARL fills its context buffer from).
//! - [`ContextSource`]: where the context rows an agent acts with come from (PEARL).
//! - [`train`]: the training loop, for on-policy rollouts and off-policy steps-per-update with
//!   learning-starts alike; it spends the budget exactly.
//! - [`evaluate`]: an evaluation the host asked for, played through the meta-method's agent.

use std::collections::BTreeSet;

use abi_stable::std_types::{RSlice, RVec};
use metarl_plugin_api::abi_stable;
use metarl_plugin_api::algo::{ActInput, ActOutput, AlgoBox, AlgoInfo, Transitions, UpdatePlan, UpdateStats};
use metarl_plugin_api::env::{EnvBox, EnvSpec, EpisodeStat, ResetBuffers, StepBuffers, Trajectory};
use metarl_plugin_api::meta::{eval_quota, EvalRequest, MetaContext};
use metarl_plugin_api::types::*;

use crate::buf::{Data, SpaceBuf};
use crate::seeds::{self, SeedStream};

/// A failed call on an env, algo or host object: which call, and the plugin's error.
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

/// A plugin call's result, with the call named in the error.
pub fn ffi<T>(call: &'static str, r: PResult<T>) -> Result<T, CallFailed> {
    r.into_result().map_err(|error| CallFailed { call, error })
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
    pub obs: SpaceBuf,
    spare_obs: SpaceBuf,
    /// True last observations of the episodes that ended on the latest step (rows where
    /// `terminated | truncated`); only with [`Caps::ENV_FINAL_OBS`].
    pub final_obs: Option<SpaceBuf>,
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
            obs: SpaceBuf::zeros(&spec.obs, n),
            spare_obs: SpaceBuf::zeros(&spec.obs, n),
            final_obs: spec.caps.contains(Caps::ENV_FINAL_OBS).then(|| SpaceBuf::zeros(&spec.obs, n)),
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
        let mut obs = self.obs.views_mut();
        ffi("reset", self.env.reset(seed, ResetBuffers { obs: obs.as_mut_slice().into(), task: self.task.as_mut_slice().into() }))
    }

    /// Steps every env once; the observations acted in become [`EnvBatch::prev_obs`].
    pub fn step(&mut self, actions: &[ArrayRef<'_>]) -> Result<(), CallFailed> {
        {
            let mut obs = self.spare_obs.views_mut();
            let mut final_obs = self.final_obs.as_mut().map(|f| f.views_mut()).unwrap_or_default();
            ffi(
                "step",
                self.env.step(
                    actions.into(),
                    StepBuffers {
                        obs: obs.as_mut_slice().into(),
                        final_obs: final_obs.as_mut_slice().into(),
                        reward: self.reward.as_mut_slice().into(),
                        terminated: self.terminated.as_mut_slice().into(),
                        truncated: self.truncated.as_mut_slice().into(),
                        success: self.success.as_mut_slice().into(),
                        task_end: self.task_end.as_mut_slice().into(),
                        task: self.spare_task.as_mut_slice().into(),
                    },
                ),
            )?;
        }
        std::mem::swap(&mut self.obs, &mut self.spare_obs);
        std::mem::swap(&mut self.task, &mut self.spare_task);
        Ok(())
    }

    /// Observations the latest step's actions were taken in.
    pub fn prev_obs(&self) -> &SpaceBuf {
        &self.spare_obs
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
    pub fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> Result<Vec<Trajectory>, CallFailed> {
        Ok(ffi("demos", self.env.demos(task, episodes, seed))?.into_vec())
    }
}

/// The columns of the latest step, borrowed from a [`Driver`]: what [`Driver::step`] recorded
/// (or would have), and what a meta-method that keeps its own buffers (PEARL) reads.
pub struct LastStep<'a> {
    /// Observations acted in, one view per part.
    pub obs: Vec<ArrayRef<'a>>,
    /// Actions taken.
    pub actions: Vec<ArrayRef<'a>>,
    /// Rewards received.
    pub rewards: &'a [f32],
    /// Terminal flags (for RL²'s task-scoped memory: only where the task ended).
    pub terminated: &'a [u8],
    /// Truncation flags (masked like `terminated`).
    pub truncated: &'a [u8],
    /// Observations after the step.
    pub next_obs: Vec<ArrayRef<'a>>,
    /// Task of each row.
    pub task: &'a [u64],
    /// True last observations where an episode ended (no parts without the env capability).
    pub final_obs: Vec<ArrayRef<'a>>,
    /// Extras `act` returned.
    pub extras: &'a [f32],
    /// Recurrent state before the step (empty if not recurrent).
    pub state: &'a [f32],
    /// Previous actions given to `act`.
    pub prev_action: Vec<ArrayRef<'a>>,
    /// Previous rewards given to `act`.
    pub prev_reward: &'a [f32],
    /// 1 where `obs` started an episode.
    pub first: &'a [u8],
    /// Context rows given to `act` (empty without context).
    pub context: &'a [f32],
}

impl LastStep<'_> {
    /// The columns as the ABI's [`Transitions`].
    pub fn transitions(&self) -> Transitions<'_> {
        Transitions {
            obs: self.obs.as_slice().into(),
            actions: self.actions.as_slice().into(),
            rewards: self.rewards.into(),
            terminated: self.terminated.into(),
            truncated: self.truncated.into(),
            next_obs: self.next_obs.as_slice().into(),
            task: self.task.into(),
            final_obs: self.final_obs.as_slice().into(),
            extras: self.extras.into(),
            state: self.state.into(),
            prev_action: self.prev_action.as_slice().into(),
            prev_reward: self.prev_reward.into(),
            first: self.first.into(),
            context: self.context.into(),
            more: RSlice::from_slice(&[]),
        }
    }
}

/// A batched env driven by an algo: carries recurrent state, previous actions and rewards.
///
/// After [`Driver::step`] every buffer still holds that step's inputs and outputs
/// ([`Driver::last`]); the next step's inputs are derived only when it starts.
pub struct Driver {
    /// The env and its latest outputs.
    pub batch: EnvBatch,
    n: usize,
    state_dim: usize,
    memory_reset: MemoryReset,
    /// Rows the memory returns to where it is reset, instead of zeros (evaluation from an
    /// RL² agent's memory at that point).
    snapshot: Option<Vec<f32>>,
    actions: SpaceBuf,
    prev_actions: SpaceBuf,
    prev_reward: Vec<f32>,
    first: Vec<u8>,
    state: Vec<f32>,
    state_before: Vec<f32>,
    extras: Vec<f32>,
    rec_terminated: Vec<u8>,
    rec_truncated: Vec<u8>,
    stepped: bool,
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
        let n = batch.num_envs();
        let state_dim = info.state_dim as usize;
        Ok(Self {
            actions: SpaceBuf::zeros(&batch.spec.action, n),
            prev_actions: SpaceBuf::zeros(&batch.spec.action, n),
            prev_reward: vec![0.0; n],
            first: vec![1; n],
            state: vec![0.0; n * state_dim],
            state_before: vec![0.0; n * state_dim],
            extras: vec![0.0; n * info.extras_dim as usize],
            rec_terminated: vec![0; n],
            rec_truncated: vec![0; n],
            stepped: false,
            snapshot: None,
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

    /// The recurrent state the next step starts from, `num_envs * state_dim` floats.
    pub fn state(&self) -> &[f32] {
        &self.state
    }

    /// Starts every env's memory from `rows` (`k * state_dim` floats; env `i` takes row
    /// `i % k`) and returns to it wherever the memory is reset.
    pub fn start_from_memory(&mut self, rows: &[f32]) {
        if self.state_dim == 0 || rows.is_empty() {
            return;
        }
        let k = rows.len() / self.state_dim;
        let mut snap = vec![0.0; self.n * self.state_dim];
        for i in 0..self.n {
            let src = (i % k) * self.state_dim;
            snap[i * self.state_dim..(i + 1) * self.state_dim].copy_from_slice(&rows[src..src + self.state_dim]);
        }
        self.state.copy_from_slice(&snap);
        self.snapshot = Some(snap);
    }

    /// One batched step: act, step the env, optionally record the transitions.
    pub fn step(&mut self, algo: &mut AlgoBox, record: bool, deterministic: bool) -> Result<(), CallFailed> {
        self.step_with(algo, record, deterministic, |_| {})
    }

    /// [`Driver::step`], with `explore` given the chosen actions before they go to the env.
    pub fn step_with(
        &mut self,
        algo: &mut AlgoBox,
        record: bool,
        deterministic: bool,
        explore: impl FnOnce(&mut SpaceBuf),
    ) -> Result<(), CallFailed> {
        if self.stepped {
            self.advance();
        }
        if self.state_dim > 0 {
            self.state_before.copy_from_slice(&self.state);
        }
        {
            let obs = self.batch.obs.views();
            let prev_action = self.prev_actions.views();
            let mut actions = self.actions.views_mut();
            ffi(
                "act",
                algo.act(
                    ActInput {
                        obs: obs.as_slice().into(),
                        state: self.state.as_mut_slice().into(),
                        prev_action: prev_action.as_slice().into(),
                        prev_reward: self.prev_reward.as_slice().into(),
                        first: self.first.as_slice().into(),
                        context: self.context.as_slice().into(),
                        deterministic,
                    },
                    ActOutput { actions: actions.as_mut_slice().into(), extras: self.extras.as_mut_slice().into() },
                ),
            )?;
        }
        explore(&mut self.actions);
        self.batch.step(&self.actions.views())?;
        // With task-scoped memory (RL²) the learning episode is the whole run of trials on a
        // task: returns flow across trial boundaries and stop only where the task ends.
        for i in 0..self.n {
            let scope = match self.memory_reset {
                MemoryReset::Episode => 1,
                MemoryReset::Task => self.batch.task_end[i],
            };
            self.rec_terminated[i] = self.batch.terminated[i] & scope;
            self.rec_truncated[i] = self.batch.truncated[i] & scope;
        }
        self.stepped = true;
        self.env_steps += self.n as u64;
        if record {
            let last = self.last();
            ffi("record", algo.record(last.transitions()))?;
        }
        // The memory the next step starts from is ready now (what `state()` shows, and what an
        // evaluation from the agent's memory copies); the RL² inputs follow when it starts.
        for i in 0..self.n {
            if self.forgets(i) {
                let rows = i * self.state_dim..(i + 1) * self.state_dim;
                match &self.snapshot {
                    Some(s) => self.state[rows.clone()].copy_from_slice(&s[rows]),
                    None => self.state[rows].fill(0.0),
                }
            }
        }
        Ok(())
    }

    /// Whether env `i`'s memory goes back to its start after the latest step.
    fn forgets(&self, i: usize) -> bool {
        let episode_end = (self.batch.terminated[i] | self.batch.truncated[i]) == 1;
        let scope_end = match self.memory_reset {
            MemoryReset::Episode => episode_end,
            MemoryReset::Task => self.batch.task_end[i] == 1,
        };
        scope_end || (self.snapshot.is_some() && episode_end)
    }

    /// The columns of the latest step (valid until the next step).
    pub fn last(&self) -> LastStep<'_> {
        let b = &self.batch;
        LastStep {
            obs: b.prev_obs().views(),
            actions: self.actions.views(),
            rewards: &b.reward,
            terminated: &self.rec_terminated,
            truncated: &self.rec_truncated,
            next_obs: b.obs.views(),
            task: b.prev_task(),
            final_obs: b.final_obs.as_ref().map(|f| f.views()).unwrap_or_default(),
            extras: &self.extras,
            state: if self.state_dim > 0 { &self.state_before } else { &[] },
            prev_action: self.prev_actions.views(),
            prev_reward: &self.prev_reward,
            first: &self.first,
            context: &self.context,
        }
    }

    /// Derives the next step's RL² inputs from the latest step's outputs (the memory itself
    /// was reset when that step ended).
    fn advance(&mut self) {
        std::mem::swap(&mut self.prev_actions, &mut self.actions);
        self.prev_reward.copy_from_slice(&self.batch.reward);
        for i in 0..self.n {
            self.first[i] = self.batch.terminated[i] | self.batch.truncated[i];
            if self.forgets(i) {
                self.prev_reward[i] = 0.0;
                self.prev_actions.zero_row(i);
            }
        }
    }

    /// Episodes finished since the last call.
    pub fn take_episodes(&mut self) -> Result<Vec<EpisodeStat>, CallFailed> {
        self.batch.take_episodes()
    }
}

/// Which update [`train`] makes once enough data is in: given the algo's info and the tasks
/// recorded so far (in first-seen order), the plan.
pub type Planner<'p> = dyn FnMut(&AlgoInfo, &[u64]) -> UpdatePlan + 'p;

/// Carries out one planned update in place of a plain [`update`] call, given the env steps
/// taken so far: off-policy Reptile wraps each update in its outer interpolation.
pub type Updater<'p> = dyn FnMut(&mut AlgoBox, &UpdatePlan, u64) -> Result<UpdateStats, PluginError> + 'p;

/// The plan of an ordinary update: all epochs over the rollout (on-policy), or the algo's
/// batch drawn evenly from every recorded task (off-policy).
pub fn default_plan(info: &AlgoInfo, recorded: &[u64]) -> UpdatePlan {
    if is_on_policy(info) {
        UpdatePlan::on_policy(info.grad_steps.max(1))
    } else {
        let per_task = (info.batch_size / recorded.len().max(1) as u32).max(1);
        UpdatePlan::off_policy(recorded.to_vec(), per_task, info.grad_steps.max(1))
    }
}

/// True if the algo learns from rollouts of its current policy.
pub fn is_on_policy(info: &AlgoInfo) -> bool {
    info.caps.contains(Caps::ON_POLICY) || !info.caps.contains(Caps::OFF_POLICY)
}

/// How [`train`] plays, learns and reports.
pub struct Train<'p> {
    /// Env steps to spend (summed over envs).
    pub budget: u64,
    /// Tasks to train on (a sub-list of the phase's; empty = the phase's).
    pub tasks: Vec<u64>,
    /// Episodes per sampled task (RL² trials; 1 otherwise).
    pub trials: u32,
    /// When the agent's memory is cleared.
    pub memory: MemoryReset,
    /// Record and update; `false` only plays (RL² adaptation).
    pub learn: bool,
    /// Stop after this many updates (Reptile's inner loop).
    pub max_updates: Option<u64>,
    /// Report progress to the host at the start and after every update, evaluating when
    /// asked. Off when the caller reports itself (Reptile reports once per outer step).
    pub report: bool,
    /// Env steps the algo had recorded before this call (towards `learning_starts`).
    pub recorded_before: u64,
    /// Ask the host for the phase's expert demonstrations ([`HostServicesFfi::demos`]) and
    /// record them ([`record_demos`]) before the first step, when learning. True in
    /// [`Train::plain`]; false for every call of a phase but its first (Reptile's inner loops),
    /// so that a phase records its demonstrations once.
    ///
    /// [`HostServicesFfi::demos`]: metarl_plugin_api::meta::HostServicesFfi::demos
    pub demos: bool,
    /// The update plan; `None` = [`default_plan`].
    pub planner: Option<&'p mut Planner<'p>>,
    /// How a planned update is carried out; `None` = [`update`].
    pub updater: Option<&'p mut Updater<'p>>,
    /// Where the agent's context rows come from (PEARL); `None` = no context.
    pub context: Option<&'p mut dyn ContextSource>,
    /// Where a continued call starts: the [`Position`] of the mid-phase checkpoint it
    /// continues from (`None`: from the beginning). The envs start fresh episodes, seeded
    /// from `seed` and that position, and the demonstrations are not recorded again (the
    /// algo's state already holds them).
    pub start: Option<Position>,
    /// Mid-phase checkpoints: after a progress report, when the host says one is due
    /// ([`HostServicesFfi::checkpoint_due`]), this turns the loop's position into the
    /// caller's meta state, which goes to [`HostServicesFfi::checkpoint`] with the algo's.
    /// `None`: this call takes none.
    ///
    /// [`HostServicesFfi::checkpoint_due`]: metarl_plugin_api::meta::HostServicesFfi::checkpoint_due
    /// [`HostServicesFfi::checkpoint`]: metarl_plugin_api::meta::HostServicesFfi::checkpoint
    pub checkpoint: Option<&'p mut Checkpointer<'p>>,
}

/// Turns a [`train`] call's position into the caller's meta state for a mid-phase checkpoint.
pub type Checkpointer<'p> = dyn FnMut(&Position) -> Result<Vec<u8>, PluginError> + 'p;

/// Where a [`train`] call stands, as a mid-phase checkpoint keeps it: enough, with the
/// algo's state, to continue the call ([`Train::start`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// Env steps taken.
    pub env_steps: u64,
    /// Env steps recorded (towards `learning_starts`), demonstrations included.
    pub recorded: u64,
    /// Updates made.
    pub updates: u64,
    /// Tasks with recorded data, in first-seen order (what the update plans draw from).
    pub seen: Vec<u64>,
}

impl Position {
    /// Appends the position to a plugin's checkpoint bytes.
    pub fn write(&self, w: &mut crate::bytes::Writer) {
        w.u64(self.env_steps);
        w.u64(self.recorded);
        w.u64(self.updates);
        w.u64(self.seen.len() as u64);
        for &t in &self.seen {
            w.u64(t);
        }
    }

    /// Reads what [`Position::write`] wrote.
    pub fn read(r: &mut crate::bytes::Reader<'_>) -> Result<Position, PluginError> {
        let (env_steps, recorded, updates) = (r.u64()?, r.u64()?, r.u64()?);
        let n = r.u64()?;
        let seen = (0..n).map(|_| r.u64()).collect::<Result<Vec<_>, _>>()?;
        Ok(Position { env_steps, recorded, updates, seen })
    }

    /// A meta-method's state: its fixed part `state`, then, in a mid-phase checkpoint,
    /// `magic`, the phase's seed and the position ([`Position::read_phase`] reads them back).
    pub fn phase_state(state: Vec<u8>, magic: &[u8], phase: Option<(u64, &Position)>) -> Vec<u8> {
        let mut w = crate::bytes::Writer(state);
        if let Some((seed, position)) = phase {
            w.bytes(magic);
            w.u64(seed);
            position.write(&mut w);
        }
        w.0
    }

    /// Reads what [`Position::phase_state`] appended, from the rest of a state after its
    /// fixed part: `None` when `rest` is empty (a state saved between phases).
    pub fn read_phase(rest: &[u8], magic: &[u8], owner: &'static str) -> Result<Option<(u64, Position)>, PluginError> {
        if rest.is_empty() {
            return Ok(None);
        }
        let mut r = crate::bytes::Reader::new(rest, magic, owner)?;
        let seed = r.u64()?;
        let position = Position::read(&mut r)?;
        r.finish()?;
        Ok(Some((seed, position)))
    }
}

/// The context an agent acts with (PEARL's inferred task), kept by the meta-method.
///
/// [`train`] calls [`ContextSource::observe`] after every step, [`ContextSource::next_context`]
/// before every step (the first included) and [`ContextSource::for_evaluation`] when the host
/// asks for an evaluation.
pub trait ContextSource {
    /// Reads the step just taken ([`Driver::last`]), for example into a context buffer.
    fn observe(&mut self, d: &Driver) -> Result<(), PluginError>;
    /// Sets [`Driver::context`] (`num_envs * context_dim` floats) for the next step.
    fn next_context(&mut self, d: &mut Driver) -> Result<(), PluginError>;
    /// The context rows the evaluation `req` plays with (see [`EvalAgent::context`]).
    fn for_evaluation(&mut self, req: &EvalRequest) -> Result<Vec<f32>, PluginError>;
}

impl<'p> Train<'p> {
    /// Plain training on the phase's tasks with the base algorithm: fine-tuning, the scratch
    /// baseline and multi-task pretraining.
    pub fn plain(budget: u64) -> Self {
        Self {
            budget,
            tasks: Vec::new(),
            trials: 1,
            memory: MemoryReset::Episode,
            learn: true,
            max_updates: None,
            report: true,
            recorded_before: 0,
            demos: true,
            planner: None,
            updater: None,
            context: None,
            start: None,
            checkpoint: None,
        }
    }
}

/// What a [`train`] call did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trained {
    /// Env steps taken.
    pub env_steps: u64,
    /// Env steps recorded (towards `learning_starts`).
    pub recorded: u64,
    /// Updates made.
    pub updates: u64,
    /// Diagnostics of the last update.
    pub scalars: Vec<Scalar>,
    /// The host asked to stop.
    pub stopped: bool,
}

/// The training loop: plays `t.tasks` with the agent and learns as the algo asks.
///
/// - **On-policy**: rollouts of `steps_per_update` steps per env, an update after each. When
///   less than a rollout of budget is left, the rest is played without learning rather than
///   updating on a sliver of data (for PPO, many gradient steps on a handful of samples).
/// - **Off-policy**: every step is recorded; after each `steps_per_update` steps per env, an
///   update, once `learning_starts` env steps are in.
///
/// With `t.learn` and `t.demos`, the phase's expert demonstrations are recorded first
/// ([`record_demos`]); their rows count towards `learning_starts`, and the first progress
/// report carries `demos`, `demo_steps` and `demo_rows` (recorded) when there were any.
///
/// The budget is spent exactly, rounded up to whole batches of `num_envs` steps. With
/// `t.report`, progress goes to the host at the start (0 steps) and after every update; an
/// evaluation it asks for is carried out at once ([`evaluate`], from the agent's current
/// memory when memory is task-scoped), and a "stop" ends the loop.
pub fn train(ctx: &mut MetaContext<'_>, seed: u64, mut t: Train<'_>) -> Result<Trained, PluginError> {
    let info = ffi("info", ctx.algo.info())?;
    let tasks: Vec<u64> = if t.tasks.is_empty() { ctx.tasks.to_vec() } else { t.tasks.clone() };
    let start = t.start.take();
    // A continued call plays fresh episodes, from envs seeded by where it continues.
    let env_seed = match &start {
        Some(p) => seeds::derive(seed, &format!("continued at {} env steps", p.env_steps)),
        None => seed,
    };
    let env = ffi("make_env", ctx.host.make_env(tasks.as_slice().into(), ctx.num_envs, t.trials, env_seed))?;
    let mut d = Driver::new(env, ctx.algo, env_seed, t.memory)?;
    let mut out = Trained::default();
    let mut seen: Vec<u64> = Vec::new();
    let mut seen_set = BTreeSet::new();
    let mut first_scalars = Vec::new();
    if let Some(p) = &start {
        d.env_steps = p.env_steps;
        out.recorded = p.recorded;
        out.updates = p.updates;
        seen = p.seen.clone();
        seen_set.extend(seen.iter().copied());
    }
    if t.learn && t.demos && start.is_none() {
        let demos = ffi("demos", ctx.host.demos())?.into_vec();
        if !demos.is_empty() {
            let spec = d.batch.spec.clone();
            let r = record_demos(ctx.algo, &spec, d.num_envs(), &demos)?;
            out.recorded += r.rows;
            for &task in &r.tasks {
                if seen_set.insert(task) {
                    seen.push(task);
                }
            }
            if r.rows < r.steps {
                log::info!(
                    "recorded {} of {} demonstration steps: the last {} do not fill a batch of {} rows",
                    r.rows,
                    r.steps,
                    r.steps - r.rows,
                    d.num_envs()
                );
            }
            first_scalars = vec![
                Scalar::new("demos", r.demos as f64),
                Scalar::new("demo_steps", r.steps as f64),
                Scalar::new("demo_rows", r.rows as f64),
            ];
        }
    }
    let carry_memory = t.memory == MemoryReset::Task;
    // A continued call reported its start (and everything up to its checkpoint) before.
    if t.report && start.is_none() && !report(ctx, 0, &first_scalars, memory_of(&d, carry_memory), t.context.as_deref_mut())? {
        out.stopped = true;
        return Ok(out);
    }
    let on_policy = is_on_policy(&info);
    let chunk = info.steps_per_update.max(1) as u64 * d.num_envs() as u64;
    while d.env_steps < t.budget && t.max_updates.is_none_or(|m| out.updates < m) {
        let left = t.budget - d.env_steps;
        let full = left >= chunk;
        let record = t.learn && (full || !on_policy);
        let target = d.env_steps + chunk.min(left);
        while d.env_steps < target {
            if let Some(source) = t.context.as_deref_mut() {
                source.next_context(&mut d)?;
            }
            d.step(ctx.algo, record, false)?;
            if record {
                out.recorded += d.num_envs() as u64;
                for &task in d.batch.prev_task() {
                    if seen_set.insert(task) {
                        seen.push(task);
                    }
                }
            }
            if let Some(source) = t.context.as_deref_mut() {
                source.observe(&d)?;
            }
        }
        let updated = record && full && t.recorded_before + out.recorded >= info.learning_starts;
        if updated {
            let plan = match t.planner.as_mut() {
                Some(p) => p(&info, &seen),
                None => default_plan(&info, &seen),
            };
            let stats = match t.updater.as_mut() {
                Some(u) => u(ctx.algo, &plan, d.env_steps)?,
                None => update(ctx.algo, &plan)?,
            };
            out.scalars = stats.scalars.into_vec();
            out.updates += 1;
        }
        let at_end = d.env_steps >= t.budget;
        if t.report && (updated || !t.learn || at_end) {
            let go_on = report(ctx, d.env_steps, &out.scalars, memory_of(&d, carry_memory), t.context.as_deref_mut())?;
            // At the end the phase is done: its results, not a checkpoint, come next.
            if !at_end {
                if let Some(cp) = t.checkpoint.as_mut() {
                    let position = || Position { env_steps: d.env_steps, recorded: out.recorded, updates: out.updates, seen: seen.clone() };
                    checkpoint_if_due(ctx, || cp(&position()))?;
                }
            }
            if !go_on {
                out.stopped = true;
                break;
            }
        }
    }
    out.env_steps = d.env_steps;
    Ok(out)
}

/// What [`record_demos`] recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DemosRecorded {
    /// Demonstrations given.
    pub demos: usize,
    /// Their steps (transitions), all together.
    pub steps: u64,
    /// Rows recorded: whole batches of `num_envs`, so at most `num_envs - 1` fewer than `steps`.
    pub rows: u64,
    /// Tasks of the recorded rows, in first-seen order.
    pub tasks: Vec<u64>,
}

/// Records expert demonstrations into `algo` as [`Transitions`] with `extras` empty (data not
/// from the agent), one row per demo step: observation `t`, action `t`, reward `t`, the true
/// observation `t + 1` as `next_obs`, the demo's task, and the episode ending on its last step:
/// `terminated` if the demo succeeded, `truncated` if not.
///
/// `record` takes exactly `num_envs` rows, and an algo that keeps per-env streams (n-step
/// returns, sequences) reads row `i` of successive calls as consecutive steps of env `i`. So
/// the demos' steps are laid end to end, in the order given, and cut into `num_envs` lanes of
/// `L = steps / num_envs` consecutive steps; call `b` records step `b` of every lane. Where a
/// lane ends inside a demo, its last row is marked `truncated` too (bootstrap from the true
/// next observation; the next lane takes the demo up from there). Rows are never padded or
/// repeated: the last `steps mod num_envs` steps, fewer than a batch, are not recorded.
pub fn record_demos(algo: &mut AlgoBox, spec: &EnvSpec, num_envs: usize, demos: &[Trajectory]) -> Result<DemosRecorded, PluginError> {
    let mut steps: Vec<(usize, usize)> = Vec::new();
    for (k, d) in demos.iter().enumerate() {
        check_demo(spec, d).map_err(|e| PluginError::invalid(format!("demonstration {k} (task {}): {e}", d.task)))?;
        steps.extend((0..d.rewards.len()).map(|t| (k, t)));
    }
    let n = num_envs.max(1);
    let lane = steps.len() / n;
    let mut out = DemosRecorded { demos: demos.len(), steps: steps.len() as u64, rows: 0, tasks: Vec::new() };
    let (mut obs, mut next_obs) = (SpaceBuf::zeros(&spec.obs, n), SpaceBuf::zeros(&spec.obs, n));
    let mut actions = SpaceBuf::zeros(&spec.action, n);
    let (mut rewards, mut terminated, mut truncated, mut task) = (vec![0f32; n], vec![0u8; n], vec![0u8; n], vec![0u64; n]);
    for b in 0..lane {
        for i in 0..n {
            let (k, t) = steps[i * lane + b];
            let d = &demos[k];
            for (p, a) in d.obs.iter().enumerate() {
                obs.copy_row_from(p, i, a.as_ref(), t);
                next_obs.copy_row_from(p, i, a.as_ref(), t + 1);
            }
            for (p, a) in d.actions.iter().enumerate() {
                actions.copy_row_from(p, i, a.as_ref(), t);
            }
            rewards[i] = d.rewards[t];
            let demo_end = t + 1 == d.rewards.len();
            let lane_end = b + 1 == lane;
            terminated[i] = u8::from(demo_end && d.success);
            truncated[i] = u8::from((demo_end && !d.success) || (lane_end && !demo_end));
            task[i] = d.task;
            if !out.tasks.contains(&d.task) {
                out.tasks.push(d.task);
            }
        }
        let (o, no, a) = (obs.views(), next_obs.views(), actions.views());
        let batch = Transitions {
            obs: o.as_slice().into(),
            actions: a.as_slice().into(),
            rewards: rewards.as_slice().into(),
            terminated: terminated.as_slice().into(),
            truncated: truncated.as_slice().into(),
            next_obs: no.as_slice().into(),
            task: task.as_slice().into(),
            ..Default::default()
        };
        ffi("record", algo.record(batch))?;
        out.rows += n as u64;
    }
    Ok(out)
}

/// Whether `d` fits `spec`: one array per part of the right dtype, `len + 1` observations and
/// `len` actions.
fn check_demo(spec: &EnvSpec, d: &Trajectory) -> Result<(), String> {
    let len = d.rewards.len();
    let fits = |what: &str, space: &Space, arrays: &[Array], rows: usize| -> Result<(), String> {
        let views: Vec<ArrayRef<'_>> = arrays.iter().map(Array::as_ref).collect();
        check_arrays(what, space, &views, rows)
    };
    fits("observations", &spec.obs, &d.obs, len + 1)?;
    fits("actions", &spec.action, &d.actions, len)
}

fn memory_of(d: &Driver, carry: bool) -> &[f32] {
    if carry {
        d.state()
    } else {
        &[]
    }
}

/// Reports `env_steps` and `scalars` to the host, and carries out the evaluation it asks for
/// (with the agent's `memory`, see [`EvalAgent`]). Returns whether to go on.
pub fn progress(ctx: &mut MetaContext<'_>, env_steps: u64, scalars: &[Scalar], memory: &[f32]) -> Result<bool, PluginError> {
    report(ctx, env_steps, scalars, memory, None)
}

/// Takes a mid-phase checkpoint if the host says one is due: `meta_state` gives the caller's
/// state, from which its `load` and the same phase call continue. For meta-methods with a loop
/// of their own (on-policy Reptile); call right after [`progress`]. Returns whether it took one.
pub fn checkpoint_if_due(ctx: &mut MetaContext<'_>, meta_state: impl FnOnce() -> Result<Vec<u8>, PluginError>) -> Result<bool, PluginError> {
    if !ctx.host.checkpoint_due() {
        return Ok(false);
    }
    let state = meta_state()?;
    ffi("checkpoint", ctx.host.checkpoint(ctx.algo, state.as_slice().into()))?;
    Ok(true)
}

/// [`progress`], with an evaluation's context rows taken from `context` when one is asked for.
fn report<'s>(
    ctx: &mut MetaContext<'_>,
    env_steps: u64,
    scalars: &[Scalar],
    memory: &[f32],
    context: Option<&mut (dyn ContextSource + 's)>,
) -> Result<bool, PluginError> {
    let p = ffi("progress", ctx.host.progress(ctx.algo, env_steps, scalars.into()))?;
    if let Some(req) = p.evaluate.into_option() {
        let rows = match context {
            Some(source) => source.for_evaluation(&req)?,
            None => Vec::new(),
        };
        evaluate(ctx, &req, &EvalAgent { memory, context: &rows })?;
    }
    Ok(p.go_on)
}

/// What the agent brings to an evaluation besides its parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvalAgent<'a> {
    /// Recurrent state every evaluation episode starts from (RL²'s memory at this point):
    /// `k * state_dim` floats, env `i` taking row `i % k`; empty = zeros.
    pub memory: &'a [f32],
    /// Context rows for `act` (PEARL's inferred task): one row for every env, or one per env;
    /// empty = none.
    pub context: &'a [f32],
}

/// Plays the evaluation `req` with the agent: builds the host's evaluation env, acts as
/// `req` says (greedy or sampling, ε-greedy on top), and stops when every env has finished
/// its quota ([`eval_quota`]). Nothing is recorded or learnt. Returns the counted episodes
/// (the host counts them itself too).
pub fn evaluate(ctx: &mut MetaContext<'_>, req: &EvalRequest, agent: &EvalAgent<'_>) -> Result<Vec<EpisodeStat>, PluginError> {
    let env = ffi("make_eval_env", ctx.host.make_eval_env(req, 1))?;
    let mut d = Driver::new(env, ctx.algo, req.seed, MemoryReset::Episode)?;
    d.start_from_memory(agent.memory);
    let n = d.num_envs();
    if !agent.context.is_empty() {
        let (rows, width) = context_rows(agent.context, n);
        d.context = (0..n).flat_map(|i| agent.context[(i % rows) * width..(i % rows + 1) * width].to_vec()).collect();
    }
    let quota: Vec<u32> = (0..n as u32).map(|i| eval_quota(req.episodes, n as u32, i)).collect();
    let mut done = vec![0u32; n];
    let mut counted = Vec::new();
    let max_len = if d.batch.spec.max_episode_steps > 0 { d.batch.spec.max_episode_steps as u64 } else { 100_000 };
    let limit = (quota.iter().copied().max().unwrap_or(0) as u64 + 1) * max_len;
    let mut rng = SeedStream::new(req.seed ^ 0x4556_414c);
    let action_space = d.batch.spec.action.clone();
    let mut steps = 0u64;
    while done.iter().zip(&quota).any(|(d, q)| d < q) {
        if steps >= limit {
            return Err(PluginError::failed(format!(
                "evaluation did not finish: after {steps} steps per env, {} of {} episodes were done",
                counted.len(),
                req.episodes
            )));
        }
        let eps = req.epsilon as f64;
        d.step_with(ctx.algo, false, req.deterministic, |actions| {
            if eps > 0.0 {
                for i in 0..n {
                    if rng.uniform() < eps {
                        random_action(&action_space, actions, i, &mut rng);
                    }
                }
            }
        })?;
        for e in d.take_episodes()? {
            let i = e.env as usize;
            if i < n && done[i] < quota[i] {
                done[i] += 1;
                counted.push(e);
            }
        }
        steps += 1;
    }
    Ok(counted)
}

/// `(rows, width)` of context rows given for `n` envs: one shared row, or one per env.
fn context_rows(context: &[f32], n: usize) -> (usize, usize) {
    if context.len().is_multiple_of(n) && context.len() / n > 0 {
        (n, context.len() / n)
    } else {
        (1, context.len())
    }
}

/// Replaces env `row`'s action by a uniformly random one: each discrete element uniform over
/// its choices, each bounded continuous element uniform in its bounds.
pub fn random_action(space: &ActionSpace, actions: &mut SpaceBuf, row: usize, rng: &mut SeedStream) {
    for (i, part) in space.parts.iter().enumerate() {
        let k = actions.numel(i);
        match &mut actions.parts[i] {
            Data::I32(v) if part.choices > 0 => {
                v[row * k..(row + 1) * k].iter_mut().for_each(|a| *a = rng.below(part.choices as usize) as i32)
            }
            Data::F32(v) if part.low.len() == k => {
                for (j, a) in v[row * k..(row + 1) * k].iter_mut().enumerate() {
                    *a = part.low[j] + (part.high[j] - part.low[j]) * rng.uniform() as f32;
                }
            }
            _ => {}
        }
    }
}

/// `algo.update(plan)` with the call named in errors.
pub fn update(algo: &mut AlgoBox, plan: &UpdatePlan) -> Result<UpdateStats, CallFailed> {
    ffi("update", algo.update(plan))
}

/// Convenience for plugins that return owned arrays: one [`Array`] per part of `buf`.
pub fn to_arrays(buf: &SpaceBuf) -> RVec<Array> {
    buf.parts
        .iter()
        .map(|p| match p {
            Data::U8(v) => Array::from_slice(v),
            Data::F32(v) => Array::from_slice(v),
            Data::I32(v) => Array::from_slice(v),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use metarl_plugin_api::algo::{self, Algo};

    use super::*;

    /// Keeps `(obs, next_obs, reward, terminated, truncated, task, extras empty)` of every row.
    type Row = (f32, f32, f32, u8, u8, u64, bool);

    struct Rows(Arc<Mutex<Vec<Vec<Row>>>>);

    impl Algo for Rows {
        fn info(&self) -> AlgoInfo {
            unreachable!()
        }
        fn act(&mut self, _: ActInput<'_>, _: ActOutput<'_>) -> Result<(), PluginError> {
            unreachable!()
        }
        fn record(&mut self, b: Transitions<'_>) -> Result<(), PluginError> {
            let (o, no) = (b.obs[0].f32().unwrap(), b.next_obs[0].f32().unwrap());
            let rows = (0..b.rewards.len())
                .map(|i| (o[i], no[i], b.rewards[i], b.terminated[i], b.truncated[i], b.task[i], b.extras.is_empty()))
                .collect();
            self.0.lock().unwrap().push(rows);
            Ok(())
        }
        fn update(&mut self, _: &UpdatePlan) -> Result<UpdateStats, PluginError> {
            unreachable!()
        }
        fn params(&self) -> Result<Vec<f32>, PluginError> {
            unreachable!()
        }
        fn set_params(&mut self, _: &[f32]) -> Result<(), PluginError> {
            unreachable!()
        }
        fn save(&self) -> Result<Vec<u8>, PluginError> {
            unreachable!()
        }
        fn load(&mut self, _: &[u8]) -> Result<(), PluginError> {
            unreachable!()
        }
        fn reset_heads(&mut self, _: u64) -> Result<(), PluginError> {
            unreachable!()
        }
        fn clear(&mut self) -> Result<(), PluginError> {
            unreachable!()
        }
    }

    /// Demo `k` of `len` steps: observation `t` is `10 k + t`, reward `t` too.
    fn demo(k: u64, len: usize, success: bool) -> Trajectory {
        let obs: Vec<f32> = (0..=len).map(|t| (10 * k + t as u64) as f32).collect();
        Trajectory {
            task: k,
            obs: vec![Array::from_slice(&obs)].into(),
            actions: vec![Array::from_slice(&vec![1i32; len])].into(),
            rewards: obs[..len].to_vec().into(),
            success,
        }
    }

    #[test]
    fn a_phase_state_round_trips_and_refuses_a_foreign_tail() {
        let p = Position { env_steps: 4096, recorded: 4000, updates: 7, seen: vec![3, 1, 2] };
        let bytes = Position::phase_state(vec![9; 8], b"test-phase", Some((42, &p)));
        assert_eq!(&bytes[..8], &[9; 8]);
        assert_eq!(Position::read_phase(&bytes[8..], b"test-phase", "test").unwrap(), Some((42, p.clone())));
        // Between phases the state is its fixed part alone.
        assert_eq!(Position::phase_state(vec![9; 8], b"test-phase", None), vec![9; 8]);
        assert_eq!(Position::read_phase(&[], b"test-phase", "test").unwrap(), None);
        assert!(Position::read_phase(&bytes[8..], b"other-phase", "test").is_err());
        assert!(Position::read_phase(&bytes[8..bytes.len() - 1], b"test-phase", "test").is_err());
    }

    #[test]
    fn demos_fill_lanes_of_consecutive_steps_without_padding() {
        let spec = EnvSpec { obs: Space::vector(1), action: Space::discrete(2), num_envs: 2, max_episode_steps: 0, caps: Caps::NONE };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut a = algo::into_ffi(Box::new(Rows(seen.clone())));
        // 3 + 4 + 2 = 9 steps in 2 lanes of 4: the ninth step does not fill a batch.
        let demos = [demo(0, 3, true), demo(1, 4, false), demo(2, 2, true)];
        let r = record_demos(&mut a, &spec, 2, &demos).unwrap();
        assert_eq!(r, DemosRecorded { demos: 3, steps: 9, rows: 8, tasks: vec![0, 1, 2] });
        let batches = seen.lock().unwrap().clone();
        assert_eq!(batches.len(), 4);
        let lane = |i: usize| batches.iter().map(|b| b[i]).collect::<Vec<Row>>();
        // Lane 0: demo 0 (succeeds: terminated), then demo 1's first step, cut: truncated.
        assert_eq!(
            lane(0),
            [(0., 1., 0., 0, 0, 0, true), (1., 2., 1., 0, 0, 0, true), (2., 3., 2., 1, 0, 0, true), (10., 11., 10., 0, 1, 1, true)]
        );
        // Lane 1: the rest of demo 1 (fails: truncated), then demo 2's first step, cut.
        assert_eq!(
            lane(1),
            [(11., 12., 11., 0, 0, 1, true), (12., 13., 12., 0, 0, 1, true), (13., 14., 13., 0, 1, 1, true), (20., 21., 20., 0, 1, 2, true)]
        );
        // A demo that does not fit the spaces is refused, naming it.
        let mut bad = demo(4, 2, true);
        bad.rewards = vec![0.0; 3].into();
        let e = record_demos(&mut a, &spec, 2, &[bad]).unwrap_err();
        assert!(e.message.contains("demonstration 0 (task 4): observations part"), "{e}");
    }
}
