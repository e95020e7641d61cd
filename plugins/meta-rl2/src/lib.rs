//! `rl2`: RL² (Duan et al. 2016), "fast RL via slow RL".
//!
//! The agent's recurrent core sees the observation embedding together with the previous
//! action, reward and done flag. One RL² episode is several trials (episodes) on the same
//! task; the hidden state persists across the trials and is reset only when the env samples a
//! new task (`task_end`). Meta-training is ordinary on-policy training (PPO with truncated BPTT)
//! on such episodes, over the training tasks. Adaptation performs no gradient update at all:
//! it resets the hidden state and rolls out on the held-out task, so any improvement happens
//! inside the agent's memory.
//!
//! Requires an on-policy algo with a recurrent core fed RL² inputs, and an env that can repeat
//! a task for several trials.

use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::driver::{self, MemoryReset, Train};
use metarl_plugin_kit::parse_config;
use metarl_plugin_kit::seeds::SeedStream;
use serde::Deserialize;

/// What RL² needs of the algo.
pub const REQUIRES: Caps = Caps(Caps::ON_POLICY.0 | Caps::RECURRENT.0 | Caps::RL2_INPUTS.0);

/// Config keys (all optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Trials (episodes) per task in one RL² episode, during meta-training.
    trials: u32,
    /// Trials per task during adaptation (default: the same as `trials`).
    adapt_trials: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self { trials: 3, adapt_trials: None }
    }
}

struct Rl2 {
    cfg: Config,
    seeds: SeedStream,
}

impl Meta for Rl2 {
    fn info(&self) -> MetaInfo {
        MetaInfo { requires: REQUIRES, env_requires: Caps::ENV_TRIALS, context_dim: 0 }
    }

    fn pretrain(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        // Memory survives episode ends and is cleared only when a new task starts.
        let budget = ctx.budget_env_steps;
        let t = Train { trials: self.cfg.trials, memory: MemoryReset::Task, ..Train::plain(budget) };
        driver::train(&mut ctx, self.seeds.next(), t).map(drop)
    }

    /// No gradient step: the agent plays trials on the held-out task and adapts in memory.
    /// Evaluation episodes start from the memory it has at that point.
    fn adapt(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        let trials = self.cfg.adapt_trials.unwrap_or(self.cfg.trials);
        let budget = ctx.budget_env_steps;
        let t = Train { trials, memory: MemoryReset::Task, learn: false, ..Train::plain(budget) };
        driver::train(&mut ctx, self.seeds.next(), t).map(drop)
    }

    fn save(&self) -> Result<Vec<u8>, PluginError> {
        Ok(self.seeds.to_bytes().to_vec())
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.seeds = SeedStream::from_bytes("rl2", bytes)?;
        Ok(())
    }
}

/// The plugin's factory.
pub struct Rl2Plugin;

impl PluginFactory for Rl2Plugin {
    const KIND: PluginKind = PluginKind::META;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "rl2".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::META,
            description: "RL²: recurrent agent meta-trained over trials; adapts without gradients".into(),
            caps: Caps::NONE,
            families: Default::default(),
            requires: REQUIRES,
        }
    }

    fn new_meta(req: &MetaRequest) -> Result<Box<dyn Meta>, PluginError> {
        let cfg: Config = parse_config("rl2", &req.config)?;
        if cfg.trials == 0 || cfg.adapt_trials == Some(0) {
            return Err(PluginError::invalid("rl2 config: trials and adapt_trials must be at least 1"));
        }
        Ok(Box::new(Rl2 { cfg, seeds: SeedStream::new(req.seed ^ 0x524c_32) }))
    }
}

metarl_plugin_api::export_plugin!(Rl2Plugin);
