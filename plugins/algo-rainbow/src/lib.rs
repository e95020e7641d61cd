//! `rainbow`: data-efficient Rainbow (DER; van Hasselt et al. 2019) as a metarl algo plugin,
//! on libtorch through tch.
//!
//! Rainbow's six parts as DER sets them: C51 return distributions (51 atoms on [-10, 10]),
//! dueling heads, factorised noisy nets (σ₀ = 0.1), 20-step returns, prioritised replay
//! (ω = 0.5, β from 0.4 to 1) and double-Q targets; DER's network (conv 32 5x5/5, conv 64
//! 5x5/5, 576 features on 84x84x4, dueling NoisyLinear streams of 256), one update per env
//! step, target copy every 2000 updates, Adam 1e-4 (ε 1.5e-4), batch 32, γ 0.99, gradient
//! norm clip 10, 1600 steps of warm-up. [`rainbow`] holds the loss and reads like the
//! paper's equations; the rest is plumbing:
//!
//! - [`agent`]: the [`Algo`](metarl_plugin_api::algo::Algo) implementation: validation at the
//!   boundary, acting, recording, the plan's batches, `save`/`load`.
//! - [`net`]: the DER network, noisy dueling C51 heads, optional context input.
//! - [`replay`]: one prioritised buffer per task, frames stored once, n-step windows.
//! - `metarl_tch_common::adam`: Adam written out (checkpointable moments); [`checkpoint`]:
//!   the byte format.
//! - [`config`]: hyper-parameters, presets `der` (default) and `study-pretrain`.
//!
//! # Decisions
//!
//! - **Replay per task.** One prioritised buffer per task; `memory_capacity` is the capacity
//!   of *each* task's buffer (not split among tasks: the host does not tell an algo how many
//!   tasks it will see). The study's 1M memory over 5 games is `memory_capacity = 200000` in
//!   the `study-pretrain` preset (use 100000 for the 10-game set). An update draws
//!   `samples_per_task` from each of `plan.tasks`' buffers by stratified proportional
//!   sampling; importance weights are normalised per task buffer (as each of the author's
//!   per-game memories does) with N = that buffer's row count. A listed task none of whose
//!   rows is sampleable yet (all inside an open n-step window: a game just drawn) sits that
//!   step out instead of failing a long run; a plan with no sampleable task is an error.
//! - **Frames.** Observations are `frame_stack` frames along the channels, oldest first.
//!   `frame_stack` defaults to 4 for 4-channel images (DER's Atari stack) and to 1 otherwise
//!   (gridworld, Procgen); within an episode a next observation that is not the observation
//!   shifted by one frame is an error naming the key. See [`replay`] for how stacks are
//!   stored once and rebuilt at episode starts (env-ale zero-fills at a game start and keeps
//!   the stack after a lost life; both are reproduced bit-for-bit).
//! - **Truncation.** A `truncated` row ends the n-step window and bootstraps from its
//!   `final_obs` with γ^m (m = rows in the window) when the env gives one; without it the row
//!   is treated as terminal. `truncation = "terminal"` gives DER's behaviour (the time cap
//!   is terminal). `terminated` rows never bootstrap.
//! - **Noise.** Online noise is redrawn at every training `act` and used by the updates that
//!   follow (Kaixhin's order: reset noise, act, learn); the target net's noise is redrawn at
//!   every gradient step. `deterministic` acts with the noise off (μ weights only) and draws
//!   nothing, so evaluations leave training's random streams untouched.
//! - **Fine-tuning (`on_load`).** The host starts an adaptation unit with `load_pretrained`
//!   (plugin-api 0.2.5) and continues any unit from its own mid-phase checkpoint with `load`,
//!   which always restores everything, so a continued unit goes on exactly. `on_load` says
//!   what `load_pretrained` does. With `on_load = "resume"` (`der`) it is `load`: adaptation
//!   carries on from where pretraining stopped. With `on_load = "finetune"` (`study-pretrain`)
//!   it does what the study's fine-tuning runs do (`main_mt.py --model ... --reset_sigmas`): the pretrained online weights only,
//!   target = online, fresh Adam, an **empty replay** (pretraining's buffers never reach
//!   fine-tuning), update counter and β schedule from zero, σ reset to σ₀/sqrt(fan) when
//!   `reset_sigmas`, and from then on `finetune_learning_starts` (1600),
//!   `finetune_memory_capacity` (100k) and `finetune_beta_updates`. `reset_heads` (if the
//!   experiment asks) comes after `load_pretrained` and re-initialises the heads on top.
//!   `study-pretrain` also sets `save_replay = false`, since pretraining's replay would never
//!   be read; its mid-phase checkpoints then cannot continue a unit exactly, so `load` refuses
//!   them and the host starts such a unit again (with a warning).
//! - **Author's quirks.** The ReLU on the final value and advantage outputs is `head_relu`
//!   (default off, as DER/Kaixhin). The author's memory stores each state with the previous
//!   step's action and reward; taken as the learning target that pairs an observation with
//!   an action not taken in it, so it is not reproduced: a row pairs the observation with the
//!   action taken in it and the reward that followed (Kaixhin's and DER's pairing). PEARL's
//!   context, which wants (s, a, r) of one step, gets the same pairing.
//! - **Context (PEARL).** `z` is concatenated to the convolutional features before the
//!   heads. `act` takes `ActInput::context`; `record` stores `Transitions::context` per row
//!   (zeros when the column is empty); an update uses the plan's row `i` for every sample of
//!   `plan.tasks[i]` in the online and the target net alike, else the stored rows. The
//!   returned dL/dz is the exact derivative of the reported loss (the importance-weighted
//!   mean), including the target's dependence on z (the target parameters and the double-Q
//!   argmax are held fixed), so it matches finite differences of `grad_steps = 0` losses.
//!
//! Everything that must survive `save`/`load` bit-for-bit (parameters, target, Adam, noise in
//! use, generators, replay with priorities) is owned here in plain form, and nothing draws
//! from libtorch's global generator. On CPU with a fixed thread count a resumed agent acts
//! and learns exactly as the uninterrupted one.
#![deny(missing_docs)]

pub mod agent;
pub mod checkpoint;
pub mod config;
pub mod net;
pub mod rainbow;
pub mod replay;

#[cfg(test)]
mod tests;

use metarl_plugin_api::prelude::*;

pub use agent::RainbowAgent;
pub use config::{Config, OnLoad, Preset, Truncation};

/// The plugin's factory.
pub struct RainbowPlugin;

impl PluginFactory for RainbowPlugin {
    const KIND: PluginKind = PluginKind::ALGO;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "rainbow".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::ALGO,
            description: "data-efficient Rainbow (DER): C51, dueling, noisy nets, n-step, per-task PER, double Q; optional context input with dL/dz".into(),
            caps: Caps::OFF_POLICY | Caps::DISCRETE | Caps::CONTEXT | Caps::CONTEXT_GRAD,
            families: Default::default(),
            requires: Caps::NONE,
        }
    }

    fn new_algo(req: &AlgoRequest) -> Result<Box<dyn Algo>, PluginError> {
        Ok(Box::new(RainbowAgent::new(req)?))
    }
}

// In a private module so that `missing_docs` does not ask for docs on abi_stable's generated
// statics. Left out of the unit-test build, which links the gridworld plugin's rlib and with
// it that plugin's root module symbol.
#[cfg(not(test))]
mod root {
    metarl_plugin_api::export_plugin!(super::RainbowPlugin);
}
