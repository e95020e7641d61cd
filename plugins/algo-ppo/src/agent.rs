//! [`PpoAgent`]: the [`Algo`] implementation. Validates what crosses the boundary, acts,
//! records, and hands rollouts to [`crate::ppo::update`].

use metarl_plugin_api::algo::{ActInput, ActOutput, Algo, AlgoInfo, AlgoRequest, Transitions, UpdatePlan, UpdateStats};
use metarl_plugin_api::types::*;

use crate::net::ObsKind;
use tch::{Device, Kind, Tensor};

use metarl_tch_common::adam::Adam;
use crate::autocast;
use crate::checkpoint::{Checkpoint, Stored};
use crate::config::{Config, Precision};
use crate::net::{to_vec_f32, Net, Shape};
use crate::ppo::{self, Learner};
use crate::rng::Rng;
use crate::rollout::{ActMemo, RewardScale, Rollout};

/// Floats per env in `ActOutput::extras`: value estimate and log-probability of the action.
pub const EXTRAS_DIM: u32 = 2;

/// A PPO agent.
pub struct PpoAgent {
    cfg: Config,
    net: Net,
    adam: Adam,
    rng: Rng,
    device: Device,
    n: usize,
    obs_kind: ObsKind,
    obs_numel: usize,
    n_actions: usize,
    ctx_dim: usize,
    state_dim: usize,
    rollout: Rollout,
    reward_scale: RewardScale,
    /// Inputs of the last `act`, for the next `record` (recurrent / context modes).
    memo: Option<ActMemo>,
    /// The state the last `act` wrote, to notice rows the caller replaced.
    last_state_out: Vec<f32>,
    /// When the current rollout's first step was recorded (for the timing log line).
    rollout_started: Option<std::time::Instant>,
}

fn invalid(msg: impl std::fmt::Display) -> PluginError {
    PluginError::invalid(format!("ppo: {msg}"))
}

fn check_len(what: &str, got: usize, want: usize) -> Result<(), PluginError> {
    if got != want {
        return Err(invalid(format!("{what} has {got} entries, expected {want}")));
    }
    Ok(())
}

/// Resolves `AlgoRequest::device`.
pub fn parse_device(name: &str) -> Result<Device, PluginError> {
    metarl_tch_common::parse_device(name).map_err(invalid)
}

/// Once per process (a study builds an agent per unit): bf16 asked for where it is emulated.
fn warn_emulated_bf16() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        log::warn!(
            "ppo: precision = \"bf16\" on a CPU without native bf16 (no avx512_bf16): libtorch emulates it, \
             about ten times slower than fp32; use precision = \"auto\" (bf16 only where native) or \"fp32\""
        )
    });
}

impl PpoAgent {
    /// Builds an agent from a host request.
    pub fn new(req: &AlgoRequest) -> Result<Self, PluginError> {
        let mut cfg = Config::from_toml(&req.config)?;
        let Some(n_actions) = req.action.discrete_choices() else {
            return Err(invalid(format!(
                "only one discrete action part is supported (got {}); PPO here has a categorical policy over discrete actions",
                req.action
            )));
        };
        if req.num_envs == 0 {
            return Err(invalid("num_envs must be at least 1"));
        }
        if let Some(want) = cfg.num_envs {
            if want != req.num_envs {
                return Err(invalid(format!("config pins num_envs = {want} but the request has {}", req.num_envs)));
            }
        }
        let part = req.obs.single().ok_or_else(|| {
            invalid(format!("observations of {} parts are not supported ({}); PPO takes one image or one vector", req.obs.parts.len(), req.obs))
        })?;
        let obs_kind = match (part.dtype, part.shape.len()) {
            (Dtype::U8, 3) => ObsKind::ImageU8,
            (Dtype::F32, 1) => ObsKind::VectorF32,
            _ => return Err(invalid(format!("unsupported observation part {part} (u8 images must be HxWxC, f32 vectors D)"))),
        };
        if part.shape.contains(&0) {
            return Err(invalid(format!("observation part {part} has an empty dimension")));
        }
        let obs_numel = part.numel();
        let device = parse_device(req.device.as_str())?;
        cfg.precision = cfg.precision.resolve(device);
        if cfg.precision == Precision::Bf16 && device == Device::Cpu && !crate::config::cpu_has_native_bf16() {
            warn_emulated_bf16();
        }
        // The host decides the thread count for the whole process; every plugin sets the same.
        tch::set_num_threads(req.threads.max(1) as i32);

        let shape = Shape {
            obs_kind,
            obs_shape: part.shape.iter().map(|&d| d as i64).collect(),
            n_actions: n_actions as i64,
            context_dim: req.context_dim as i64,
        };
        let net = Net::new(&cfg, shape, req.seed, device)?;
        let adam = Adam::new(&net.params, cfg.learning_rate, cfg.adam_eps);
        let n = req.num_envs as usize;
        let state_dim = if cfg.recurrent { 2 * cfg.lstm_hidden as usize } else { 0 };
        // Debug, not info: a study builds an agent per unit, and the host's progress bars say
        // what is running.
        log::debug!(
            "ppo: {} params, {} on {:?}, {:?}, {}{}",
            net.param_count(),
            req.obs,
            device,
            cfg.precision,
            if cfg.recurrent { "recurrent" } else { "feed-forward" },
            if req.context_dim > 0 { format!(", context {}", req.context_dim) } else { String::new() }
        );
        Ok(PpoAgent {
            rollout: Rollout::new(obs_kind, obs_numel, n, cfg.num_steps),
            reward_scale: RewardScale::new(cfg.gamma, n),
            rng: Rng::new(req.seed),
            obs_kind,
            obs_numel,
            n_actions: n_actions as usize,
            ctx_dim: req.context_dim as usize,
            state_dim,
            n,
            cfg,
            net,
            adam,
            device,
            memo: None,
            last_state_out: Vec::new(),
            rollout_started: None,
        })
    }

    /// The one observation part, checked against the agent's space.
    fn check_obs<'a>(&self, what: &str, obs: &[ArrayRef<'a>]) -> Result<ArrayRef<'a>, PluginError> {
        let [part] = obs else {
            return Err(invalid(format!("{what} has {} parts; this agent takes one", obs.len())));
        };
        let want = if self.obs_kind == ObsKind::ImageU8 { Dtype::U8 } else { Dtype::F32 };
        if part.dtype() != want {
            return Err(invalid(format!("{what} is {}, but this agent was built for {want}", part.dtype())));
        }
        check_len(what, part.len(), self.n * self.obs_numel)?;
        Ok(*part)
    }

    fn discrete<'a>(&self, what: &str, a: &[ArrayRef<'a>]) -> Result<&'a [i32], PluginError> {
        let Some(a) = a.first().filter(|_| a.len() == 1).and_then(|p| p.i32()) else {
            return Err(invalid(format!("{what} are not one part of discrete (i32) actions")));
        };
        check_len(what, a.len(), self.n)?;
        if let Some((i, &x)) = a.iter().enumerate().find(|(_, &x)| x < 0 || x as usize >= self.n_actions) {
            return Err(invalid(format!("{what}: action {x} of env {i} is out of range 0..{}", self.n_actions)));
        }
        Ok(a)
    }

    fn obs_tensor(&self, obs: &ArrayRef<'_>) -> Tensor {
        let mut shape = vec![self.n as i64];
        shape.extend_from_slice(&self.net.shape.obs_shape);
        let t = match (obs.u8(), obs.f32()) {
            (Some(s), _) => Tensor::from_slice(s),
            (_, Some(s)) => Tensor::from_slice(s),
            _ => unreachable!("dtype checked in check_obs"),
        };
        t.reshape(&shape).to_device(self.device)
    }

    fn arch(&self) -> String {
        let s = &self.net.shape;
        format!(
            "obs {:?} {:?}, actions {}, context {}, channels {:?}, latent {}, mlp {}, lstm {}",
            s.obs_kind,
            s.obs_shape,
            s.n_actions,
            s.context_dim,
            self.cfg.channels,
            self.cfg.latent,
            self.cfg.mlp_hidden,
            self.net.hidden
        )
    }

    /// Bytes held by the current rollout: `(observations, everything)`.
    pub fn rollout_bytes(&self) -> (usize, usize) {
        (self.rollout.obs.bytes() + self.rollout.next_obs.bytes(), self.rollout.bytes())
    }

    /// Name, length and head flag of each parameter tensor, in the order of `params()`.
    pub fn param_layout(&self) -> Vec<(String, usize, bool)> {
        self.net.params.iter().map(|p| (p.name.clone(), p.t.numel(), p.head)).collect()
    }

    /// Whether bf16 autocast is active on this thread right now (it never is between calls).
    pub fn autocast_leaked(&self) -> bool {
        autocast::is_enabled(self.device)
    }
}

impl Algo for PpoAgent {
    fn info(&self) -> AlgoInfo {
        let mut caps = Caps::ON_POLICY | Caps::DISCRETE;
        if self.net.recurrent() {
            caps = caps | Caps::RECURRENT | Caps::RL2_INPUTS;
        }
        if self.ctx_dim > 0 {
            caps = caps | Caps::CONTEXT;
        }
        AlgoInfo {
            caps,
            state_dim: self.state_dim as u32,
            extras_dim: EXTRAS_DIM,
            param_count: self.net.param_count() as u64,
            steps_per_update: self.cfg.num_steps as u32,
            grad_steps: self.cfg.update_epochs as u32,
            batch_size: (self.cfg.num_steps * self.n / self.cfg.num_minibatches.max(1)) as u32,
            learning_starts: 0,
        }
    }

    fn act(&mut self, input: ActInput<'_>, mut out: ActOutput<'_>) -> Result<(), PluginError> {
        let n = self.n;
        let obs = self.check_obs("act: obs", &input.obs)?;
        let [actions] = out.actions.as_mut_slice() else {
            return Err(invalid("act: the actions buffer must have one part"));
        };
        let Some(actions) = actions.i32() else {
            return Err(invalid("act: the actions buffer is not discrete (i32) but this agent acts in a discrete space"));
        };
        check_len("act: actions buffer", actions.len(), n)?;
        check_len("act: extras buffer", out.extras.len(), n * EXTRAS_DIM as usize)?;
        check_len("act: state", input.state.len(), n * self.state_dim)?;
        check_len("act: context", input.context.len(), n * self.ctx_dim)?;
        self.rollout_started.get_or_insert_with(std::time::Instant::now);
        let recurrent = self.net.recurrent();
        let (prev_action, prev_reward, first) = if recurrent {
            let a = self.discrete("act: prev_action", &input.prev_action)?;
            check_len("act: prev_reward", input.prev_reward.len(), n)?;
            check_len("act: first", input.first.len(), n)?;
            (
                a.iter().map(|&x| x as i64).collect::<Vec<_>>(),
                input.prev_reward.to_vec(),
                input.first.iter().map(|&f| (f != 0) as u8 as f32).collect::<Vec<_>>(),
            )
        } else {
            (Vec::new(), Vec::new(), Vec::new())
        };
        if obs.f32().is_some_and(|s| s.iter().any(|x| !x.is_finite())) {
            return Err(invalid("act: observations contain NaN or infinity"));
        }
        if prev_reward.iter().chain(input.context.iter()).any(|x| !x.is_finite()) {
            return Err(invalid("act: prev_reward or context contains NaN or infinity"));
        }

        let (logp, values, state_out) = {
            let _no_grad = tch::no_grad_guard();
            let _ac = autocast::Scope::enter(self.cfg.precision == Precision::Bf16, self.device)?;
            let z = self.net.encode(&self.obs_tensor(&obs));
            let (latent, state_out) = if recurrent {
                let rl2 = self.net.rl2_inputs(
                    &Tensor::from_slice(&prev_action).to_device(self.device),
                    &Tensor::from_slice(&prev_reward).to_device(self.device),
                    &Tensor::from_slice(&first).to_device(self.device),
                );
                let state = Tensor::from_slice(input.state.as_slice()).view([n as i64, -1]).to_device(self.device);
                let hidden = self.net.hidden;
                let (h, c) = self.net.core_step(&z, &rl2, &state.narrow(1, 0, hidden), &state.narrow(1, hidden, hidden));
                let state_out = to_vec_f32(&Tensor::cat(&[&h, &c], 1));
                (h, state_out)
            } else {
                (z, Vec::new())
            };
            let context = (self.ctx_dim > 0)
                .then(|| Tensor::from_slice(input.context.as_slice()).view([n as i64, -1]).to_device(self.device));
            let (logits, values) = self.net.heads(&latent, context.as_ref());
            (to_vec_f32(&logits.log_softmax(-1, Kind::Float)), to_vec_f32(&values), state_out)
        };

        let k = self.n_actions;
        for i in 0..n {
            let row = &logp[i * k..(i + 1) * k];
            let a = if input.deterministic {
                row.iter().enumerate().fold(0, |best, (j, &x)| if x > row[best] { j } else { best })
            } else {
                // Inverse-CDF sampling with the agent's own generator.
                let u = self.rng.uniform();
                let mut acc = 0f64;
                let mut pick = k - 1;
                for (j, &lp) in row.iter().enumerate() {
                    acc += (lp as f64).exp();
                    if u < acc {
                        pick = j;
                        break;
                    }
                }
                pick
            };
            actions[i] = a as i32;
            out.extras[2 * i] = values[i];
            out.extras[2 * i + 1] = row[a];
        }

        if recurrent || self.ctx_dim > 0 {
            let restart = if recurrent {
                let same = self.last_state_out.len() == input.state.len();
                (0..n)
                    .map(|i| {
                        let r = i * self.state_dim..(i + 1) * self.state_dim;
                        let replaced = !same
                            || input.state[r.clone()].iter().zip(&self.last_state_out[r]).any(|(a, b)| a.to_bits() != b.to_bits());
                        replaced as u8 as f32
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let mut state = input.state;
            state.copy_from_slice(&state_out);
            self.last_state_out.clone_from(&state_out);
            self.memo = Some(ActMemo {
                prev_action,
                prev_reward,
                first,
                context: input.context.to_vec(),
                restart,
                state_out,
            });
        }
        Ok(())
    }

    fn record(&mut self, b: Transitions<'_>) -> Result<(), PluginError> {
        let n = self.n;
        let obs = self.check_obs("record: obs", &b.obs)?;
        let next_obs = self.check_obs("record: next_obs", &b.next_obs)?;
        let actions = self.discrete("record: actions", &b.actions)?;
        if b.extras.is_empty() {
            return Err(invalid(
                "record: extras are empty; PPO learns only from its own actions and needs the (value, log_prob) extras act returned",
            ));
        }
        check_len("record: extras", b.extras.len(), n * EXTRAS_DIM as usize)?;
        check_len("record: rewards", b.rewards.len(), n)?;
        check_len("record: terminated", b.terminated.len(), n)?;
        check_len("record: truncated", b.truncated.len(), n)?;
        check_len("record: state", b.state.len(), n * self.state_dim)?;
        check_len("record: task", b.task.len(), n)?;
        if b.rewards.iter().chain(b.extras.iter()).any(|x| !x.is_finite()) {
            return Err(invalid("record: rewards or extras contain NaN or infinity"));
        }
        if self.rollout.steps >= self.cfg.num_steps {
            return Err(invalid(format!(
                "record: the rollout is full ({} steps, config num_steps); call update first",
                self.cfg.num_steps
            )));
        }
        let memo = if self.net.recurrent() || self.ctx_dim > 0 {
            let m = self.memo.take().ok_or_else(|| {
                invalid("record: recurrent and context agents need the inputs of a preceding act call; call act before each record")
            })?;
            Some(m)
        } else {
            None
        };

        let dones: Vec<u8> = b.terminated.iter().zip(b.truncated.iter()).map(|(&te, &tr)| u8::from(te != 0 || tr != 0)).collect();
        let rewards =
            if self.cfg.normalize_reward { self.reward_scale.apply(&b.rewards, &dones) } else { b.rewards.to_vec() };

        let r = &mut self.rollout;
        match (obs.u8(), next_obs.u8(), obs.f32(), next_obs.f32()) {
            (Some(o), Some(no), _, _) => {
                r.obs.push_u8(o);
                r.next_obs.set_u8(no);
            }
            (_, _, Some(o), Some(no)) => {
                r.obs.push_f32(o);
                r.next_obs.set_f32(no);
            }
            _ => unreachable!("dtypes checked above"),
        }
        r.actions.extend(actions.iter().map(|&a| a as i64));
        r.values.extend(b.extras.iter().step_by(2));
        r.logprobs.extend(b.extras.iter().skip(1).step_by(2));
        r.rewards.extend(rewards);
        r.dones.extend(&dones);
        r.tasks.extend(b.task.iter());
        r.last_raw_rewards = b.rewards.to_vec();
        if let Some(m) = memo {
            if self.net.recurrent() {
                r.states.extend(b.state.iter());
                r.restarts.extend(m.restart);
                r.prev_actions.extend(m.prev_action);
                r.prev_rewards.extend(m.prev_reward);
                r.firsts.extend(m.first);
                r.next_state = m.state_out;
            }
            r.contexts.extend(&m.context);
            r.next_context = m.context;
        }
        r.steps += 1;
        if r.steps == self.cfg.num_steps {
            // Full: bootstrap V(s_T) now, with the parameters that acted (as the stored values
            // were), and free the last frames, so a full rollout holds each frame once.
            let bf16 = self.cfg.precision == Precision::Bf16;
            self.rollout.next_values = Some(crate::batch::bootstrap_values(&self.net, &self.rollout, bf16, self.device)?);
            self.rollout.release_next_obs();
        }
        Ok(())
    }

    fn update(&mut self, plan: &UpdatePlan) -> Result<UpdateStats, PluginError> {
        if self.rollout.steps == 0 {
            return Err(invalid("update: nothing recorded since the last update"));
        }
        if !plan.tasks.is_empty() || plan.samples_per_task != 0 {
            return Err(invalid(
                "update: PPO is on-policy and learns from the whole rollout; give no tasks and samples_per_task = 0",
            ));
        }
        if plan.want_context_grad || !plan.context.is_empty() {
            return Err(PluginError::unsupported(
                "ppo: takes context rows only as act inputs; per-task plan contexts and their gradient (context-grad) are for off-policy algos",
            ));
        }
        let learner =
            Learner { cfg: &self.cfg, net: &mut self.net, adam: &mut self.adam, rng: &mut self.rng, device: self.device };
        // A refused plan leaves the rollout in place, so the caller can retry with another.
        let started = std::time::Instant::now();
        let stats = ppo::update(learner, &self.rollout, plan)?;
        if plan.grad_steps == 0 {
            // Only the loss was asked for: nothing changed, the rollout stays.
            return Ok(stats);
        }
        log::debug!(
            "ppo: {} rows; rollout {:.2} s (acting and env stepping), update {:.2} s",
            self.rollout.rows(),
            self.rollout_started.map_or(0.0, |t| started.duration_since(t).as_secs_f64()),
            started.elapsed().as_secs_f64()
        );
        self.rollout_started = None;
        self.rollout.clear();
        Ok(stats)
    }

    fn params(&self) -> Result<Vec<f32>, PluginError> {
        Ok(self.net.flat_params())
    }

    fn set_params(&mut self, params: &[f32]) -> Result<(), PluginError> {
        check_len("set_params", params.len(), self.net.param_count())?;
        if params.iter().any(|x| !x.is_finite()) {
            return Err(invalid("set_params: parameters contain NaN or infinity"));
        }
        self.net.set_flat_params(params);
        Ok(())
    }

    fn save(&self) -> Result<Vec<u8>, PluginError> {
        if self.rollout.steps > 0 {
            log::debug!("ppo: save leaves out the {} recorded steps of the current rollout", self.rollout.steps);
        }
        let ckpt = Checkpoint {
            arch: self.arch(),
            params: self
                .net
                .params
                .iter()
                .map(|p| Stored { name: p.name.clone(), dims: p.t.size(), data: to_vec_f32(&p.t) })
                .collect(),
            adam_step: self.adam.step,
            adam_m: self.adam.m.iter().map(to_vec_f32).collect(),
            adam_v: self.adam.v.iter().map(to_vec_f32).collect(),
            rng: self.rng.state(),
            reward_stats: [self.reward_scale.mean, self.reward_scale.var, self.reward_scale.count],
            reward_returns: self.reward_scale.returns.clone(),
        };
        Ok(ckpt.to_bytes())
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let c = Checkpoint::from_bytes(bytes)?;
        if c.arch != self.arch() {
            return Err(invalid(format!("load: checkpoint is for a different network ({}); this agent is {}", c.arch, self.arch())));
        }
        if c.params.len() != self.net.params.len() || c.reward_returns.len() != self.n {
            return Err(invalid("load: checkpoint does not match this agent's parameters or env count"));
        }
        for (s, p) in c.params.iter().zip(&self.net.params) {
            if s.name != p.name || s.dims != p.t.size() {
                return Err(invalid(format!("load: checkpoint parameter '{}' {:?} does not match '{}' {:?}", s.name, s.dims, p.name, p.t.size())));
            }
        }
        let to_t = |data: &[f32], like: &Tensor| Tensor::from_slice(data).reshape(like.size()).to_device(like.device());
        tch::no_grad(|| {
            for (s, p) in c.params.iter().zip(&mut self.net.params) {
                p.t.copy_(&to_t(&s.data, &p.t));
            }
            for (m, data) in self.adam.m.iter_mut().zip(&c.adam_m) {
                m.copy_(&to_t(data, m));
            }
            for (v, data) in self.adam.v.iter_mut().zip(&c.adam_v) {
                v.copy_(&to_t(data, v));
            }
        });
        self.adam.step = c.adam_step;
        self.rng = Rng::from_state(c.rng);
        [self.reward_scale.mean, self.reward_scale.var, self.reward_scale.count] = c.reward_stats;
        self.reward_scale.returns = c.reward_returns;
        self.rollout.clear();
        self.memo = None;
        self.last_state_out.clear();
        Ok(())
    }

    fn reset_heads(&mut self, seed: u64) -> Result<(), PluginError> {
        self.net.reset_heads(seed);
        // Moments accumulated for the old heads would mis-scale the first steps of the new ones.
        self.adam.reset_moments(&self.net.params, |p| p.head);
        Ok(())
    }

    fn clear(&mut self) -> Result<(), PluginError> {
        self.rollout.clear();
        self.memo = None;
        Ok(())
    }
}
