//! `pearl`: PEARL (Rakelly et al. 2019), probabilistic context inference over any off-policy
//! algo that takes a context input and returns dL/dz (`Caps::CONTEXT | CONTEXT_GRAD`).
//!
//! The plugin owns the context encoder q(z | c) (its own libtorch graph, [`encoder`]) and each
//! task's recent transitions ([`context`]); the algo only ever sees z rows, in `act`, in
//! `record` and in `UpdatePlan::context`, and answers with ∂L/∂z. So PEARL never knows the
//! algo's internals, and the algo never knows there is an encoder.
//!
//! **Pretraining**, on one env over all training tasks (as MT):
//! 1. every step is recorded into the algo (with the z it acted with) and appended to its
//!    task's context FIFO of the last `context_window` transitions;
//! 2. every update the algo asks for picks `tasks_per_update` tasks with data, draws a context
//!    of `context_size` transitions per task and infers z_k ~ q(z | c_k) by reparameterisation;
//! 3. the algo updates with those rows (`plan.context`, `want_context_grad`) and returns
//!    g_k = ∂L/∂z_k;
//! 4. the encoder steps on Σ_k g_k·z_k + kl_weight · mean_k KL(q(z|c_k) ‖ N(0, I))
//!    ([`encoder::encoder_loss`]), whose gradient is the algo's loss gradient carried
//!    through z plus the KL term's.
//!
//! **Acting**: z is drawn from the prior while the task has no context, afterwards from the
//! posterior of a fresh context of its recent transitions, before every step (`infer =
//! "step"`, the study's code) or at every episode start (`"episode"`, PEARL's posterior
//! sampling).
//!
//! **Adaptation**, as in the study: no gradient updates at all. The agent plays the held-out
//! task, its transitions fill the task's context, and z is re-inferred from it for the whole
//! budget; every evaluation plays with one z from the posterior of a fresh context of the
//! transitions so far (the prior at the zero-shot point): its mean when the evaluation is
//! greedy (noise off), a draw otherwise. `finetune = true` also trains the algo on the task with
//! its inferred z (Xiong et al. 2021), the encoder frozen.
//!
//! Randomness (context draws and ε) comes from the plugin's own SplitMix64 stream, saved with
//! the encoder, its Adam state and the context FIFOs, so a resumed run is exact. Evaluations
//! draw from a stream of their own seed and leave the training stream alone.

pub mod config;
pub mod context;
pub mod encoder;

use std::cell::RefCell;

use metarl_plugin_api::env::EnvSpec;
use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::bytes::{Reader, Writer};
use metarl_plugin_kit::driver::{self, ContextSource, Driver, Train};
use metarl_plugin_kit::parse_config;
use metarl_plugin_kit::seeds::SeedStream;
use metarl_tch_common::adam::Adam;
use metarl_tch_common::{parse_device, to_vec_f32};
use tch::{Device, Tensor};

use config::{Config, Infer, Settings};
use context::{Contexts, Layout};
use encoder::{encoder_loss, normals, Encoder, Posterior};

/// What the algo must offer.
pub const REQUIRES: Caps = Caps(Caps::OFF_POLICY.0 | Caps::CONTEXT.0 | Caps::CONTEXT_GRAD.0);
/// The study's DER Adam ε, used for the encoder too (it shares the agent's optimiser there).
const ADAM_EPS: f64 = 1.5e-4;
/// Gradient-norm clip of the encoder's step (DER's 10; the study clips encoder and agent
/// together, here they are separate networks).
const CLIP_NORM: f64 = 10.0;
const MAGIC: &[u8] = b"METARL-PEARL\n";
const VERSION: u32 = 1;

/// The encoder, its optimiser and every task's context: built when the env's spaces are known.
struct Net {
    encoder: Encoder,
    adam: Adam,
    contexts: Contexts,
}

/// Everything the update and the acting hooks share during a phase.
struct State {
    cfg: Settings,
    device: Device,
    init_seed: u64,
    /// Context draws and ε.
    rng: SeedStream,
    net: Option<Net>,
    /// Encoder steps taken.
    updates: u64,
}

impl State {
    /// Builds the encoder for `spec`'s spaces, or checks that the one loaded fits them.
    fn ensure(&mut self, spec: &EnvSpec) -> Result<&mut Net, PluginError> {
        let layout = Layout::new(&spec.obs, &spec.action).map_err(PluginError::invalid)?;
        if let Some(net) = &self.net {
            if net.contexts.layout != layout {
                return Err(PluginError::invalid(format!(
                    "pearl: the encoder was built for {} but this env gives {}",
                    net.contexts.layout.describe(),
                    layout.describe()
                )));
            }
        } else {
            let (hidden, latent) = (self.cfg.hidden as i64, self.cfg.latent_dim as i64);
            let encoder = Encoder::new(layout.clone(), hidden, latent, self.init_seed, self.device);
            let adam = Adam::new(&encoder.params, self.cfg.lr, ADAM_EPS);
            self.net = Some(Net { encoder, adam, contexts: Contexts::new(layout, self.cfg.context_window as usize) });
        }
        Ok(self.net.as_mut().expect("built above"))
    }

    fn net(&mut self) -> Result<&mut Net, PluginError> {
        self.net.as_mut().ok_or_else(|| PluginError::failed("pearl: the encoder is used before the env's spaces are known"))
    }

    /// q(z | c_k) for each of `tasks` from a fresh context of each (the prior for a task
    /// without transitions yet), drawing with `rng`.
    fn posterior(&mut self, tasks: &[u64], rng: &mut SeedStream) -> Result<Posterior, PluginError> {
        let size = self.cfg.context_size as usize;
        let latent = self.cfg.latent_dim as i64;
        let net = self.net()?;
        let known: Vec<u64> = tasks.iter().copied().filter(|&t| net.contexts.len(t) > 0).collect();
        let inferred = (!known.is_empty()).then(|| {
            let batch = net.contexts.draw(&known, size, rng);
            net.encoder.posterior(&batch, known.len(), size)
        });
        let prior = Posterior::prior(1, latent, net.encoder.device());
        let rows: Vec<Posterior> = tasks
            .iter()
            .map(|t| match known.iter().position(|k| k == t) {
                Some(i) => {
                    let p = inferred.as_ref().expect("inferred for known tasks");
                    Posterior { mu: p.mu.narrow(0, i as i64, 1), var: p.var.narrow(0, i as i64, 1) }
                }
                None => Posterior { mu: prior.mu.shallow_clone(), var: prior.var.shallow_clone() },
            })
            .collect();
        Ok(Posterior::stack(&rows))
    }

    /// One z row per task, drawn without gradients: what acting and fine-tuning use.
    fn z_rows(&mut self, tasks: &[u64], rng: &mut SeedStream) -> Result<Vec<f32>, PluginError> {
        let n = tasks.len() * self.cfg.latent_dim as usize;
        tch::no_grad(|| {
            let post = self.posterior(tasks, rng)?;
            Ok(to_vec_f32(&post.sample(&normals(rng, n))))
        })
    }

    /// One pretraining update: infer z for the plan's tasks, let the algo learn with them,
    /// then step the encoder on the gradient the algo returns.
    fn update(&mut self, algo: &mut AlgoBox, plan: &UpdatePlan) -> Result<UpdateStats, PluginError> {
        let mut rng = self.rng;
        let post = self.posterior(&plan.tasks, &mut rng)?;
        let eps = normals(&mut rng, plan.tasks.len() * self.cfg.latent_dim as usize);
        self.rng = rng;
        let z = post.sample(&eps);
        let plan = UpdatePlan { context: to_vec_f32(&z).into(), want_context_grad: true, ..plan.clone() };
        let mut stats = driver::update(algo, &plan)?;
        // Nothing sampleable yet, or no task of the plan has a context yet (each z then comes
        // from the prior, which has no parameters: with demos recorded first, the first plans
        // name tasks the env has not played): no encoder step.
        if stats.grad_steps == 0 || !z.requires_grad() {
            return Ok(stats);
        }
        let kl_weight = self.cfg.kl_weight;
        let net = self.net()?;
        let loss = encoder_loss(&z, &stats.context_grad, &post, kl_weight);
        for p in &mut net.encoder.params {
            p.t.zero_grad();
        }
        loss.backward();
        let norm: f64 = tch::no_grad(|| {
            net.encoder.params.iter().map(|p| p.t.grad()).filter(|g| g.defined()).map(|g| g.square().sum(tch::Kind::Double).double_value(&[])).sum::<f64>()
        })
        .sqrt();
        net.adam.step(&mut net.encoder.params, if norm > CLIP_NORM { CLIP_NORM / (norm + 1e-6) } else { 1.0 });
        self.updates += 1;
        let kl = post.kl().mean(tch::Kind::Float).double_value(&[]);
        stats.scalars.push(Scalar::new("pearl_kl", kl));
        stats.scalars.push(Scalar::new("pearl_posterior_var", post.var.mean(tch::Kind::Float).double_value(&[])));
        stats.scalars.push(Scalar::new("pearl_encoder_grad_norm", norm));
        Ok(stats)
    }
}

/// The acting side of a phase: z rows for the driver, the context FIFOs filled from its steps.
struct Acting<'a> {
    state: &'a RefCell<State>,
    /// The phase's tasks (evaluation infers from the first when there is one).
    tasks: Vec<u64>,
    /// z row of each env.
    z: Vec<f32>,
    /// Task each env's z was drawn for.
    drawn_for: Vec<Option<u64>>,
    /// Envs whose episode ended on the latest step.
    ended: Vec<bool>,
}

impl<'a> Acting<'a> {
    fn new(state: &'a RefCell<State>, tasks: &[u64]) -> Self {
        Acting { state, tasks: tasks.to_vec(), z: Vec::new(), drawn_for: Vec::new(), ended: Vec::new() }
    }
}

impl ContextSource for Acting<'_> {
    fn observe(&mut self, d: &Driver) -> Result<(), PluginError> {
        let mut st = self.state.borrow_mut();
        let last = d.last();
        st.net()?.contexts.push_step(&last)?;
        for (i, e) in self.ended.iter_mut().enumerate() {
            *e = (d.batch.terminated[i] | d.batch.truncated[i]) == 1;
        }
        Ok(())
    }

    fn next_context(&mut self, d: &mut Driver) -> Result<(), PluginError> {
        let mut st = self.state.borrow_mut();
        st.ensure(&d.batch.spec)?;
        let (n, latent) = (d.num_envs(), st.cfg.latent_dim as usize);
        if self.z.is_empty() {
            (self.z, self.drawn_for, self.ended) = (vec![0.0; n * latent], vec![None; n], vec![false; n]);
        }
        let per_step = st.cfg.infer == Infer::Step;
        let stale: Vec<usize> =
            (0..n).filter(|&i| per_step || self.ended[i] || self.drawn_for[i] != Some(d.batch.task[i])).collect();
        if !stale.is_empty() {
            let tasks: Vec<u64> = stale.iter().map(|&i| d.batch.task[i]).collect();
            let mut rng = st.rng;
            let rows = st.z_rows(&tasks, &mut rng)?;
            st.rng = rng;
            for (k, &i) in stale.iter().enumerate() {
                self.z[i * latent..(i + 1) * latent].copy_from_slice(&rows[k * latent..(k + 1) * latent]);
                self.drawn_for[i] = Some(tasks[k]);
            }
        }
        d.context.clone_from(&self.z);
        Ok(())
    }

    fn for_evaluation(&mut self, req: &EvalRequest) -> Result<Vec<f32>, PluginError> {
        let mut st = self.state.borrow_mut();
        let mut rng = SeedStream::new(req.seed ^ 0x5045_4556);
        let latent = st.cfg.latent_dim as usize;
        match self.tasks.as_slice() {
            [task] if st.net.is_some() => {
                if req.deterministic {
                    // Noise off: the posterior mean of a fresh context (0, the prior's, without one).
                    tch::no_grad(|| Ok(to_vec_f32(&st.posterior(&[*task], &mut rng)?.mu)))
                } else {
                    st.z_rows(&[*task], &mut rng)
                }
            }
            // Several tasks (the env picks among them) or no step yet: the prior.
            _ if req.deterministic => Ok(vec![0.0; latent]),
            _ => Ok(normals(&mut rng, latent)),
        }
    }
}

struct Pearl {
    /// Env seeds and task choices.
    seeds: SeedStream,
    state: RefCell<State>,
}


impl Meta for Pearl {
    fn info(&self) -> MetaInfo {
        MetaInfo { requires: REQUIRES, env_requires: Caps::NONE, context_dim: self.state.borrow().cfg.latent_dim }
    }

    fn pretrain(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        if ctx.tasks.is_empty() {
            return Err(PluginError::invalid("pearl needs an explicit list of training tasks"));
        }
        let info = ctx.algo.info().into_result()?;
        let missing = info.caps.missing(REQUIRES);
        if !missing.is_empty() {
            return Err(PluginError::invalid(format!("pearl needs an algo with {REQUIRES}; this one lacks {missing}")));
        }
        let (k, per_task) = {
            let st = self.state.borrow();
            (st.cfg.tasks_per_update as usize, st.cfg.samples_per_task)
        };
        let seed = self.seeds.next();
        let budget = ctx.budget_env_steps;
        let Pearl { seeds, state } = self;
        let mut plan = |info: &AlgoInfo, recorded: &[u64]| {
            let chosen = seeds.distinct(recorded, k);
            let samples = per_task.unwrap_or((info.batch_size / chosen.len().max(1) as u32).max(1));
            UpdatePlan::off_policy(chosen, samples, info.grad_steps.max(1))
        };
        let mut update = |algo: &mut AlgoBox, plan: &UpdatePlan, _: u64| state.borrow_mut().update(algo, plan);
        let mut acting = Acting::new(state, &ctx.tasks);
        let t = Train { planner: Some(&mut plan), updater: Some(&mut update), context: Some(&mut acting), ..Train::plain(budget) };
        driver::train(&mut ctx, seed, t).map(drop)
    }

    fn adapt(&mut self, mut ctx: MetaContext<'_>) -> Result<(), PluginError> {
        let seed = self.seeds.next();
        let budget = ctx.budget_env_steps;
        let finetune = self.state.borrow().cfg.finetune;
        let state = &self.state;
        let mut acting = Acting::new(state, &ctx.tasks);
        if !finetune {
            // The study's PEARL adaptation: play, collect context, re-infer; no updates.
            let t = Train { learn: false, context: Some(&mut acting), ..Train::plain(budget) };
            return driver::train(&mut ctx, seed, t).map(drop);
        }
        // Fine-tuning with the task's inferred z, the encoder frozen.
        let mut update = |algo: &mut AlgoBox, plan: &UpdatePlan, _: u64| {
            let mut st = state.borrow_mut();
            let mut rng = st.rng;
            let rows = st.z_rows(&plan.tasks, &mut rng)?;
            st.rng = rng;
            Ok(driver::update(algo, &UpdatePlan { context: rows.into(), ..plan.clone() })?)
        };
        let t = Train { updater: Some(&mut update), context: Some(&mut acting), ..Train::plain(budget) };
        driver::train(&mut ctx, seed, t).map(drop)
    }

    fn save(&self) -> Result<Vec<u8>, PluginError> {
        let st = self.state.borrow();
        let mut w = Writer::with_magic(MAGIC);
        w.u32(VERSION);
        w.bytes(&self.seeds.to_bytes());
        w.bytes(&st.rng.to_bytes());
        w.u64(st.updates);
        w.u8(st.net.is_some() as u8);
        if let Some(net) = &st.net {
            let l = &net.contexts.layout;
            match l.image {
                Some((part, [h, wd, c])) => {
                    w.u8(1);
                    w.u32(part as u32);
                    [h, wd, c].iter().for_each(|&x| w.u32(x as u32));
                }
                None => w.u8(0),
            }
            w.u32(l.vectors.len() as u32);
            l.vectors.iter().for_each(|&v| w.u32(v as u32));
            w.u32(l.vector_dim as u32);
            w.u32(l.action_dim as u32);
            w.str(&net.encoder.arch());
            for p in &net.encoder.params {
                w.f32s(&to_vec_f32(&p.t));
            }
            w.u64(net.adam.step);
            for m in net.adam.m.iter().chain(&net.adam.v) {
                w.f32s(&to_vec_f32(m));
            }
            net.contexts.write(&mut w);
        }
        Ok(w.0)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let mut r = Reader::new(bytes, MAGIC, "pearl")?;
        let version = r.u32()?;
        if version != VERSION {
            return Err(PluginError::invalid(format!("pearl load: checkpoint format {version}, this plugin reads {VERSION}")));
        }
        let seeds = SeedStream::from_bytes("pearl", r.take(8)?)?;
        let rng = SeedStream::from_bytes("pearl", r.take(8)?)?;
        let updates = r.u64()?;
        let mut st = self.state.borrow_mut();
        let net = if r.u8()? == 1 {
            let image = match r.u8()? {
                1 => Some((r.u32()? as usize, [r.u32()? as i64, r.u32()? as i64, r.u32()? as i64])),
                _ => None,
            };
            let count = r.u32()? as usize;
            let vectors = (0..count).map(|_| r.u32().map(|v| v as usize)).collect::<Result<Vec<_>, _>>()?;
            let layout = Layout { image, vectors, vector_dim: r.u32()? as usize, action_dim: r.u32()? as usize };
            let arch = r.str()?;
            let (hidden, latent) = (st.cfg.hidden as i64, st.cfg.latent_dim as i64);
            let mut encoder = Encoder::new(layout.clone(), hidden, latent, st.init_seed, st.device);
            if arch != encoder.arch() {
                return Err(PluginError::invalid(format!(
                    "pearl load: the checkpoint's encoder is '{arch}', this config builds '{}'",
                    encoder.arch()
                )));
            }
            let sizes: Vec<usize> = encoder.params.iter().map(|p| p.t.numel()).collect();
            let mut values = Vec::new();
            for &n in &sizes {
                values.extend(r.f32s(n)?);
            }
            metarl_tch_common::set_flat_params(&mut encoder.params, &values);
            let mut adam = Adam::new(&encoder.params, st.cfg.lr, ADAM_EPS);
            adam.step = r.u64()?;
            for (i, m) in adam.m.iter_mut().chain(adam.v.iter_mut()).enumerate() {
                let v = r.f32s(sizes[i % sizes.len()])?;
                *m = Tensor::from_slice(&v).reshape(m.size()).to_device(st.device);
            }
            let contexts = Contexts::read(layout, &mut r)?;
            Some(Net { encoder, adam, contexts })
        } else {
            None
        };
        r.finish()?;
        self.seeds = seeds;
        (st.rng, st.updates, st.net) = (rng, updates, net);
        Ok(())
    }
}

/// The plugin's factory.
pub struct PearlPlugin;

impl PluginFactory for PearlPlugin {
    const KIND: PluginKind = PluginKind::META;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "pearl".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::META,
            description: "PEARL: a context encoder infers z; adaptation re-infers it from the held-out task's transitions, without updates".into(),
            caps: Caps::NONE,
            families: Default::default(),
            requires: REQUIRES,
        }
    }

    fn new_meta(req: &MetaRequest) -> Result<Box<dyn Meta>, PluginError> {
        let raw: Config = parse_config("pearl", &req.config)?;
        let cfg = Settings::from_config(&raw).map_err(PluginError::invalid)?;
        let device = parse_device(req.device.as_str()).map_err(|e| PluginError::invalid(format!("pearl: {e}")))?;
        if req.threads > 0 {
            tch::set_num_threads(req.threads as i32);
        }
        let state = State { cfg, device, init_seed: req.seed, rng: SeedStream::new(req.seed ^ 0x5045_524c), net: None, updates: 0 };
        Ok(Box::new(Pearl { seeds: SeedStream::new(req.seed ^ 0x5345_4544), state: RefCell::new(state) }))
    }
}

// The root module, an exported symbol with a fixed name. Left out of the unit-test build,
// which links the fixture algo plugin's rlib and with it that plugin's root module.
#[cfg(not(test))]
mod root {
    metarl_plugin_api::export_plugin!(super::PearlPlugin);
}

#[cfg(test)]
mod tests {
    use super::*;
    use context::Batch;
    use metarl_plugin_api::algo::into_ffi;
    use metarl_plugin_kit::seeds::SeedStream;

    const LATENT: usize = 3;

    fn fixture_algo() -> AlgoBox {
        let req = AlgoRequest {
            obs: ObsSpace::vector(2),
            action: ActionSpace::discrete(2),
            num_envs: 1,
            context_dim: LATENT as u32,
            seed: 0,
            device: "cpu".into(),
            threads: 1,
            config: "off_policy = true".into(),
        };
        into_ffi(<metarl_fixture_algo::FixtureAlgo as PluginFactory>::new_algo(&req).unwrap())
    }

    fn vector_layout() -> Layout {
        Layout::new(&ObsSpace::vector(2), &ActionSpace::discrete(2)).unwrap()
    }

    /// `tasks` contexts of `per_task` random transitions each.
    fn random_batch(tasks: usize, per_task: usize, seed: u64) -> Batch {
        let mut rng = SeedStream::new(seed);
        let rows = tasks * per_task;
        let mut u = |n: usize| (0..n).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect::<Vec<f32>>();
        Batch { images: Vec::new(), vectors: u(rows * 2), actions: u(rows), rewards: u(rows), rows }
    }

    /// The algo's loss at z (an update of zero steps changes nothing) plus the KL term.
    fn total_loss(algo: &mut AlgoBox, enc: &Encoder, batch: &Batch, eps: &[f32], kl_weight: f64) -> f64 {
        let post = enc.posterior(batch, 2, 4);
        let z = to_vec_f32(&post.sample(eps));
        let plan = UpdatePlan { context: z.into(), ..UpdatePlan::off_policy(vec![0, 1], 1, 0) };
        let stats = driver::update(algo, &plan).unwrap();
        let loss = stats.scalars.iter().find(|s| s.name.as_str() == "loss").unwrap().value;
        loss + kl_weight * post.kl().mean(tch::Kind::Float).double_value(&[])
    }

    /// The encoder's parameter gradient (dL/dz from the algo across the ABI, carried through
    /// z, plus the KL term) matches central finite differences of L(z(φ)) + w·KL(φ).
    #[test]
    fn encoder_gradient_matches_finite_differences() {
        let mut algo = fixture_algo();
        let enc = Encoder::new(vector_layout(), 16, LATENT as i64, 7, Device::Cpu);
        let batch = random_batch(2, 4, 11);
        let eps = normals(&mut SeedStream::new(3), 2 * LATENT);
        let kl_weight = 0.5;
        // Analytic: what State::update back-propagates.
        let post = enc.posterior(&batch, 2, 4);
        let z = post.sample(&eps);
        let plan = UpdatePlan { context: to_vec_f32(&z).into(), want_context_grad: true, ..UpdatePlan::off_policy(vec![0, 1], 1, 0) };
        let stats = driver::update(&mut algo, &plan).unwrap();
        assert_eq!(stats.context_grad.len(), 2 * LATENT);
        encoder_loss(&z, &stats.context_grad, &post, kl_weight).backward();
        let grads: Vec<Vec<f32>> = enc.params.iter().map(|p| to_vec_f32(&p.t.grad())).collect();
        // Numeric, on a few coordinates of every parameter tensor.
        let h = 1e-3f64;
        let mut checked = 0;
        for (pi, p) in enc.params.iter().enumerate() {
            let n = p.t.numel();
            for &k in &[0, n / 2, n - 1] {
                let flat = p.t.view([-1]);
                let bump = |delta: f64| tch::no_grad(|| {
                    let _ = flat.get(k as i64).g_add_scalar_(delta);
                });
                bump(h);
                let up = total_loss(&mut algo, &enc, &batch, &eps, kl_weight);
                bump(-2.0 * h);
                let down = total_loss(&mut algo, &enc, &batch, &eps, kl_weight);
                bump(h);
                let numeric = (up - down) / (2.0 * h);
                let analytic = grads[pi][k] as f64;
                assert!(
                    (numeric - analytic).abs() <= 5e-3 + 2e-2 * analytic.abs(),
                    "{}[{k}]: analytic {analytic}, finite differences {numeric}",
                    p.name
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 3 * enc.params.len());
        // And the gradient is not trivially zero.
        assert!(grads.iter().flatten().any(|g| g.abs() > 1e-3));
    }

    /// The product of two Gaussians, by hand: precisions add, means weight by precision.
    #[test]
    fn posterior_is_the_product_of_the_transition_gaussians() {
        let enc = Encoder::new(vector_layout(), 8, LATENT as i64, 1, Device::Cpu);
        let batch = random_batch(1, 2, 5);
        let post = enc.posterior(&batch, 1, 2);
        let (mu_n, var_n) = enc.factors(&batch);
        let (mu_n, var_n) = (to_vec_f32(&mu_n), to_vec_f32(&var_n));
        let (mu, var) = (to_vec_f32(&post.mu), to_vec_f32(&post.var));
        for j in 0..LATENT {
            let (v1, v2) = (var_n[j] as f64, var_n[LATENT + j] as f64);
            let want_var = 1.0 / (1.0 / v1 + 1.0 / v2);
            let want_mu = want_var * (mu_n[j] as f64 / v1 + mu_n[LATENT + j] as f64 / v2);
            assert!((var[j] as f64 - want_var).abs() < 1e-6 && (mu[j] as f64 - want_mu).abs() < 1e-5);
        }
        // KL of N(μ, σ²) to N(0, 1), per dimension ½(σ² + μ² − 1 − ln σ²).
        let want_kl: f64 = (0..LATENT).map(|j| 0.5 * (var[j] as f64 + (mu[j] as f64).powi(2) - 1.0 - (var[j] as f64).ln())).sum();
        assert!((post.kl().double_value(&[0]) - want_kl).abs() < 1e-5);
        assert_eq!(to_vec_f32(&Posterior::prior(1, 3, Device::Cpu).kl()), vec![0.0]);
    }

    /// Demos recorded first make plans over tasks without any context (their rows are the
    /// prior's): the algo learns, the encoder takes no step (found by the manipulation study,
    /// where this panicked in `backward`).
    #[test]
    fn an_update_over_tasks_without_contexts_leaves_the_encoder_alone() {
        let raw: Config = parse_config("pearl", "hidden = 16\nlatent_dim = 3").unwrap();
        let mut st = State { cfg: Settings::from_config(&raw).unwrap(), device: Device::Cpu, init_seed: 4, rng: SeedStream::new(4), net: None, updates: 0 };
        let spec = EnvSpec { obs: ObsSpace::vector(2), action: ActionSpace::discrete(2), num_envs: 2, max_episode_steps: 0, caps: Caps::NONE };
        let before: Vec<Vec<f32>> = st.ensure(&spec).unwrap().encoder.params.iter().map(|p| to_vec_f32(&p.t)).collect();
        let mut algo = fixture_algo();
        let stats = st.update(&mut algo, &UpdatePlan::off_policy(vec![0, 1], 1, 1)).unwrap();
        assert_eq!((stats.grad_steps, st.updates), (1, 0), "the algo stepped, the encoder did not");
        let after: Vec<Vec<f32>> = st.net().unwrap().encoder.params.iter().map(|p| to_vec_f32(&p.t)).collect();
        assert_eq!(before, after);
    }

    fn pearl(config: &str, seed: u64) -> Box<dyn Meta> {
        let req = MetaRequest { seed, threads: 1, device: "cpu".into(), config: config.into() };
        PearlPlugin::new_meta(&req).unwrap()
    }

    /// A PEARL with a built encoder that has taken one step and holds contexts of two tasks.
    fn trained_state(seed: u64) -> Pearl {
        let req = MetaRequest { seed, threads: 1, device: "cpu".into(), config: "hidden = 16\nlatent_dim = 3".into() };
        let raw: Config = parse_config("pearl", &req.config).unwrap();
        let state = State {
            cfg: Settings::from_config(&raw).unwrap(),
            device: Device::Cpu,
            init_seed: seed,
            rng: SeedStream::new(seed),
            net: None,
            updates: 0,
        };
        let p = Pearl { seeds: SeedStream::new(seed + 1), state: RefCell::new(state) };
        let spec = EnvSpec { obs: ObsSpace::vector(2), action: ActionSpace::discrete(2), num_envs: 2, max_episode_steps: 0, caps: Caps::NONE };
        {
            let mut st = p.state.borrow_mut();
            let net = st.ensure(&spec).unwrap();
            let obs = [0.5f32, -1.0, 0.25, 2.0];
            let actions = [1i32, 0];
            for step in 0..5 {
                let rewards = [step as f32, 1.0];
                let last = metarl_plugin_kit::driver::LastStep {
                    obs: vec![ArrayRef::new(&obs)],
                    actions: vec![ArrayRef::new(&actions)],
                    rewards: &rewards,
                    terminated: &[0, 0],
                    truncated: &[0, 0],
                    next_obs: vec![ArrayRef::new(&obs)],
                    task: &[0, 1],
                    final_obs: Vec::new(),
                    extras: &[],
                    state: &[],
                    prev_action: Vec::new(),
                    prev_reward: &[],
                    first: &[0, 0],
                    context: &[],
                };
                net.contexts.push_step(&last).unwrap();
            }
            let mut algo = fixture_algo();
            let stats = st.update(&mut algo, &UpdatePlan::off_policy(vec![0, 1], 1, 1)).unwrap();
            assert!(stats.scalars.iter().any(|s| s.name.as_str() == "pearl_kl"));
            assert_eq!(st.updates, 1);
        }
        p
    }

    /// save → load → save is byte-identical, and the loaded state draws the same z.
    #[test]
    fn save_and_load_round_trip_exactly() {
        let a = trained_state(9);
        let bytes = a.save().unwrap();
        let mut b = pearl("hidden = 16\nlatent_dim = 3", 123);
        b.load(&bytes).unwrap();
        assert_eq!(b.save().unwrap(), bytes);
        // A config that builds another encoder is refused, naming both.
        let mut c = pearl("hidden = 32\nlatent_dim = 3", 9);
        let e = c.load(&bytes).unwrap_err();
        assert!(e.message.contains("hidden 16") && e.message.contains("hidden 32"), "{}", e.message);
        // Damage is refused in one line.
        let e = pearl("hidden = 16\nlatent_dim = 3", 0).load(&bytes[..bytes.len() - 3]).unwrap_err();
        assert_eq!(e.message.as_str(), "pearl load: the checkpoint is truncated or corrupt");
        assert!(pearl("", 0).load(b"nope").unwrap_err().message.contains("not a pearl checkpoint"));
        // The restored encoder and contexts give the same z for the same draws.
        let mut b2 = trained_state(9);
        let za = a.state.borrow_mut().z_rows(&[0, 1, 7], &mut SeedStream::new(5)).unwrap();
        let zb = b2.state.get_mut().z_rows(&[0, 1, 7], &mut SeedStream::new(5)).unwrap();
        assert_eq!(za, zb);
    }

    #[test]
    fn presets_and_bad_keys() {
        let s = Settings::from_config(&Config::default()).unwrap();
        assert_eq!((s.latent_dim, s.kl_weight, s.hidden, s.context_size, s.context_window), (32, 1.0, 512, 10, 100));
        let p = Settings::from_config(&parse_config::<Config>("pearl", "preset = \"pearl\"").unwrap()).unwrap();
        assert_eq!((p.latent_dim, p.kl_weight, p.infer), (5, 0.1, Infer::Episode));
        let e = Settings::from_config(&parse_config::<Config>("pearl", "context_size = 0").unwrap()).unwrap_err();
        assert!(e.contains("context_size"), "{e}");
        assert!(parse_config::<Config>("pearl", "latent = 3").is_err());
        assert_eq!(pearl("latent_dim = 7", 0).info().context_dim, 7);
        assert_eq!(pearl("", 0).info().requires, REQUIRES);
    }
}
