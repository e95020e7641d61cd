//! `reptile`: first-order Reptile (Nichol, Achiam & Schulman 2018) over any base algorithm.
//!
//! Each outer iteration samples one training task, remembers the parameters θ_old, makes `k`
//! inner updates on that task alone, and moves the parameters part of the way towards the
//! result: θ ← θ_old + ε (θ_k − θ_old). Everything goes through the algo interface
//! (`params`/`set_params`, act/record/update), so the same plugin works with PPO, Rainbow or
//! C2F-ARM. Adaptation is plain fine-tuning.
//!
//! - **On-policy** (PPO): each outer iteration plays one task alone and collects fresh
//!   rollouts on it for every inner update.
//! - **Off-policy** (Rainbow, C2F-ARM), as in the study's Atari and manipulation code: one env
//!   plays all training tasks, every step is recorded into its task's buffer, and every update
//!   the algo asks for becomes an outer iteration: one task with recorded data, `k` inner
//!   updates drawn from its buffer alone, then the outer step.
//!
//! The outer step size follows a linear schedule over pretraining, `epsilon` → `epsilon_end`.
//! The study's Atari code ramps it up, θ ← θ_k + (1 − T/T_max)(θ_old − θ_k), which is
//! `epsilon = 0.0, epsilon_end = 1.0`; its manipulation code anneals 0.1 → 0.
//!
//! Both phases take mid-phase checkpoints when the host asks (plugin-api 0.2.4), after an
//! outer iteration (on-policy) or an update (off-policy, fine-tuning); the same phase call
//! after `load` continues from there.

use std::cell::Cell;

use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::driver::{self, Position, Train};
use metarl_plugin_kit::parse_config;
use metarl_plugin_kit::seeds::SeedStream;
use serde::Deserialize;

/// Marks the part of the state that a mid-phase checkpoint adds.
const PHASE_MAGIC: &[u8] = b"reptile-phase-1";

/// Config keys (all optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Inner updates per task (k); the study uses 3 with PPO and 5 with Rainbow.
    pub inner_updates: u32,
    /// Outer step size ε at the start of pretraining.
    pub epsilon: f64,
    /// ε at the end of pretraining, reached linearly from `epsilon` over the pretraining
    /// budget (equal = constant). The study's Atari schedule is 0 → 1, its manipulation
    /// schedule 0.1 → 0.
    pub epsilon_end: Option<f64>,
    /// Off-policy: samples per inner gradient step from the task's buffer (default: the
    /// algo's batch size).
    pub samples_per_task: Option<u32>,
    /// Off-policy: gradient steps per inner update (default: the algo's).
    pub grad_steps: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self { inner_updates: 3, epsilon: 1.0, epsilon_end: Some(0.0), samples_per_task: None, grad_steps: None }
    }
}

/// The outer update θ_old + ε (θ_k − θ_old), element-wise.
pub fn outer_update(old: &[f32], inner: &[f32], epsilon: f64) -> Vec<f32> {
    old.iter().zip(inner).map(|(&o, &k)| (o as f64 + epsilon * (k as f64 - o as f64)) as f32).collect()
}

/// ε after `done` of `total` env steps: linear from `start` to `end`.
pub fn epsilon_at(start: f64, end: f64, done: u64, total: u64) -> f64 {
    let frac = if total == 0 { 1.0 } else { (done as f64 / total as f64).min(1.0) };
    start + (end - start) * frac
}

struct Reptile {
    cfg: Config,
    seeds: SeedStream,
    outer_iterations: u64,
    /// The phase a mid-phase checkpoint left: its seed (unused by on-policy pretraining,
    /// which draws one per inner loop) and where its loop stood.
    continuing: Option<(u64, Position)>,
}

/// The state bytes: seed stream and outer iterations, then, in a mid-phase checkpoint, the
/// phase's seed and position.
fn state(seeds: SeedStream, outer_iterations: u64, phase: Option<(u64, &Position)>) -> Vec<u8> {
    let mut fixed = seeds.to_bytes().to_vec();
    fixed.extend_from_slice(&outer_iterations.to_le_bytes());
    Position::phase_state(fixed, PHASE_MAGIC, phase)
}

impl Reptile {
    /// The seed of a phase and where it starts: a checkpointed phase's, or a new one.
    fn begin_phase(&mut self) -> (u64, Option<Position>) {
        match self.continuing.take() {
            Some((seed, position)) => (seed, Some(position)),
            None => (self.seeds.next(), None),
        }
    }

    /// Off-policy pretraining: one env on all training tasks; every update is an outer
    /// iteration over one task's buffer.
    fn pretrain_off_policy(&mut self, mut ctx: MetaContext<'_>, info: &AlgoInfo) -> Result<(), PluginError> {
        let budget = ctx.budget_env_steps;
        let (start, end) = (self.cfg.epsilon, self.cfg.epsilon_end.unwrap_or(self.cfg.epsilon));
        let samples = self.cfg.samples_per_task.unwrap_or(info.batch_size);
        let inner_steps = self.cfg.inner_updates * self.cfg.grad_steps.unwrap_or(info.grad_steps);
        let (seed, start_at) = self.begin_phase();
        // The planner draws from the seed stream and the updater counts iterations while
        // checkpoints read both: shared cells.
        let seeds = Cell::new(self.seeds);
        let outer_iterations = Cell::new(self.outer_iterations);
        // 1. One task among those with recorded data: k inner updates from its buffer alone.
        let mut plan = |_: &AlgoInfo, recorded: &[u64]| {
            let mut s = seeds.get();
            let task = recorded[s.below(recorded.len())];
            seeds.set(s);
            UpdatePlan::off_policy(vec![task], samples, inner_steps)
        };
        let mut outer = |algo: &mut AlgoBox, plan: &UpdatePlan, env_steps: u64| -> Result<UpdateStats, PluginError> {
            let theta_old = algo.params().into_result()?;
            let mut stats = driver::update(algo, plan)?;
            if stats.grad_steps == 0 {
                return Ok(stats); // the task had nothing to sample yet (a game just drawn): no iteration
            }
            // 2. The outer step towards the adapted parameters.
            let theta_k = algo.params().into_result()?;
            let epsilon = epsilon_at(start, end, env_steps, budget);
            algo.set_params(outer_update(&theta_old, &theta_k, epsilon).as_slice().into()).into_result()?;
            outer_iterations.set(outer_iterations.get() + 1);
            stats.scalars.push(Scalar::new("reptile_epsilon", epsilon));
            stats.scalars.push(Scalar::new("reptile_task", plan.tasks[0] as f64));
            Ok(stats)
        };
        let mut checkpoint = |p: &Position| Ok(state(seeds.get(), outer_iterations.get(), Some((seed, p))));
        let t = Train {
            planner: Some(&mut plan),
            updater: Some(&mut outer),
            start: start_at,
            checkpoint: Some(&mut checkpoint),
            ..Train::plain(budget)
        };
        let r = driver::train(&mut ctx, seed, t).map(drop);
        self.seeds = seeds.get();
        self.outer_iterations = outer_iterations.get();
        r
    }
}

impl Meta for Reptile {
    fn info(&self) -> MetaInfo {
        MetaInfo { requires: Caps::NONE, env_requires: Caps::NONE, context_dim: 0 }
    }

    fn pretrain(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        if ctx.tasks.is_empty() {
            return Err(PluginError::invalid("reptile needs an explicit list of training tasks"));
        }
        let info = ctx.algo.info().into_result()?;
        if !driver::is_on_policy(&info) {
            return self.pretrain_off_policy(ctx, &info);
        }
        let (samples, grad_steps) = (self.cfg.samples_per_task, self.cfg.grad_steps);
        let eps_end = self.cfg.epsilon_end.unwrap_or(self.cfg.epsilon);
        let (mut steps, mut recorded) = (0u64, 0u64);
        // The phase's demonstrations go into the algo once, with the first inner loop.
        let mut first = true;
        match self.continuing.take() {
            // A continued phase reported its start before, and recorded its demos.
            Some((_, p)) => (steps, recorded, first) = (p.env_steps, p.recorded, false),
            None => {
                if !driver::progress(&mut ctx, 0, &[], &[])? {
                    return Ok(());
                }
            }
        }
        while steps < ctx.budget_env_steps {
            // 1. One training task, and the parameters before adapting to it.
            let task = ctx.tasks[self.seeds.below(ctx.tasks.len())];
            let theta_old = ctx.algo.params().into_result()?;
            // 2. k inner updates on that task alone (fresh rollouts on-policy; the task's
            //    buffer off-policy).
            let mut plan = |info: &AlgoInfo, _: &[u64]| {
                if driver::is_on_policy(info) {
                    UpdatePlan::on_policy(grad_steps.unwrap_or(info.grad_steps))
                } else {
                    UpdatePlan::off_policy(vec![task], samples.unwrap_or(info.batch_size), grad_steps.unwrap_or(info.grad_steps))
                }
            };
            let inner = Train {
                tasks: vec![task],
                max_updates: Some(self.cfg.inner_updates as u64),
                report: false,
                recorded_before: recorded,
                demos: first,
                planner: Some(&mut plan),
                ..Train::plain(ctx.budget_env_steps - steps)
            };
            let seed = self.seeds.next();
            let done = driver::train(&mut ctx, seed, inner)?;
            first = false;
            steps += done.env_steps;
            recorded += done.recorded;
            // 3. Outer update: move part of the way towards the adapted parameters.
            let theta_k = ctx.algo.params().into_result()?;
            let epsilon = epsilon_at(self.cfg.epsilon, eps_end, steps, ctx.budget_env_steps);
            let theta = outer_update(&theta_old, &theta_k, epsilon);
            ctx.algo.set_params(theta.as_slice().into()).into_result()?;
            self.outer_iterations += 1;
            let mut scalars = done.scalars;
            scalars.push(Scalar::new("reptile_epsilon", epsilon));
            scalars.push(Scalar::new("reptile_task", task as f64));
            let go_on = driver::progress(&mut ctx, steps, &scalars, &[])?;
            if steps < ctx.budget_env_steps {
                let position = Position { env_steps: steps, recorded, updates: self.outer_iterations, seen: Vec::new() };
                driver::checkpoint_if_due(&mut ctx, || Ok(state(self.seeds, self.outer_iterations, Some((0, &position)))))?;
            }
            if !go_on {
                break;
            }
        }
        Ok(())
    }

    /// Fine-tuning from the meta-learnt initialisation.
    fn adapt(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        let (seed, start) = self.begin_phase();
        let budget = ctx.budget_env_steps;
        let (seeds, outer_iterations) = (self.seeds, self.outer_iterations);
        let mut checkpoint = |p: &Position| Ok(state(seeds, outer_iterations, Some((seed, p))));
        driver::train(&mut ctx, seed, Train { start, checkpoint: Some(&mut checkpoint), ..Train::plain(budget) }).map(drop)
    }

    fn save(&self) -> Result<Vec<u8>, PluginError> {
        Ok(state(self.seeds, self.outer_iterations, self.continuing.as_ref().map(|(s, p)| (*s, p))))
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        if bytes.len() < 16 {
            return Err(PluginError::invalid("reptile state is at least 16 bytes"));
        }
        self.seeds = SeedStream::from_bytes("reptile", &bytes[..8])?;
        self.outer_iterations = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default());
        self.continuing = Position::read_phase(&bytes[16..], PHASE_MAGIC, "reptile")?;
        Ok(())
    }
}

/// The plugin's factory.
pub struct ReptilePlugin;

impl PluginFactory for ReptilePlugin {
    const KIND: PluginKind = PluginKind::META;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "reptile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::META,
            description: "first-order Reptile, then fine-tuning; any base algorithm".into(),
            caps: Caps::NONE,
            families: Default::default(),
            requires: Caps::NONE,
        }
    }

    fn new_meta(req: &MetaRequest) -> Result<Box<dyn Meta>, PluginError> {
        let cfg: Config = parse_config("reptile", &req.config)?;
        if cfg.inner_updates == 0 {
            return Err(PluginError::invalid("reptile config: inner_updates must be at least 1"));
        }
        let in_range = |e: f64| (0.0..=1.0).contains(&e);
        if !in_range(cfg.epsilon) || !cfg.epsilon_end.is_none_or(in_range) {
            return Err(PluginError::invalid("reptile config: epsilon and epsilon_end must be within [0, 1]"));
        }
        Ok(Box::new(Reptile { cfg, seeds: SeedStream::new(req.seed ^ 0x5245_5054), outer_iterations: 0, continuing: None }))
    }
}

metarl_plugin_api::export_plugin!(ReptilePlugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_update_moves_epsilon_of_the_way() {
        let old = [1.0f32, -2.0, 0.5, 0.0];
        let inner = [3.0f32, -2.0, -0.5, 4.0];
        assert_eq!(outer_update(&old, &inner, 0.25), vec![1.5, -2.0, 0.25, 1.0]);
        assert_eq!(outer_update(&old, &inner, 1.0), inner.to_vec());
        assert_eq!(outer_update(&old, &inner, 0.0), old.to_vec());
    }

    #[test]
    fn epsilon_anneals_linearly() {
        assert_eq!(epsilon_at(1.0, 0.0, 0, 100), 1.0);
        assert_eq!(epsilon_at(1.0, 0.0, 25, 100), 0.75);
        assert_eq!(epsilon_at(0.5, 0.5, 60, 100), 0.5);
        assert_eq!(epsilon_at(1.0, 0.0, 200, 100), 0.0);
    }
}
