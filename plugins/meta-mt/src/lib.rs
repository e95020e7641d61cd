//! `mt`: multi-task pretraining, the study's strongest simple baseline.
//!
//! Pretraining trains one policy on all training tasks at once, with no task indicator in its
//! input. On-policy algos see a batched env whose copies sample from the training tasks; for
//! off-policy algos each update draws the same number of samples from each of K randomly chosen
//! task buffers, so frequent tasks do not dominate. Adaptation is plain fine-tuning on the
//! held-out task. Works with any base algorithm.

use metarl_plugin_api::driver::{self, Driver, MemoryReset, SeedStream};
use metarl_plugin_api::export::parse_config;
use metarl_plugin_api::prelude::*;
use serde::Deserialize;

/// Config keys (all optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Off-policy: tasks whose buffers each update samples from (K).
    tasks_per_update: u32,
    /// Off-policy: samples drawn from each of those tasks per gradient step.
    samples_per_task: u32,
    /// Off-policy: gradient steps per update.
    grad_steps: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self { tasks_per_update: 4, samples_per_task: 32, grad_steps: 1 }
    }
}

struct Mt {
    cfg: Config,
    seeds: SeedStream,
}

impl Mt {
    /// K distinct tasks drawn uniformly from `tasks` (partial Fisher-Yates).
    fn sample_tasks(&mut self, tasks: &[u64], k: usize) -> Vec<u64> {
        let mut pool = tasks.to_vec();
        let k = k.min(pool.len());
        for i in 0..k {
            let j = i + self.seeds.below(pool.len() - i);
            pool.swap(i, j);
        }
        pool.truncate(k);
        pool
    }

    /// Off-policy multi-task training: collect on all tasks, update on K task buffers at a time.
    fn train_off_policy(&mut self, ctx: &mut MetaContext<'_>, seed: u64) -> Result<(), PluginError> {
        let info = ctx.algo.info().into_result()?;
        let env = ctx.host.make_env(ctx.tasks, ctx.num_envs, 1, seed).into_result()?;
        let mut d = Driver::new(env, ctx.algo, seed, MemoryReset::Episode)?;
        let tasks = ctx.tasks.to_vec();
        while d.env_steps < ctx.budget_env_steps {
            for _ in 0..info.steps_per_update.max(1) {
                d.step(ctx.algo, true, false)?;
            }
            let chosen = if tasks.is_empty() { Vec::new() } else { self.sample_tasks(&tasks, self.cfg.tasks_per_update as usize) };
            let plan = UpdatePlan {
                tasks: chosen.into(),
                samples_per_task: self.cfg.samples_per_task,
                grad_steps: self.cfg.grad_steps,
                want_context_grad: false,
            };
            let stats = driver::update(ctx.algo, &plan)?;
            if !ctx.host.progress(ctx.algo, d.env_steps, stats.scalars.as_slice().into()).into_result()? {
                break;
            }
        }
        Ok(())
    }
}

impl Meta for Mt {
    fn info(&self) -> MetaInfo {
        MetaInfo { requires: Caps::NONE, env_requires: Caps::NONE, context_dim: 0 }
    }

    fn pretrain(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        let info = ctx.algo.info().into_result()?;
        let seed = self.seeds.next();
        if info.caps.contains(Caps::OFF_POLICY) && !info.caps.contains(Caps::ON_POLICY) {
            self.train_off_policy(&mut ctx, seed)
        } else {
            driver::train(&mut ctx, seed).map(drop)
        }
    }

    fn adapt(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        let seed = self.seeds.next();
        driver::train(&mut ctx, seed).map(drop)
    }

    fn save(&self) -> Result<Vec<u8>, PluginError> {
        Ok(self.seeds.to_bytes().to_vec())
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.seeds = SeedStream::from_bytes("mt", bytes)?;
        Ok(())
    }
}

/// The plugin's factory.
pub struct MtPlugin;

impl PluginFactory for MtPlugin {
    const KIND: PluginKind = PluginKind::Meta;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "mt".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Meta,
            description: "multi-task pretraining, then fine-tuning".into(),
            caps: Caps::NONE,
            families: Default::default(),
            requires: Caps::NONE,
        }
    }

    fn new_meta(req: &MetaRequest) -> Result<Box<dyn Meta>, PluginError> {
        let cfg: Config = parse_config("mt", &req.config)?;
        if cfg.tasks_per_update == 0 || cfg.samples_per_task == 0 || cfg.grad_steps == 0 {
            return Err(PluginError::invalid("mt config: tasks_per_update, samples_per_task and grad_steps must be at least 1"));
        }
        Ok(Box::new(Mt { cfg, seeds: SeedStream::new(req.seed ^ 0x4d54) }))
    }
}

metarl_plugin_api::export_plugin!(MtPlugin);
