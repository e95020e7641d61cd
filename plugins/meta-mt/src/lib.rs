//! `mt`: multi-task pretraining, the study's strongest simple baseline.
//!
//! Pretraining trains one policy on all training tasks at once, with no task indicator in its
//! input. On-policy algos see a batched env whose copies sample from the training tasks; for
//! off-policy algos each update draws the same number of samples from each of K randomly chosen
//! task buffers, so frequent tasks do not dominate. Adaptation is plain fine-tuning on the
//! held-out task. Works with any base algorithm.
//!
//! Both phases take mid-phase checkpoints when the host asks (plugin-api 0.2.4): the state
//! then also holds the phase's seed and the training loop's position, and the same phase
//! call after `load` continues from there.

use std::cell::Cell;

use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::driver::{self, Position, Train};
use metarl_plugin_kit::parse_config;
use metarl_plugin_kit::seeds::SeedStream;
use serde::Deserialize;

/// Marks the part of the state that a mid-phase checkpoint adds.
const PHASE_MAGIC: &[u8] = b"mt-phase-1";

/// Config keys (all optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Off-policy: tasks whose buffers each update samples from (K). The study's Atari MT
    /// samples 2 games per update.
    tasks_per_update: u32,
    /// Off-policy: samples drawn from each of those tasks per gradient step (default: the
    /// algo's batch size divided among the K tasks, 2 x 16 for DER's 32).
    samples_per_task: Option<u32>,
    /// Off-policy: gradient steps per update (default: the algo's).
    grad_steps: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self { tasks_per_update: 2, samples_per_task: None, grad_steps: None }
    }
}

struct Mt {
    cfg: Config,
    seeds: SeedStream,
    /// The phase a mid-phase checkpoint left: its seed and where its loop stood.
    continuing: Option<(u64, Position)>,
}

/// The off-policy plan: K of the tasks with recorded data, the same number of samples from
/// each.
fn plan(cfg: &Config, seeds: &mut SeedStream, info: &AlgoInfo, recorded: &[u64]) -> UpdatePlan {
    let k = cfg.tasks_per_update as usize;
    let chosen = seeds.distinct(recorded, k);
    let per_task = cfg.samples_per_task.unwrap_or((info.batch_size / k.min(chosen.len()).max(1) as u32).max(1));
    UpdatePlan::off_policy(chosen, per_task, cfg.grad_steps.unwrap_or(info.grad_steps))
}

/// The state bytes: the seed stream, then, in a mid-phase checkpoint, the phase's seed and
/// the loop's position.
fn state(seeds: SeedStream, phase: Option<(u64, &Position)>) -> Vec<u8> {
    Position::phase_state(seeds.to_bytes().to_vec(), PHASE_MAGIC, phase)
}

impl Mt {
    /// One phase: plain training with `plan` (if any), continuing a checkpointed phase, and
    /// taking checkpoints as the host asks.
    fn phase(&mut self, ctx: &mut MetaContext<'_>, multi_task: bool) -> Result<(), PluginError> {
        let (seed, start) = match self.continuing.take() {
            Some((seed, position)) => (seed, Some(position)),
            None => (self.seeds.next(), None),
        };
        let budget = ctx.budget_env_steps;
        let cfg = self.cfg.clone();
        // The planner draws from the seed stream while checkpoints read it: a shared cell.
        let seeds = Cell::new(self.seeds);
        let mut planner = |info: &AlgoInfo, recorded: &[u64]| {
            if driver::is_on_policy(info) {
                driver::default_plan(info, recorded)
            } else {
                let mut s = seeds.get();
                let p = plan(&cfg, &mut s, info, recorded);
                seeds.set(s);
                p
            }
        };
        let mut checkpoint = |p: &Position| Ok(state(seeds.get(), Some((seed, p))));
        let t = Train {
            planner: if multi_task { Some(&mut planner) } else { None },
            start,
            checkpoint: Some(&mut checkpoint),
            ..Train::plain(budget)
        };
        let r = driver::train(ctx, seed, t).map(drop);
        self.seeds = seeds.get();
        r
    }
}

impl Meta for Mt {
    fn info(&self) -> MetaInfo {
        MetaInfo { requires: Caps::NONE, env_requires: Caps::NONE, context_dim: 0 }
    }

    /// One policy on all training tasks: one batched env samples them all; on-policy algos
    /// learn from its rollouts, off-policy ones from K task buffers at a time.
    fn pretrain(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        self.phase(&mut ctx, true)
    }

    /// Fine-tuning: keep training the agent on the held-out task.
    fn adapt(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        self.phase(&mut ctx, false)
    }

    fn save(&self) -> Result<Vec<u8>, PluginError> {
        Ok(state(self.seeds, self.continuing.as_ref().map(|(s, p)| (*s, p))))
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let (seeds, rest) = bytes.split_at(bytes.len().min(8));
        self.seeds = SeedStream::from_bytes("mt", seeds)?;
        self.continuing = Position::read_phase(rest, PHASE_MAGIC, "mt")?;
        Ok(())
    }
}

/// The plugin's factory.
pub struct MtPlugin;

impl PluginFactory for MtPlugin {
    const KIND: PluginKind = PluginKind::META;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "mt".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::META,
            description: "multi-task pretraining, then fine-tuning".into(),
            caps: Caps::NONE,
            families: Default::default(),
            requires: Caps::NONE,
        }
    }

    fn new_meta(req: &MetaRequest) -> Result<Box<dyn Meta>, PluginError> {
        let cfg: Config = parse_config("mt", &req.config)?;
        if cfg.tasks_per_update == 0 || cfg.samples_per_task == Some(0) || cfg.grad_steps == Some(0) {
            return Err(PluginError::invalid("mt config: tasks_per_update, samples_per_task and grad_steps must be at least 1"));
        }
        Ok(Box::new(Mt { cfg, seeds: SeedStream::new(req.seed ^ 0x4d54), continuing: None }))
    }
}

metarl_plugin_api::export_plugin!(MtPlugin);
