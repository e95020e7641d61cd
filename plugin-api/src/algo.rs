//! Base RL algorithms: agents that act, record task-tagged transitions and update by plan.
//!
//! The algo owns its network, optimizer and replay or rollout storage, and its own libtorch
//! graph if it uses one. Everything it exchanges with the host or a meta plugin is plain data:
//! observations, actions, flat parameter vectors, serialized state, and (for PEARL) gradients
//! with respect to the context input.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RSlice, RSliceMut, RString, RVec},
    StableAbi,
};

use crate::export::guard;
use crate::types::*;

/// What the host asks an algo plugin to build.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct AlgoRequest {
    /// Observation space of one env.
    pub obs: ObsSpace,
    /// Action space of one env.
    pub action: ActionSpace,
    /// Number of envs whose steps arrive together in `act` and `record`.
    pub num_envs: u32,
    /// Width of the context vector appended to the latent (0 = no context input).
    pub context_dim: u32,
    /// Seed for initialisation and sampling.
    pub seed: u64,
    /// `"cpu"`, `"cuda"` or `"auto"` (CUDA when present).
    pub device: RString,
    /// Plugin config as a TOML table (registry default merged with the experiment's).
    pub config: RString,
}

/// What an algo can do, reported once it is built.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct AlgoInfo {
    /// Capability flags (on/off-policy, recurrent, context, ...).
    pub caps: Caps,
    /// Floats of recurrent state per env (0 if not recurrent).
    pub state_dim: u32,
    /// Length of the flat parameter vector of [`Algo::params`].
    pub param_count: u64,
    /// Steps per env the algo wants between two updates: the rollout length of an on-policy
    /// algo, or the env steps per gradient step of an off-policy one.
    pub steps_per_update: u32,
}

/// Inputs of one batched [`Algo::act`] call; every slice has one entry (or row) per env.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct ActInput<'a> {
    /// Current observations.
    pub obs: ObsRef<'a>,
    /// Recurrent state, `num_envs * state_dim` floats, read and overwritten in place.
    /// The caller owns it: zero a row to reset that env's memory. Empty if not recurrent.
    pub state: RSliceMut<'a, f32>,
    /// Previous actions (RL² input; zeros at an episode start).
    pub prev_action: ActionsRef<'a>,
    /// Previous rewards (RL² input).
    pub prev_reward: RSlice<'a, f32>,
    /// 1 where the observation starts an episode.
    pub first: RSlice<'a, u8>,
    /// Context vectors, `num_envs * context_dim` floats, or empty.
    pub context: RSlice<'a, f32>,
    /// Act greedily (evaluation) instead of sampling.
    pub deterministic: bool,
}

impl<'a> ActInput<'a> {
    /// Input for a feed-forward agent without context: observations only, with empty
    /// recurrent state, RL² inputs and context.
    pub fn observations(obs: ObsRef<'a>, deterministic: bool) -> Self {
        ActInput {
            obs,
            state: RSliceMut::from_mut_slice(&mut []),
            prev_action: ActionsRef::Discrete(RSlice::from_slice(&[])),
            prev_reward: RSlice::from_slice(&[]),
            first: RSlice::from_slice(&[]),
            context: RSlice::from_slice(&[]),
            deterministic,
        }
    }
}

/// Outputs of one batched [`Algo::act`] call.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct ActOutput<'a> {
    /// Chosen actions.
    pub actions: ActionsMut<'a>,
    /// Per-env values the algo wants back with the transition in [`Algo::record`]
    /// (for PPO: value estimate and log-probability), `num_envs * extras_dim` floats.
    /// The caller treats them as opaque.
    pub extras: RSliceMut<'a, f32>,
}

/// One batch of transitions, one row per env, tagged with the task it came from.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct Transitions<'a> {
    /// Observations the actions were taken in.
    pub obs: ObsRef<'a>,
    /// Actions taken.
    pub actions: ActionsRef<'a>,
    /// The `extras` that `act` returned for these actions (empty for off-policy data
    /// that did not come from this agent, such as demonstrations).
    pub extras: RSlice<'a, f32>,
    /// Rewards received.
    pub rewards: RSlice<'a, f32>,
    /// 1 where the episode reached a terminal state.
    pub terminated: RSlice<'a, u8>,
    /// 1 where the episode was truncated.
    pub truncated: RSlice<'a, u8>,
    /// Observations after the step (for auto-reset envs: the next episode's first one where
    /// an episode ended, so off-policy algos must not bootstrap through `terminated`).
    pub next_obs: ObsRef<'a>,
    /// Recurrent state *before* the step, as passed to `act` (empty if not recurrent).
    pub state: RSlice<'a, f32>,
    /// Task of each row.
    pub task: RSlice<'a, u64>,
}

/// How an update should use the recorded data.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct UpdatePlan {
    /// Whose data to learn from; empty means all recorded tasks.
    pub tasks: RVec<u64>,
    /// Off-policy: samples drawn from each listed task's buffer per gradient step.
    /// On-policy: ignored (the whole rollout is used).
    pub samples_per_task: u32,
    /// Gradient steps (off-policy), or epochs over the rollout (on-policy; 0 = config default).
    pub grad_steps: u32,
    /// Also return dL/d(context) for the batch's context inputs (needs [`Caps::CONTEXT`]).
    pub want_context_grad: bool,
}

/// What an update reports.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct UpdateStats {
    /// Losses and diagnostics.
    pub scalars: RVec<Scalar>,
    /// dL/d(context), one row per sample, when asked for.
    pub context_grad: RVec<f32>,
}

/// A base RL algorithm, as a plugin author implements it.
pub trait Algo: Send + 'static {
    /// Capabilities and sizes.
    fn info(&self) -> AlgoInfo;
    /// Number of floats per env in `ActOutput::extras`.
    fn extras_dim(&self) -> u32;
    /// Chooses one action per env.
    fn act(&mut self, input: ActInput<'_>, out: ActOutput<'_>) -> Result<(), PluginError>;
    /// Stores one step of transitions.
    fn record(&mut self, batch: Transitions<'_>) -> Result<(), PluginError>;
    /// Learns from recorded data according to `plan`.
    fn update(&mut self, plan: &UpdatePlan) -> Result<UpdateStats, PluginError>;
    /// All trainable parameters as one flat vector, in a fixed order.
    fn params(&self) -> Result<Vec<f32>, PluginError>;
    /// Overwrites all trainable parameters (same order and length as [`Algo::params`]).
    fn set_params(&mut self, params: &[f32]) -> Result<(), PluginError>;
    /// Serializes weights, optimizer state and anything needed to resume exactly.
    fn save(&self) -> Result<Vec<u8>, PluginError>;
    /// Restores what [`Algo::save`] produced.
    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError>;
    /// Re-initialises the policy and value heads, keeping the encoder.
    fn reset_heads(&mut self, seed: u64) -> Result<(), PluginError>;
    /// Drops recorded data (rollouts or replay buffers).
    fn clear(&mut self) -> Result<(), PluginError>;
}

/// The FFI-safe form of [`Algo`].
#[sabi_trait]
pub trait AlgoFfi: Send {
    /// See [`Algo::info`].
    fn info(&self) -> PResult<AlgoInfo>;
    /// See [`Algo::extras_dim`].
    fn extras_dim(&self) -> PResult<u32>;
    /// See [`Algo::act`].
    fn act(&mut self, input: ActInput<'_>, out: ActOutput<'_>) -> PResult<()>;
    /// See [`Algo::record`].
    fn record(&mut self, batch: Transitions<'_>) -> PResult<()>;
    /// See [`Algo::update`].
    fn update(&mut self, plan: &UpdatePlan) -> PResult<UpdateStats>;
    /// See [`Algo::params`].
    fn params(&self) -> PResult<RVec<f32>>;
    /// See [`Algo::set_params`].
    fn set_params(&mut self, params: RSlice<'_, f32>) -> PResult<()>;
    /// See [`Algo::save`].
    fn save(&self) -> PResult<RVec<u8>>;
    /// See [`Algo::load`].
    fn load(&mut self, bytes: RSlice<'_, u8>) -> PResult<()>;
    /// See [`Algo::reset_heads`].
    fn reset_heads(&mut self, seed: u64) -> PResult<()>;
    /// See [`Algo::clear`].
    #[sabi(last_prefix_field)]
    fn clear(&mut self) -> PResult<()>;
}

/// An owned algo handle that can cross the boundary.
pub type AlgoBox = AlgoFfi_TO<'static, RBox<()>>;

/// Wraps an in-process [`Algo`] in the FFI-safe form, with the same panic guard a loaded
/// plugin gets: how tests and embedders drive a plugin's code without loading it as a library.
pub fn into_ffi(inner: Box<dyn Algo>) -> AlgoBox {
    GuardedAlgo::boxed(inner)
}

pub(crate) struct GuardedAlgo {
    inner: Box<dyn Algo>,
    poisoned: bool,
}

impl GuardedAlgo {
    pub(crate) fn boxed(inner: Box<dyn Algo>) -> AlgoBox {
        AlgoFfi_TO::from_value(GuardedAlgo { inner, poisoned: false }, abi_stable::sabi_trait::TD_Opaque)
    }
}

impl AlgoFfi for GuardedAlgo {
    fn info(&self) -> PResult<AlgoInfo> {
        let inner = &self.inner;
        guard(&mut { self.poisoned }, "info", || Ok(inner.info()))
    }
    fn extras_dim(&self) -> PResult<u32> {
        let inner = &self.inner;
        guard(&mut { self.poisoned }, "extras_dim", || Ok(inner.extras_dim()))
    }
    fn act(&mut self, input: ActInput<'_>, out: ActOutput<'_>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "act", || inner.act(input, out))
    }
    fn record(&mut self, batch: Transitions<'_>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "record", || inner.record(batch))
    }
    fn update(&mut self, plan: &UpdatePlan) -> PResult<UpdateStats> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "update", || inner.update(plan))
    }
    fn params(&self) -> PResult<RVec<f32>> {
        let inner = &self.inner;
        guard(&mut { self.poisoned }, "params", || inner.params().map(Into::into))
    }
    fn set_params(&mut self, params: RSlice<'_, f32>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "set_params", || inner.set_params(params.as_slice()))
    }
    fn save(&self) -> PResult<RVec<u8>> {
        let inner = &self.inner;
        guard(&mut { self.poisoned }, "save", || inner.save().map(Into::into))
    }
    fn load(&mut self, bytes: RSlice<'_, u8>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "load", || inner.load(bytes.as_slice()))
    }
    fn reset_heads(&mut self, seed: u64) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "reset_heads", || inner.reset_heads(seed))
    }
    fn clear(&mut self) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "clear", || inner.clear())
    }
}
