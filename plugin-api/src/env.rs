//! Environment adapters: task families and batched (vectorised) environments.
//!
//! A batched env runs `num_envs` copies in lockstep. Each copy samples its task from the
//! request's task list at every episode start (or keeps it for `trials` episodes). Episodes
//! reset automatically, as in gym3 and Procgen: the step that ends an episode returns that
//! episode's last reward and done flags, together with the *first* observation of the next one.

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
    /// Task indices the envs sample from (non-empty, each `< family.tasks.len()`).
    pub tasks: RVec<u64>,
    /// Number of envs run in lockstep (at least 1).
    pub num_envs: u32,
    /// Episodes played on one sampled task before sampling another (1 = every episode).
    /// Values above 1 need [`Caps::ENV_TRIALS`].
    pub trials: u32,
    /// Seed for task sampling and env randomness.
    pub seed: u64,
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
    /// Steps after which an episode is truncated (0 = no limit).
    pub max_episode_steps: u32,
}

/// Buffers the caller lends to [`Env::reset`]; one entry per env.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct ResetBuffers<'a> {
    /// First observations, `num_envs * obs.numel()` elements.
    pub obs: ObsMut<'a>,
    /// Task of each observation.
    pub task: RSliceMut<'a, u64>,
}

/// Buffers the caller lends to [`Env::step`]; one entry per env.
///
/// The env writes straight into them, so an observation is copied at most once on its way
/// from the simulator to the caller.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct StepBuffers<'a> {
    /// Next observations (the first of a new episode where one ended).
    pub obs: ObsMut<'a>,
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
    /// Observations, including the one after the last action.
    pub obs: ObsBuf,
    /// Actions taken.
    pub actions: ActionBuf,
    /// Rewards received.
    pub rewards: RVec<f32>,
    /// Whether the trajectory solved the task.
    pub success: bool,
}

/// A batched environment, as a plugin author implements it.
///
/// Methods may return errors freely and may even panic: the glue in this crate turns a panic
/// into [`ErrorKind::Panicked`] and refuses further calls on that env.
pub trait Env: Send + 'static {
    /// Spaces and batch size. Must not change over the env's life.
    fn spec(&self) -> EnvSpec;
    /// Starts a new episode in every env, seeding all randomness from `seed`.
    fn reset(&mut self, seed: u64, out: ResetBuffers<'_>) -> Result<(), PluginError>;
    /// Applies one action per env and fills `out`.
    fn step(&mut self, actions: ActionsRef<'_>, out: StepBuffers<'_>) -> Result<(), PluginError>;
    /// Returns (and forgets) the episodes finished since the last call.
    fn take_episodes(&mut self) -> Vec<EpisodeStat> {
        Vec::new()
    }
    /// Expert demonstrations for `task` (needs [`Caps::ENV_DEMOS`]).
    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> Result<Vec<Trajectory>, PluginError> {
        let _ = (task, episodes, seed);
        Err(PluginError::unsupported("this env has no expert demonstrations"))
    }
}

/// The FFI-safe form of [`Env`], called by the host and by meta plugins.
///
/// Built only by this crate's glue (`EnvFfi_TO::from_value(Guarded(env))`), never by hand.
#[sabi_trait]
pub trait EnvFfi: Send {
    /// See [`Env::spec`].
    fn spec(&self) -> PResult<EnvSpec>;
    /// See [`Env::reset`].
    fn reset(&mut self, seed: u64, out: ResetBuffers<'_>) -> PResult<()>;
    /// See [`Env::step`].
    fn step(&mut self, actions: ActionsRef<'_>, out: StepBuffers<'_>) -> PResult<()>;
    /// See [`Env::take_episodes`].
    fn take_episodes(&mut self) -> PResult<RVec<EpisodeStat>>;
    /// See [`Env::demos`].
    #[sabi(last_prefix_field)]
    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> PResult<RVec<Trajectory>>;
}

/// An owned env handle that can cross the boundary.
pub type EnvBox = EnvFfi_TO<'static, RBox<()>>;

/// Wraps an author's [`Env`] so that no panic escapes and a panicked env stays dead.
/// Wraps an in-process [`Env`] in the FFI-safe form, with the same panic guard a loaded
/// plugin gets: how tests and embedders drive a plugin's code without loading it as a library.
pub fn into_ffi(inner: Box<dyn Env>) -> EnvBox {
    GuardedEnv::boxed(inner)
}

pub(crate) struct GuardedEnv {
    inner: Box<dyn Env>,
    poisoned: bool,
}

impl GuardedEnv {
    pub(crate) fn boxed(inner: Box<dyn Env>) -> EnvBox {
        EnvFfi_TO::from_value(GuardedEnv { inner, poisoned: false }, abi_stable::sabi_trait::TD_Opaque)
    }
}

impl EnvFfi for GuardedEnv {
    fn spec(&self) -> PResult<EnvSpec> {
        let inner = &self.inner;
        guard(&mut { self.poisoned }, "spec", || Ok(inner.spec()))
    }
    fn reset(&mut self, seed: u64, out: ResetBuffers<'_>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "reset", || inner.reset(seed, out))
    }
    fn step(&mut self, actions: ActionsRef<'_>, out: StepBuffers<'_>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "step", || inner.step(actions, out))
    }
    fn take_episodes(&mut self) -> PResult<RVec<EpisodeStat>> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "take_episodes", || Ok(inner.take_episodes().into()))
    }
    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> PResult<RVec<Trajectory>> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "demos", || inner.demos(task, episodes, seed).map(Into::into))
    }
}
