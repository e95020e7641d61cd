//! Environment adapters: task families and batched (vectorised) environments.
//!
//! A batched env runs `num_envs` copies in lockstep. Each copy samples its task from the
//! request's task list at every episode start (or keeps it for `trials` episodes). Episodes
//! reset automatically, as in gym3 and Procgen: the step that ends an episode returns that
//! episode's last reward and done flags, together with the *first* observation of the next one.
//! An env with [`Caps::ENV_FINAL_OBS`] also writes the episode's true last observation into
//! [`StepBuffers::final_obs`], which is what off-policy learners bootstrap from at a truncation.

use std::sync::atomic::AtomicBool;

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RSliceMut, RString, RVec},
    StableAbi,
};

use crate::export::guard;
use crate::types::*;

/// What the host asks an env plugin to build.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct EnvRequest {
    /// Task family name, as listed in the plugin's descriptor.
    pub family: RString,
    /// Task ids the envs sample from (non-empty, each `< family.tasks.len()`).
    pub tasks: RVec<u64>,
    /// Number of envs run in lockstep (at least 1).
    pub num_envs: u32,
    /// Episodes played on one sampled task before sampling another (1 = every episode).
    /// Values above 1 need [`Caps::ENV_TRIALS`].
    pub trials: u32,
    /// Seed for task sampling and env randomness.
    pub seed: u64,
    /// Threads the env may use for its own work (the host's budget for this process).
    pub threads: u32,
    /// Plugin config as a TOML table (registry default merged with the experiment's).
    pub config: RString,
}

/// What a built env looks like.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct EnvSpec {
    /// Observation space of one env.
    pub obs: ObsSpace,
    /// Action space of one env.
    pub action: ActionSpace,
    /// Number of envs run in lockstep.
    pub num_envs: u32,
    /// Steps after which an episode is truncated (0 = the env sets no limit).
    pub max_episode_steps: u32,
    /// What this env does beyond the basics ([`Caps::ENV_FINAL_OBS`], [`Caps::ENV_TRIALS`],
    /// [`Caps::ENV_DEMOS`]): visible to whoever holds the env, not only to the host.
    pub caps: Caps,
}

/// Buffers the caller lends to [`Env::reset`]; one row per env.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct ResetBuffers<'a> {
    /// First observations: one array per observation part, `num_envs * part.numel()` each.
    pub obs: ArraysMut<'a>,
    /// Task of each observation.
    pub task: RSliceMut<'a, u64>,
}

/// Buffers the caller lends to [`Env::step`]; one row per env.
///
/// The env writes straight into them, so an observation is copied at most once on its way
/// from the simulator to the caller.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct StepBuffers<'a> {
    /// Next observations (the first of a new episode where one ended), one array per part.
    pub obs: ArraysMut<'a>,
    /// Shaped like `obs`. An env with [`Caps::ENV_FINAL_OBS`] writes the true last observation
    /// of each env whose episode ended on this step (`terminated` or `truncated`) into that
    /// env's rows; other rows are left as they are. Envs without the capability leave it alone.
    pub final_obs: ArraysMut<'a>,
    /// Reward of the step just taken.
    pub reward: RSliceMut<'a, f32>,
    /// 1 if the episode reached a terminal state on this step.
    pub terminated: RSliceMut<'a, u8>,
    /// 1 if the episode was cut off (time limit) on this step.
    pub truncated: RSliceMut<'a, u8>,
    /// 1 if the episode that ended was successful (the task was solved).
    pub success: RSliceMut<'a, u8>,
    /// 1 if this step ended the last trial on the current task: the next observation belongs
    /// to a freshly sampled task, so recurrent state should be reset (RL² episodes).
    pub task_end: RSliceMut<'a, u8>,
    /// Task of each returned observation.
    pub task: RSliceMut<'a, u64>,
}

/// One finished episode, as reported by [`Env::take_episodes`].
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct EpisodeStat {
    /// Index of the env in the batch.
    pub env: u32,
    /// Task the episode ran on.
    pub task: u64,
    /// Undiscounted return.
    pub ret: f32,
    /// Length in steps.
    pub len: u32,
    /// Whether the task was solved.
    pub success: bool,
}

/// An expert trajectory: `len + 1` observations, `len` actions and rewards.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// Task of the trajectory.
    pub task: u64,
    /// Observations, including the one after the last action: one array per observation part,
    /// `(len + 1) * part.numel()` elements each.
    pub obs: RVec<Array>,
    /// Actions taken: one array per action part, `len * part.numel()` elements each.
    pub actions: RVec<Array>,
    /// Rewards received.
    pub rewards: RVec<f32>,
    /// Whether the trajectory solved the task.
    pub success: bool,
}

/// A batched environment, as a plugin author implements it.
///
/// Methods may return errors freely and may even panic: the glue in this crate turns a panic
/// into [`ErrorKind::PANICKED`] and refuses further calls on that env.
pub trait Env: Send + 'static {
    /// Spaces and batch size. Must not change over the env's life.
    fn spec(&self) -> EnvSpec;
    /// Starts a new episode in every env, seeding all randomness from `seed`.
    fn reset(&mut self, seed: u64, out: ResetBuffers<'_>) -> Result<(), PluginError>;
    /// Applies one action per env (one array per action part) and fills `out`.
    fn step(&mut self, actions: Arrays<'_>, out: StepBuffers<'_>) -> Result<(), PluginError>;
    /// Returns (and forgets) the episodes finished since the last call.
    fn take_episodes(&mut self) -> Vec<EpisodeStat> {
        Vec::new()
    }
    /// Expert demonstrations for `task` (needs [`Caps::ENV_DEMOS`]): up to `episodes` expert
    /// episodes (one that fails may be dropped), then any trajectories the env derives from
    /// them (such as C2F-ARM's demo augmentation: later start states of the same episodes).
    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> Result<Vec<Trajectory>, PluginError> {
        let _ = (task, episodes, seed);
        Err(PluginError::unsupported("this env has no expert demonstrations"))
    }
}

/// The FFI-safe form of [`Env`], called by the host and by meta plugins.
///
/// Built only by this crate's glue ([`into_ffi`] and `export_plugin!`), never by hand.
/// Methods added in later 0.2.x versions come after the last prefix field and have a default
/// body, which is what an older plugin's object answers.
#[sabi_trait]
pub trait EnvFfi: Send {
    /// See [`Env::spec`].
    fn spec(&self) -> PResult<EnvSpec>;
    /// See [`Env::reset`].
    fn reset(&mut self, seed: u64, out: ResetBuffers<'_>) -> PResult<()>;
    /// See [`Env::step`].
    fn step(&mut self, actions: Arrays<'_>, out: StepBuffers<'_>) -> PResult<()>;
    /// See [`Env::take_episodes`].
    fn take_episodes(&mut self) -> PResult<RVec<EpisodeStat>>;
    /// See [`Env::demos`].
    #[sabi(last_prefix_field)]
    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> PResult<RVec<Trajectory>>;
}

/// An owned env handle that can cross the boundary.
pub type EnvBox = EnvFfi_TO<'static, RBox<()>>;

/// Wraps an in-process [`Env`] in the FFI-safe form, with the same panic guard a loaded
/// plugin gets: how tests and embedders drive a plugin's code without loading it as a library.
pub fn into_ffi(inner: Box<dyn Env>) -> EnvBox {
    EnvFfi_TO::from_value(GuardedEnv { inner, poisoned: AtomicBool::new(false) }, abi_stable::sabi_trait::TD_Opaque)
}

struct GuardedEnv {
    inner: Box<dyn Env>,
    poisoned: AtomicBool,
}

impl EnvFfi for GuardedEnv {
    fn spec(&self) -> PResult<EnvSpec> {
        guard(&self.poisoned, "spec", || Ok(self.inner.spec()))
    }
    fn reset(&mut self, seed: u64, out: ResetBuffers<'_>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "reset", || inner.reset(seed, out))
    }
    fn step(&mut self, actions: Arrays<'_>, out: StepBuffers<'_>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "step", || inner.step(actions, out))
    }
    fn take_episodes(&mut self) -> PResult<RVec<EpisodeStat>> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "take_episodes", || Ok(inner.take_episodes().into()))
    }
    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> PResult<RVec<Trajectory>> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "demos", || inner.demos(task, episodes, seed).map(Into::into))
    }
}
