//! Meta-methods: MT, Reptile, PEARL, RL² and whatever comes next.
//!
//! A meta plugin drives the two phases of a study, pretraining on the training tasks and
//! adaptation on a held-out task, using only the env interface (through the host's
//! [`HostServicesFfi::make_env`]) and the algo interface (an [`AlgoBox`] the host lends it).
//! It never sees an algo's internals and an algo never sees it, which is what lets any
//! meta-method combine with any base algorithm whose capabilities meet
//! [`MetaInfo::requires`].

use abi_stable::{
    sabi_trait,
    sabi_types::RMut,
    std_types::{RBox, RSlice, RString, RVec},
    StableAbi,
};

use crate::algo::AlgoBox;
use crate::env::EnvBox;
use crate::export::guard;
use crate::types::*;

/// What the host asks a meta plugin to build.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct MetaRequest {
    /// Seed for the meta-method's own randomness (task sampling, ...).
    pub seed: u64,
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

/// Services the host offers a meta plugin during a phase.
#[sabi_trait]
pub trait HostServicesFfi {
    /// Builds a batched env of the experiment's env plugin and family over `tasks`.
    fn make_env(&mut self, tasks: RSlice<'_, u64>, num_envs: u32, trials: u32, seed: u64) -> PResult<EnvBox>;
    /// Reports env steps consumed so far in this phase, with optional diagnostics.
    /// The host may evaluate `algo` here (adaptation curves) and returns `false` when the
    /// meta-method should stop: the budget is spent or the run is being interrupted.
    #[sabi(last_prefix_field)]
    fn progress(&mut self, algo: &mut AlgoBox, env_steps: u64, scalars: RSlice<'_, Scalar>) -> PResult<bool>;
}

/// Borrowed host services.
pub type HostServices<'a> = HostServicesFfi_TO<'a, RMut<'a, ()>>;

/// Everything a phase works with.
#[repr(C)]
#[derive(StableAbi)]
pub struct MetaContext<'a> {
    /// Env construction and progress reporting.
    pub host: HostServices<'a>,
    /// The agent being trained.
    pub algo: &'a mut AlgoBox,
    /// Training tasks (pretraining) or the held-out task(s) (adaptation).
    pub tasks: RSlice<'a, u64>,
    /// Env steps this phase may consume.
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
    /// Adapts the pretrained `ctx.algo` to the held-out `ctx.tasks`.
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

/// The FFI-safe form of [`Meta`].
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
    GuardedMeta::boxed(inner)
}

pub(crate) struct GuardedMeta {
    inner: Box<dyn Meta>,
    poisoned: bool,
}

impl GuardedMeta {
    pub(crate) fn boxed(inner: Box<dyn Meta>) -> MetaBox {
        MetaFfi_TO::from_value(GuardedMeta { inner, poisoned: false }, abi_stable::sabi_trait::TD_Opaque)
    }
}

impl MetaFfi for GuardedMeta {
    fn info(&self) -> PResult<MetaInfo> {
        let inner = &self.inner;
        guard(&mut { self.poisoned }, "info", || Ok(inner.info()))
    }
    fn pretrain(&mut self, ctx: MetaContext<'_>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "pretrain", || inner.pretrain(ctx))
    }
    fn adapt(&mut self, ctx: MetaContext<'_>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "adapt", || inner.adapt(ctx))
    }
    fn save(&self) -> PResult<RVec<u8>> {
        let inner = &self.inner;
        guard(&mut { self.poisoned }, "save", || inner.save().map(Into::into))
    }
    fn load(&mut self, bytes: RSlice<'_, u8>) -> PResult<()> {
        let inner = &mut self.inner;
        guard(&mut self.poisoned, "load", || inner.load(bytes.as_slice()))
    }
}
