//! Meta-methods: MT, Reptile, PEARL, RL² and whatever comes next.
//!
//! A meta plugin drives the two phases of a study, pretraining on the training tasks and
//! adaptation on a held-out task, using only the env interface (through the host's
//! [`HostServicesFfi::make_env`]) and the algo interface (an [`AlgoBox`] the host lends it).
//! It never sees an algo's internals and an algo never sees it, which is what lets any
//! meta-method combine with any base algorithm whose capabilities meet
//! [`MetaInfo::requires`].
//!
//! # Evaluation
//!
//! The host owns evaluation: it decides when (the zero-shot point, then every `eval_every`
//! adaptation steps), how many episodes and with which policy setting; the meta-method
//! performs it, because only it knows how its agent adapts (PEARL's inferred context, RL²'s
//! memory). The protocol:
//!
//! 1. A meta-method calls [`HostServicesFfi::progress`] once when a phase starts (with 0 env
//!    steps) and after every update.
//! 2. When the answer carries an [`EvalRequest`], the meta-method builds the evaluation env
//!    with [`HostServicesFfi::make_eval_env`], plays it until every env has finished its
//!    quota of episodes ([`eval_quota`]), acting as its adapted agent would, and then goes on.
//!    It does not learn from evaluation steps, and they do not count towards its budget.
//! 3. The host records the episodes itself, from the env it built, and refuses a phase whose
//!    evaluation requests were not carried out.

use abi_stable::{
    sabi_trait,
    sabi_types::RMut,
    std_types::{RBox, ROption, RSlice, RString, RVec},
    StableAbi,
};
use std::sync::atomic::AtomicBool;

use crate::algo::AlgoBox;
use crate::env::{EnvBox, Trajectory};
use crate::export::guard;
use crate::types::*;

/// What the host asks a meta plugin to build.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct MetaRequest {
    /// Seed for the meta-method's own randomness (task sampling, ...).
    pub seed: u64,
    /// Intra-op threads for numerical libraries; the same value the algo got
    /// ([`crate::algo::AlgoRequest::threads`]).
    pub threads: u32,
    /// `"cpu"`, `"cuda"`, `"cuda:N"` or `"auto"`, as the algo got it (for a PEARL encoder).
    pub device: RString,
    /// Plugin config as a TOML table (registry default merged with the experiment's).
    pub config: RString,
}

/// What a meta-method needs from its partners.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct MetaInfo {
    /// Algo capabilities this method cannot work without (e.g. `ON_POLICY | RECURRENT`).
    pub requires: Caps,
    /// Env capabilities this method cannot work without (e.g. `ENV_TRIALS`).
    pub env_requires: Caps,
    /// Width of the context vector the algo must accept (PEARL); 0 for none.
    pub context_dim: u32,
}

/// An evaluation the host asks for: play `episodes` episodes on the phase's tasks.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct EvalRequest {
    /// Episodes to play, over all envs (split as [`eval_quota`] says).
    pub episodes: u32,
    /// Envs of the evaluation env ([`HostServicesFfi::make_eval_env`] builds this many).
    pub num_envs: u32,
    /// Act greedily with exploration noise off (`ActInput::deterministic`).
    pub deterministic: bool,
    /// Probability of replacing each action by a uniformly random one (ε-greedy; 0 = never).
    pub epsilon: f32,
    /// Seed of the evaluation env and of the ε draws.
    pub seed: u64,
    /// Env steps of the phase so far (where this point sits on the curve).
    pub at_env_steps: u64,
}

/// Episodes env `env` of an evaluation must finish: `episodes` split as evenly as possible,
/// the first envs taking one more. Episodes beyond an env's quota are not counted, so short
/// episodes cannot crowd out long ones.
pub fn eval_quota(episodes: u32, num_envs: u32, env: u32) -> u32 {
    let (base, extra) = (episodes / num_envs.max(1), episodes % num_envs.max(1));
    base + u32::from(env < extra)
}

/// The host's answer to a progress report.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Progress {
    /// False when the meta-method should stop: the budget is spent or the run is being
    /// interrupted.
    pub go_on: bool,
    /// An evaluation to carry out now, before anything else.
    pub evaluate: ROption<EvalRequest>,
}

/// Services the host offers a meta plugin during a phase.
#[sabi_trait]
pub trait HostServicesFfi {
    /// Builds a batched training env of the experiment's env plugin and family over `tasks`.
    fn make_env(&mut self, tasks: RSlice<'_, u64>, num_envs: u32, trials: u32, seed: u64) -> PResult<EnvBox>;
    /// Builds the env for the evaluation `req`, over the phase's tasks, with `trials` episodes
    /// per sampled task (RL² keeps its memory over them).
    fn make_eval_env(&mut self, req: &EvalRequest, trials: u32) -> PResult<EnvBox>;
    /// Reports env steps consumed so far in this phase, with optional diagnostics, and hears
    /// whether to go on and whether to evaluate first.
    #[sabi(last_prefix_field)]
    fn progress(&mut self, algo: &mut AlgoBox, env_steps: u64, scalars: RSlice<'_, Scalar>) -> PResult<Progress>;
    /// Added in 0.2.3: the expert demonstrations the experiment gives this phase: in
    /// pretraining `[pretrain] demos` per training task, in adaptation the unit's test-time
    /// count of its held-out task; empty without. A host built before 0.2.3 answers with this
    /// default body (none).
    fn demos(&mut self) -> PResult<RVec<Trajectory>> {
        abi_stable::std_types::ROk(RVec::new())
    }
    /// Added in 0.2.4: whether the host wants a mid-phase checkpoint now, asked right after a
    /// [`HostServicesFfi::progress`] call (and the evaluation it asked for). True when the
    /// host's checkpoint cadence came round, and when the run is being stopped (Slurm's
    /// warning before a time limit or preemption, Ctrl-C): then `progress` also said not to
    /// go on. A host built before 0.2.4 answers with this default body (never).
    fn checkpoint_due(&mut self) -> bool {
        false
    }
    /// Added in 0.2.4: a mid-phase checkpoint. `meta_state` is what the meta-method's `load`
    /// needs to continue this phase where it stands: the same `pretrain` or `adapt` call,
    /// made again after `load`, goes on from here rather than starting over. The host saves
    /// it with the algo's state (`algo.save()`, which must not change the algo) and its own
    /// record of the phase. Taking one must not change what the phase computes: training goes
    /// on after it. A host built before 0.2.4 answers with this default body (refused).
    fn checkpoint(&mut self, algo: &mut AlgoBox, meta_state: RSlice<'_, u8>) -> PResult<()> {
        let _ = (algo, meta_state);
        abi_stable::std_types::RErr(PluginError::invalid("this host takes no mid-phase checkpoints (plugin-api < 0.2.4)"))
    }
}

/// Borrowed host services.
pub type HostServices<'a> = HostServicesFfi_TO<'a, RMut<'a, ()>>;

/// Everything a phase works with.
#[repr(C)]
#[derive(StableAbi)]
pub struct MetaContext<'a> {
    /// Env construction, evaluation and progress reporting.
    pub host: HostServices<'a>,
    /// The agent being trained.
    pub algo: &'a mut AlgoBox,
    /// Training tasks (pretraining) or the held-out task(s) (adaptation).
    pub tasks: RSlice<'a, u64>,
    /// Env steps this phase may consume (evaluation steps not included).
    pub budget_env_steps: u64,
    /// Envs per batch the experiment asks for.
    pub num_envs: u32,
    /// Seed of this phase.
    pub seed: u64,
}

/// A meta-method, as a plugin author implements it.
pub trait Meta: Send + 'static {
    /// Requirements on the algo and env.
    fn info(&self) -> MetaInfo;
    /// Pretrains `ctx.algo` on `ctx.tasks`.
    fn pretrain(&mut self, ctx: MetaContext<'_>) -> Result<(), PluginError>;
    /// Adapts the pretrained `ctx.algo` to the held-out `ctx.tasks`, evaluating when asked.
    fn adapt(&mut self, ctx: MetaContext<'_>) -> Result<(), PluginError>;
    /// Serializes the method's own state (not the algo's), for checkpoints.
    fn save(&self) -> Result<Vec<u8>, PluginError> {
        Ok(Vec::new())
    }
    /// Restores what [`Meta::save`] produced.
    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let _ = bytes;
        Ok(())
    }
}

/// The FFI-safe form of [`Meta`]. Methods added in later 0.2.x versions come after the last
/// prefix field, with a default body.
#[sabi_trait]
pub trait MetaFfi: Send {
    /// See [`Meta::info`].
    fn info(&self) -> PResult<MetaInfo>;
    /// See [`Meta::pretrain`].
    fn pretrain(&mut self, ctx: MetaContext<'_>) -> PResult<()>;
    /// See [`Meta::adapt`].
    fn adapt(&mut self, ctx: MetaContext<'_>) -> PResult<()>;
    /// See [`Meta::save`].
    fn save(&self) -> PResult<RVec<u8>>;
    /// See [`Meta::load`].
    #[sabi(last_prefix_field)]
    fn load(&mut self, bytes: RSlice<'_, u8>) -> PResult<()>;
}

/// An owned meta handle that can cross the boundary.
pub type MetaBox = MetaFfi_TO<'static, RBox<()>>;

/// Wraps an in-process [`Meta`] in the FFI-safe form, with the same panic guard a loaded
/// plugin gets: how tests and embedders drive a plugin's code without loading it as a library.
pub fn into_ffi(inner: Box<dyn Meta>) -> MetaBox {
    MetaFfi_TO::from_value(GuardedMeta { inner, poisoned: AtomicBool::new(false) }, abi_stable::sabi_trait::TD_Opaque)
}

struct GuardedMeta {
    inner: Box<dyn Meta>,
    poisoned: AtomicBool,
}

impl MetaFfi for GuardedMeta {
    fn info(&self) -> PResult<MetaInfo> {
        guard(&self.poisoned, "info", || Ok(self.inner.info()))
    }
    fn pretrain(&mut self, ctx: MetaContext<'_>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "pretrain", || inner.pretrain(ctx))
    }
    fn adapt(&mut self, ctx: MetaContext<'_>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "adapt", || inner.adapt(ctx))
    }
    fn save(&self) -> PResult<RVec<u8>> {
        guard(&self.poisoned, "save", || self.inner.save().map(Into::into))
    }
    fn load(&mut self, bytes: RSlice<'_, u8>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&self.poisoned, "load", || inner.load(bytes.as_slice()))
    }
}
