//! `ppo`: Proximal Policy Optimization as a metarl algo plugin, on libtorch through tch.
//!
//! The reference is the Procgen paper (Cobbe et al. 2020) as CleanRL's `ppo_procgen.py` runs
//! it: IMPALA CNN 16-32-32 with a 256-wide latent, GAE (gamma 0.999, lambda 0.95), clipped
//! surrogate and value losses, 64 envs x 256 steps in 8 minibatches for 3 epochs, Adam 5e-4.
//! [`ppo`] holds the update and reads like the paper's equations; everything else is plumbing:
//!
//! - [`agent`]: the [`Algo`](metarl_plugin_api::algo::Algo) implementation: validation at the
//!   boundary, acting, recording, `save`/`load`.
//! - [`net`]: IMPALA CNN or MLP encoder, optional LSTM core with RL² inputs, optional context
//!   input, policy and value heads, as one ordered list of leaf tensors.
//! - [`batch`], [`rollout`]: rollout storage (images stay `u8`) and minibatch plumbing,
//!   including truncated BPTT over each env's rollout for the recurrent core.
//! - `metarl_tch_common::adam`: Adam written out, so its moments can be checkpointed; [`checkpoint`]: the byte
//!   format of `save`.
//! - [`autocast`]: bf16 mixed precision on CPU through a small C++ shim over libtorch's
//!   `at::autocast` (tch only exposes CUDA autocast).
//! - [`config`]: hyper-parameters, with `paper` and `cpu-small` presets.
//!
//! Why shaped this way: everything that must survive `save`/`load` bit-for-bit (parameters,
//! optimizer moments, sampling RNG, reward statistics) is owned here in plain form rather than
//! inside libtorch, and nothing draws from libtorch's global RNG, which other tch plugins in the
//! same process share. On CPU with a fixed thread count, the same seed and data give the same
//! parameters bit-for-bit.
#![deny(missing_docs)]

pub mod agent;
pub mod autocast;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod net;
pub mod ppo;
pub mod rng;
pub mod rollout;

#[cfg(test)]
mod tests;

use metarl_plugin_api::prelude::*;

pub use agent::{PpoAgent, EXTRAS_DIM};
pub use config::{Config, Precision, Preset};

/// The plugin's factory.
pub struct PpoPlugin;

impl PluginFactory for PpoPlugin {
    const KIND: PluginKind = PluginKind::ALGO;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "ppo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::ALGO,
            description: "PPO (Procgen paper / CleanRL ppo_procgen): IMPALA CNN or MLP, optional LSTM (RL²) and context input; fp32 or bf16".into(),
            caps: Caps::ON_POLICY | Caps::DISCRETE | Caps::RECURRENT | Caps::RL2_INPUTS | Caps::CONTEXT,
            families: Default::default(),
            requires: Caps::NONE,
        }
    }

    fn new_algo(req: &AlgoRequest) -> Result<Box<dyn Algo>, PluginError> {
        Ok(Box::new(PpoAgent::new(req)?))
    }
}

// In a private module so that `missing_docs` does not ask for docs on abi_stable's generated
// statics; the root module is exported by symbol name regardless. Left out of the unit-test
// build, which links the gridworld plugin's rlib and with it that plugin's root module symbol.
#[cfg(not(test))]
mod root {
    metarl_plugin_api::export_plugin!(super::PpoPlugin);
}
