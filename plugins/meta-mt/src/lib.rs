//! `mt`: multi-task pretraining, the study's strongest simple baseline.
//!
//! Pretraining trains one policy on all training tasks at once, with no task indicator in its
//! input. On-policy algos see a batched env whose copies sample from the training tasks; for
//! off-policy algos each update draws the same number of samples from each of K randomly chosen
//! task buffers, so frequent tasks do not dominate. Adaptation is plain fine-tuning on the
//! held-out task. Works with any base algorithm.
//!
//! `fine_tune = "with-training-tasks"` (off-policy algos) is the study's ablation of fine-tuning
//! in isolation: the adaptation's updates go on drawing from the training tasks' stored
//! buffers, with the held-out task as one more task of the multi-task batch. Each update takes
//! the held-out task and K-1 training tasks, the same number of samples from each. Only the
//! held-out task is played, so the budget counts its env steps alone; the training tasks'
//! data are what pretraining left in the algo's replay, which the pretrained checkpoint must
//! therefore hold.
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
/// Marks the part of the state that names the training tasks (after pretraining).
const TASKS_MAGIC: &[u8] = b"mt-tasks-1";

/// What the adaptation's updates learn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
enum FineTune {
    /// The held-out task's own data only (the study's main protocol).
    #[default]
    Isolated,
    /// The held-out task as one more task of pretraining's multi-task batches (off-policy).
    WithTrainingTasks,
}

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
    /// `"isolated"` (default) or `"with-training-tasks"` (see the crate docs).
    fine_tune: FineTune,
}

impl Default for Config {
    fn default() -> Self {
        Self { tasks_per_update: 2, samples_per_task: None, grad_steps: None, fine_tune: FineTune::Isolated }
    }
}

struct Mt {
    cfg: Config,
    seeds: SeedStream,
    /// The training tasks, once pretrained (kept in the state for the adaptation).
    trained_on: Vec<u64>,
    /// The phase a mid-phase checkpoint left: its seed and where its loop stood.
    continuing: Option<(u64, Position)>,
}

/// The off-policy plan: `fixed` (the held-out tasks with data, when fine-tuning with the
/// training tasks), then K minus their number drawn from `pool`, the same number of samples
/// from each.
fn plan(cfg: &Config, seeds: &mut SeedStream, info: &AlgoInfo, fixed: &[u64], pool: &[u64]) -> UpdatePlan {
    let k = cfg.tasks_per_update as usize;
    let mut chosen = fixed.to_vec();
    chosen.extend(seeds.distinct(pool, k.saturating_sub(fixed.len())));
    let per_task = cfg.samples_per_task.unwrap_or((info.batch_size / k.min(chosen.len()).max(1) as u32).max(1));
    UpdatePlan::off_policy(chosen, per_task, cfg.grad_steps.unwrap_or(info.grad_steps))
}

/// The state bytes: the seed stream; after pretraining, the training tasks; in a mid-phase
/// checkpoint, the phase's seed and the loop's position.
fn state(seeds: SeedStream, trained_on: &[u64], phase: Option<(u64, &Position)>) -> Vec<u8> {
    let mut bytes = seeds.to_bytes().to_vec();
    if !trained_on.is_empty() {
        let mut w = metarl_plugin_kit::bytes::Writer::with_magic(TASKS_MAGIC);
        w.u32(trained_on.len() as u32);
        trained_on.iter().for_each(|&t| w.u64(t));
        bytes.extend(w.0);
    }
    Position::phase_state(bytes, PHASE_MAGIC, phase)
}

/// Reads the training tasks [`state`] wrote, if any: them and the bytes after them.
fn read_tasks(rest: &[u8]) -> Result<(Vec<u64>, &[u8]), PluginError> {
    if !rest.starts_with(TASKS_MAGIC) {
        return Ok((Vec::new(), rest));
    }
    let at = TASKS_MAGIC.len();
    let n = rest.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize);
    let end = n.map(|n| at + 4 + 8 * n).filter(|&e| e <= rest.len());
    let Some(end) = end else { return Err(PluginError::invalid("mt state: the training task list is cut short")) };
    let mut r = metarl_plugin_kit::bytes::Reader::new(&rest[..end], TASKS_MAGIC, "mt")?;
    let n = r.u32()? as usize;
    let tasks = (0..n).map(|_| r.u64()).collect::<Result<Vec<_>, _>>()?;
    r.finish()?;
    Ok((tasks, &rest[end..]))
}

/// Which tasks an update draws from.
#[derive(Clone, Copy)]
enum Plans<'a> {
    /// The algo's own plan over the phase's tasks (fine-tuning in isolation).
    Own,
    /// K of the tasks recorded in this phase (pretraining).
    Recorded,
    /// The tasks recorded in this phase, then training tasks up to K (fine-tuning with them).
    WithTrainingTasks(&'a [u64]),
}

impl Mt {
    /// One phase: plain training with `plans`, continuing a checkpointed phase, and taking
    /// checkpoints as the host asks.
    fn phase(&mut self, ctx: &mut MetaContext<'_>, plans: Plans<'_>) -> Result<(), PluginError> {
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
                return driver::default_plan(info, recorded);
            }
            let mut s = seeds.get();
            let p = match plans {
                Plans::WithTrainingTasks(training) => plan(&cfg, &mut s, info, recorded, training),
                _ => plan(&cfg, &mut s, info, &[], recorded),
            };
            seeds.set(s);
            p
        };
        let trained_on = self.trained_on.clone();
        let mut checkpoint = |p: &Position| Ok(state(seeds.get(), &trained_on, Some((seed, p))));
        let t = Train {
            planner: if matches!(plans, Plans::Own) { None } else { Some(&mut planner) },
            start,
            checkpoint: Some(&mut checkpoint),
            ..Train::plain(budget)
        };
        let r = driver::train(ctx, seed, t).map(drop);
        self.seeds = seeds.get();
        r
    }

    /// Checks, before fine-tuning with the training tasks, that the algo is off-policy and
    /// still holds every training task's data: an update plan over them that changes nothing
    /// (`grad_steps = 0`) must be accepted.
    fn check_training_data(&self, ctx: &mut MetaContext<'_>) -> Result<(), PluginError> {
        const OPTION: &str = "mt config: fine_tune = \"with-training-tasks\"";
        let info = driver::ffi("info", ctx.algo.info())?;
        if driver::is_on_policy(&info) {
            return Err(PluginError::invalid(format!(
                "{OPTION} needs an off-policy algo: an on-policy one keeps no training-task data to fine-tune with"
            )));
        }
        if self.trained_on.is_empty() {
            return Err(PluginError::invalid(format!(
                "{OPTION}: the pretrained state names no training tasks (a checkpoint from an mt older than this option?)"
            )));
        }
        let probe = UpdatePlan::off_policy(self.trained_on.clone(), 1, 0);
        driver::ffi("update", ctx.algo.update(&probe)).map(drop).map_err(|e| {
            PluginError::invalid(format!(
                "{OPTION}: the algo holds no usable data of the training tasks {:?} ({}); the pretraining must leave its replay \
                 in the checkpoint and adaptation must keep it (c2farm: save_replay = true; rainbow: save_replay = true \
                 and on_load = \"resume\")",
                self.trained_on,
                e.error.message
            ))
        })
    }
}

impl Meta for Mt {
    fn info(&self) -> MetaInfo {
        MetaInfo { requires: Caps::NONE, env_requires: Caps::NONE, context_dim: 0 }
    }

    /// One policy on all training tasks: one batched env samples them all; on-policy algos
    /// learn from its rollouts, off-policy ones from K task buffers at a time.
    fn pretrain(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        self.trained_on = ctx.tasks.to_vec();
        self.phase(&mut ctx, Plans::Recorded)
    }

    /// Fine-tuning: keep training the agent on the held-out task, alone or with the training
    /// tasks' stored data.
    fn adapt(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        match self.cfg.fine_tune {
            FineTune::Isolated => self.phase(&mut ctx, Plans::Own),
            FineTune::WithTrainingTasks => {
                // A continued phase was checked when it began.
                if self.continuing.is_none() {
                    self.check_training_data(&mut ctx)?;
                }
                let training: Vec<u64> = self.trained_on.iter().copied().filter(|t| !ctx.tasks.contains(t)).collect();
                self.phase(&mut ctx, Plans::WithTrainingTasks(&training))
            }
        }
    }

    fn save(&self) -> Result<Vec<u8>, PluginError> {
        Ok(state(self.seeds, &self.trained_on, self.continuing.as_ref().map(|(s, p)| (*s, p))))
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let (seeds, rest) = bytes.split_at(bytes.len().min(8));
        self.seeds = SeedStream::from_bytes("mt", seeds)?;
        let (trained_on, rest) = read_tasks(rest)?;
        self.trained_on = trained_on;
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
        Ok(Box::new(Mt { cfg, seeds: SeedStream::new(req.seed ^ 0x4d54), trained_on: Vec::new(), continuing: None }))
    }
}

metarl_plugin_api::export_plugin!(MtPlugin);
