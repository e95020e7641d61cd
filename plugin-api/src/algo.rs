//! Base RL algorithms: agents that act, record task-tagged transitions and update by plan.
//!
//! The algo owns its network, optimizer and replay or rollout storage, and its own libtorch
//! graph if it uses one. Everything it exchanges with the host or a meta plugin is plain data:
//! observations and actions as named parts, flat parameter vectors, serialized state, and (for
//! PEARL) per-task context rows in and gradients with respect to them out.

use std::sync::atomic::AtomicBool;

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
    /// Width of the context vector the agent takes as extra input (0 = no context input).
    pub context_dim: u32,
    /// Seed for initialisation and sampling.
    pub seed: u64,
    /// `"cpu"`, `"cuda"`, `"cuda:N"` or `"auto"` (CUDA when present).
    pub device: RString,
    /// Intra-op threads for numerical libraries (libtorch), decided once by the host for the
    /// whole process. Every plugin in the process gets the same value, so setting it is
    /// idempotent and two plugins never fight over it.
    pub threads: u32,
    /// Plugin config as a TOML table (registry default merged with the experiment's).
    pub config: RString,
}

/// What an algo can do and how it wants to be driven, reported once it is built.
///
/// These are the numbers the shared training loop (`metarl-plugin-kit`'s `driver::train`)
/// puts into every [`UpdatePlan`]; a meta-method may plan otherwise.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct AlgoInfo {
    /// Capability flags (on/off-policy, recurrent, context, ...).
    pub caps: Caps,
    /// Floats of recurrent state per env (0 if not recurrent).
    pub state_dim: u32,
    /// Floats per env in [`ActOutput::extras`] (0 if the algo wants none back).
    pub extras_dim: u32,
    /// Length of the flat parameter vector of [`Algo::params`].
    pub param_count: u64,
    /// Steps per env between two updates: the rollout length of an on-policy algo, or the env
    /// steps per update of an off-policy one (1 = an update after every step).
    pub steps_per_update: u32,
    /// The `grad_steps` of an ordinary update: epochs over the rollout (on-policy) or gradient
    /// steps (off-policy). At least 1.
    pub grad_steps: u32,
    /// Off-policy: samples per gradient step (the batch size), which a multi-task plan divides
    /// among its tasks. On-policy: the rows of one minibatch (informational).
    pub batch_size: u32,
    /// Env steps (summed over envs) to record after construction, `load` or `clear` before the
    /// first update: an off-policy algo's replay warm-up. 0 for on-policy algos.
    pub learning_starts: u64,
}

/// Inputs of one batched [`Algo::act`] call; every slice has one entry (or row) per env.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct ActInput<'a> {
    /// Current observations, one array per observation part.
    pub obs: Arrays<'a>,
    /// Recurrent state, `num_envs * state_dim` floats, read and overwritten in place.
    /// The caller owns it: zero a row to reset that env's memory. Empty if not recurrent.
    pub state: RSliceMut<'a, f32>,
    /// Previous actions, one array per action part (RL² input; zeros at an episode start).
    /// Empty (no parts) when the caller does not track them.
    pub prev_action: Arrays<'a>,
    /// Previous rewards (RL² input), or empty.
    pub prev_reward: RSlice<'a, f32>,
    /// 1 where the observation starts an episode, or empty.
    pub first: RSlice<'a, u8>,
    /// Context vectors, `num_envs * context_dim` floats, or empty.
    pub context: RSlice<'a, f32>,
    /// Evaluation: act greedily and switch exploration noise off (noisy nets, sampling).
    pub deterministic: bool,
}

impl<'a> ActInput<'a> {
    /// Input for a feed-forward agent without context: observations only, with empty
    /// recurrent state, RL² inputs and context.
    pub fn observations(obs: Arrays<'a>, deterministic: bool) -> Self {
        ActInput {
            obs,
            state: RSliceMut::from_mut_slice(&mut []),
            prev_action: RSlice::from_slice(&[]),
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
    /// Chosen actions, one array per action part: what is sent to the env.
    pub actions: ArraysMut<'a>,
    /// Per-env values the algo wants back with the transition in [`Algo::record`]
    /// (for PPO: value estimate and log-probability), `num_envs * extras_dim` floats.
    /// The caller treats them as opaque.
    pub extras: RSliceMut<'a, f32>,
}

/// One batch of transitions, one row per env, as named columns.
///
/// The first group of columns is always present. The optional ones are empty (no elements,
/// or no parts) when absent; which are present depends on the env's capabilities and on what
/// the caller tracks, never on the row. A new need is a new entry of [`Transitions::more`],
/// not a new layout.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct Transitions<'a> {
    /// Observations the actions were taken in, one array per part.
    pub obs: Arrays<'a>,
    /// Actions taken (as sent to the env), one array per part.
    pub actions: Arrays<'a>,
    /// Rewards received.
    pub rewards: RSlice<'a, f32>,
    /// 1 where the episode reached a terminal state: do not bootstrap.
    pub terminated: RSlice<'a, u8>,
    /// 1 where the episode was cut off (time limit): bootstrap from `final_obs` if present.
    pub truncated: RSlice<'a, u8>,
    /// Observations after the step. For auto-reset envs, where an episode ended this is
    /// already the next episode's first observation.
    pub next_obs: Arrays<'a>,
    /// Task of each row.
    pub task: RSlice<'a, u64>,

    /// Optional: the true last observation where `terminated` or `truncated` is 1 (other rows
    /// unspecified). Present when the env has [`Caps::ENV_FINAL_OBS`].
    pub final_obs: Arrays<'a>,
    /// Optional: the `extras` that `act` returned for these actions (empty for data that did
    /// not come from this agent, such as demonstrations).
    pub extras: RSlice<'a, f32>,
    /// Optional: recurrent state *before* the step, as passed to `act`.
    pub state: RSlice<'a, f32>,
    /// Optional: the previous actions given to `act` (RL² input), one array per part.
    pub prev_action: Arrays<'a>,
    /// Optional: the previous rewards given to `act`.
    pub prev_reward: RSlice<'a, f32>,
    /// Optional: 1 where `obs` started an episode.
    pub first: RSlice<'a, u8>,
    /// Optional: the context rows given to `act`, `num_envs * context_dim` floats.
    pub context: RSlice<'a, f32>,
    /// Optional columns without a field of their own (for example `agent_action` where the
    /// agent's choice differs from what the env was sent).
    pub more: RSlice<'a, NamedArray<'a>>,
}

/// Every column empty: the base for `Transitions { obs, actions, .., ..Default::default() }`.
impl Default for Transitions<'_> {
    fn default() -> Self {
        Transitions {
            obs: RSlice::from_slice(&[]),
            actions: RSlice::from_slice(&[]),
            rewards: RSlice::from_slice(&[]),
            terminated: RSlice::from_slice(&[]),
            truncated: RSlice::from_slice(&[]),
            next_obs: RSlice::from_slice(&[]),
            task: RSlice::from_slice(&[]),
            final_obs: RSlice::from_slice(&[]),
            extras: RSlice::from_slice(&[]),
            state: RSlice::from_slice(&[]),
            prev_action: RSlice::from_slice(&[]),
            prev_reward: RSlice::from_slice(&[]),
            first: RSlice::from_slice(&[]),
            context: RSlice::from_slice(&[]),
            more: RSlice::from_slice(&[]),
        }
    }
}

/// How an update should use the recorded data. Every field means the same for every algo of
/// a kind; no value is a stand-in for "default".
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct UpdatePlan {
    /// Off-policy: the tasks whose buffers to sample, in order (non-empty; a task may appear
    /// once). On-policy: empty, since the update uses the whole rollout.
    pub tasks: RVec<u64>,
    /// Off-policy: samples drawn from each listed task's buffer per gradient step (at least
    /// 1). On-policy: 0.
    pub samples_per_task: u32,
    /// Gradient steps (off-policy) or epochs over the rollout (on-policy). 0 computes the
    /// loss, and the context gradient if asked, on the batch the first step would use,
    /// without changing parameters, optimizer state or recorded data: what a finite-difference
    /// check of the context gradient calls.
    pub grad_steps: u32,
    /// Context rows, `tasks.len() * context_dim` floats: row `i` is the context input for every
    /// sample of `tasks[i]` in this update, for the online and the target network alike.
    /// Empty when the algo has no context input or takes context from the recorded rows.
    /// Needs [`Caps::CONTEXT_GRAD`] when non-empty.
    pub context: RVec<f32>,
    /// Also return dL/d(context) (needs [`Caps::CONTEXT_GRAD`] and non-empty `context`).
    pub want_context_grad: bool,
}

impl UpdatePlan {
    /// An on-policy update of `epochs` epochs over the whole rollout.
    pub fn on_policy(epochs: u32) -> Self {
        Self { tasks: RVec::new(), samples_per_task: 0, grad_steps: epochs, context: RVec::new(), want_context_grad: false }
    }
    /// An off-policy update: `grad_steps` steps, each drawing `samples_per_task` samples from
    /// each of `tasks`.
    pub fn off_policy(tasks: Vec<u64>, samples_per_task: u32, grad_steps: u32) -> Self {
        Self { tasks: tasks.into(), samples_per_task, grad_steps, context: RVec::new(), want_context_grad: false }
    }
}

/// What an update reports.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct UpdateStats {
    /// Losses and diagnostics.
    pub scalars: RVec<Scalar>,
    /// When asked for: `plan.tasks.len() * context_dim` floats, row `i` for `plan.tasks[i]`.
    /// It is ∂L/∂z_i of the loss L of the update's **first** gradient step (its batch drawn as
    /// that step draws it), at the parameters before the update, where L is the sum over
    /// that step's samples of their per-sample loss, divided by the step's sample count (the
    /// mean the optimiser minimises), and z_i is `plan.context` row `i`.
    pub context_grad: RVec<f32>,
    /// Gradient steps taken. An off-policy algo may take none when no task of the plan has
    /// anything to sample yet (a task just begun); `context_grad` is then empty.
    pub grad_steps: u32,
    /// Samples (rows) the update learnt from, over all its gradient steps.
    pub samples: u64,
}

/// A base RL algorithm, as a plugin author implements it.
pub trait Algo: Send + 'static {
    /// Capabilities and sizes.
    fn info(&self) -> AlgoInfo;
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
    /// Restores what [`Algo::save`] produced, exactly: the host calls it to continue a unit
    /// from its own mid-phase checkpoint, and the run must go on as if never stopped.
    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError>;
    /// Re-initialises the policy and value heads, keeping the encoder.
    fn reset_heads(&mut self, seed: u64) -> Result<(), PluginError>;
    /// Drops recorded data (rollouts or replay buffers).
    fn clear(&mut self) -> Result<(), PluginError>;
    /// Starts adaptation from a pretraining checkpoint (what [`Algo::save`] wrote at the end
    /// of pretraining). The host calls this, not [`Algo::load`], when an adaptation unit
    /// begins, then [`Algo::reset_heads`] if the experiment asks. An algo whose fine-tuning
    /// differs from carrying on (a fresh optimiser, a restarted exploration schedule, an
    /// emptied replay) does that here; the default carries on, as `load` does.
    fn load_pretrained(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.load(bytes)
    }
}

/// The FFI-safe form of [`Algo`]. Methods added in later 0.2.x versions come after the last
/// prefix field, with a default body.
#[sabi_trait]
pub trait AlgoFfi: Send {
    /// See [`Algo::info`].
    fn info(&self) -> PResult<AlgoInfo>;
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
    /// Added in 0.2.5: see [`Algo::load_pretrained`]. A plugin built before 0.2.5 answers
    /// with this default body, its `load`, which is what hosts before 0.2.5 called.
    fn load_pretrained(&mut self, bytes: RSlice<'_, u8>) -> PResult<()> {
        self.load(bytes)
    }
}

/// An owned algo handle that can cross the boundary.
pub type AlgoBox = AlgoFfi_TO<'static, RBox<()>>;

/// Wraps an in-process [`Algo`] in the FFI-safe form, with the same panic guard a loaded
/// plugin gets: how tests and embedders drive a plugin's code without loading it as a library.
pub fn into_ffi(inner: Box<dyn Algo>) -> AlgoBox {
    AlgoFfi_TO::from_value(GuardedAlgo { inner, poisoned: AtomicBool::new(false) }, abi_stable::sabi_trait::TD_Opaque)
}

struct GuardedAlgo {
    inner: Box<dyn Algo>,
    poisoned: AtomicBool,
}

impl AlgoFfi for GuardedAlgo {
    fn info(&self) -> PResult<AlgoInfo> {
        guard(&self.poisoned, "info", || Ok(self.inner.info()))
    }
    fn act(&mut self, input: ActInput<'_>, out: ActOutput<'_>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "act", || inner.act(input, out))
    }
    fn record(&mut self, batch: Transitions<'_>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "record", || inner.record(batch))
    }
    fn update(&mut self, plan: &UpdatePlan) -> PResult<UpdateStats> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "update", || inner.update(plan))
    }
    fn params(&self) -> PResult<RVec<f32>> {
        guard(&self.poisoned, "params", || self.inner.params().map(Into::into))
    }
    fn set_params(&mut self, params: RSlice<'_, f32>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "set_params", || inner.set_params(params.as_slice()))
    }
    fn save(&self) -> PResult<RVec<u8>> {
        guard(&self.poisoned, "save", || self.inner.save().map(Into::into))
    }
    fn load(&mut self, bytes: RSlice<'_, u8>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "load", || inner.load(bytes.as_slice()))
    }
    fn reset_heads(&mut self, seed: u64) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "reset_heads", || inner.reset_heads(seed))
    }
    fn clear(&mut self) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "clear", || inner.clear())
    }
    fn load_pretrained(&mut self, bytes: RSlice<'_, u8>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "load_pretrained", || inner.load_pretrained(bytes.as_slice()))
    }
}
