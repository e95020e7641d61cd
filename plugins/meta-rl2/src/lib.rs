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
//!
//! Both phases take mid-phase checkpoints when the host asks (plugin-api 0.2.4). A continued
//! phase starts new RL² episodes, so an adaptation continued that way starts its memory over.

use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::driver::{self, MemoryReset, Position, Train};
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
    /// The phase a mid-phase checkpoint left: its seed and where its loop stood.
    continuing: Option<(u64, Position)>,
}

/// Marks the part of the state that a mid-phase checkpoint adds.
const PHASE_MAGIC: &[u8] = b"rl2-phase-1";

/// The state bytes: the seed stream, then, in a mid-phase checkpoint, the phase's seed and
/// position.
fn state(seeds: SeedStream, phase: Option<(u64, &Position)>) -> Vec<u8> {
    Position::phase_state(seeds.to_bytes().to_vec(), PHASE_MAGIC, phase)
}

impl Rl2 {
    /// Trains (or, with `learn` false, only plays) RL² episodes of `trials` trials, continuing a
    /// checkpointed phase and taking checkpoints as the host asks.
    fn phase(&mut self, ctx: &mut MetaContext<'_>, trials: u32, learn: bool) -> Result<(), PluginError> {
        let (seed, start) = match self.continuing.take() {
            Some((seed, position)) => (seed, Some(position)),
            None => (self.seeds.next(), None),
        };
        let seeds = self.seeds;
        let mut checkpoint = |p: &Position| Ok(state(seeds, Some((seed, p))));
        // Memory survives episode ends and is cleared only when a new task starts.
        let t = Train { trials, memory: MemoryReset::Task, learn, start, checkpoint: Some(&mut checkpoint), ..Train::plain(ctx.budget_env_steps) };
        driver::train(ctx, seed, t).map(drop)
    }
}

impl Meta for Rl2 {
    fn info(&self) -> MetaInfo {
        MetaInfo { requires: REQUIRES, env_requires: Caps::ENV_TRIALS, context_dim: 0 }
    }

    fn pretrain(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        self.phase(&mut ctx, self.cfg.trials, true)
    }

    /// No gradient step: the agent plays trials on the held-out task and adapts in memory.
    /// Evaluation episodes start from the memory it has at that point.
    fn adapt(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        self.phase(&mut ctx, self.cfg.adapt_trials.unwrap_or(self.cfg.trials), false)
    }

    fn save(&self) -> Result<Vec<u8>, PluginError> {
        Ok(state(self.seeds, self.continuing.as_ref().map(|(s, p)| (*s, p))))
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let (seeds, rest) = bytes.split_at(bytes.len().min(8));
        self.seeds = SeedStream::from_bytes("rl2", seeds)?;
        self.continuing = Position::read_phase(rest, PHASE_MAGIC, "rl2")?;
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
        Ok(Box::new(Rl2 { cfg, seeds: SeedStream::new(req.seed ^ 0x524c_32), continuing: None }))
    }
}

metarl_plugin_api::export_plugin!(Rl2Plugin);
