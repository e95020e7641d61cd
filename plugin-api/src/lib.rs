//! The one contract between the `metarl` host and its plugins: plugin-api 0.2.
//!
//! metarl loads three kinds of independently built shared libraries at run time:
//! environment adapters (`env`), base RL algorithms (`algo`) and meta-methods (`meta`).
//! This crate is everything that crosses the boundary between them, and nothing else:
//!
//! - [`types`]: plain data: kinds and capability flags, task families, spaces made of named
//!   parts (dtype, shape, role), and typed borrowed arrays that carry one part of a batch.
//! - [`env`], [`algo`], [`meta`]: for each kind, the Rust trait a plugin author implements
//!   and the FFI-safe trait object (`#[sabi_trait]`) the host and other plugins call.
//! - [`export`]: the root module every plugin library exports, the [`export_plugin!`] macro
//!   that builds it, the panic guard and the log bridge.
//!
//! Helper code that adds nothing to the ABI (the act/step/record driver and the one training
//! loop, evaluation, seed streams, config parsing, process settings) lives in the separate
//! crate `metarl-plugin-kit`, so this crate depends on abi_stable and log only.
//!
//! The shape follows abi_stable's interface / implementation / user split: this crate is the
//! interface, `plugins/*` are implementations and `host/` is the user. Layout and version of
//! everything reachable from [`export::PluginRoot`] are checked by abi_stable when a library
//! is loaded, so a plugin built against an incompatible version of this crate is refused
//! instead of misbehaving.
//!
//! Invariants a plugin author can rely on (see ARCHITECTURE.md for the full list):
//! - Only plain data crosses: no tensors, no Rust-ABI types, no allocator sharing beyond
//!   abi_stable's `R*` types (which carry their own deallocators).
//! - A panic inside a plugin never unwinds across the boundary: every call made through this
//!   crate's glue is wrapped in `catch_unwind` and comes back as [`types::PluginError`].
//! - Libraries are never unloaded.
#![deny(missing_docs)]
// `#[sabi_trait]` and `StableAbi` expand to impls inside `const _` blocks and to `Foo_Ref` names.
#![allow(non_local_definitions, non_camel_case_types)]

pub mod algo;
pub mod env;
pub mod export;
pub mod meta;
pub mod types;

pub use abi_stable;

/// Everything a plugin author usually needs.
pub mod prelude {
    pub use crate::algo::{ActInput, ActOutput, Algo, AlgoBox, AlgoInfo, AlgoRequest, Transitions, UpdatePlan, UpdateStats};
    pub use crate::env::{Env, EnvBox, EnvRequest, EnvSpec, EpisodeStat, ResetBuffers, StepBuffers, Trajectory};
    pub use crate::export::{PluginDescriptor, PluginFactory};
    pub use crate::meta::{EvalRequest, HostServices, Meta, MetaBox, MetaContext, MetaInfo, MetaRequest, Progress};
    pub use crate::types::*;
    pub use crate::export_plugin;
}
