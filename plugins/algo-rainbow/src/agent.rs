//! [`RainbowAgent`]: the [`Algo`] implementation. Validates what crosses the boundary, acts,
//! records into the per-task replay, draws the plan's batches and hands them to
//! [`crate::rainbow::loss`].

use metarl_plugin_api::algo::{ActInput, ActOutput, Algo, AlgoInfo, AlgoRequest, Transitions, UpdatePlan, UpdateStats};
use metarl_plugin_api::types::*;
use metarl_plugin_kit::seeds::{derive, SeedStream};
use tch::{Device, Kind, Tensor};

use metarl_tch_common::adam::Adam;
use crate::checkpoint::{reader, Reader, Writer, MAGIC, VERSION};
use crate::config::{Config, OnLoad, Truncation};
use crate::net::{to_vec_f32, Net, Shape};
use crate::rainbow::{self, Batch};
use crate::replay::{Layout, Replay, Row};

/// A Rainbow agent.
pub struct RainbowAgent {
    cfg: Config,
    online: Net,
    target: Net,
    adam: Adam,
    support: Tensor,
    replay: Replay,
    /// Online noise at `act`, target noise at each gradient step.
    noise_rng: SeedStream,
    /// Prioritised sampling.
    sample_rng: SeedStream,
    /// Gradient steps since construction or a fine-tuning load (target period, β schedule).
    updates: u64,
    /// A `load` started fine-tuning (`on_load = "finetune"`).
    finetuning: bool,
    device: Device,
    n: usize,
    obs_shape: [i64; 3],
    n_actions: usize,
    ctx_dim: usize,
}

fn invalid(msg: impl std::fmt::Display) -> PluginError {
    PluginError::invalid(format!("rainbow: {msg}"))
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

impl RainbowAgent {
    /// Builds an agent from a host request.
    pub fn new(req: &AlgoRequest) -> Result<Self, PluginError> {
        let cfg = Config::from_toml(&req.config)?;
        let Some(n_actions) = req.action.discrete_choices() else {
            return Err(invalid(format!("needs a single discrete action part (got {})", req.action)));
        };
        let part = req.obs.single().filter(|p| p.dtype == Dtype::U8 && p.shape.len() == 3 && p.role == Role::IMAGE);
        let Some(part) = part else {
            return Err(invalid(format!("needs observations of one u8 image part [height, width, channels] (got {})", req.obs)));
        };
        if req.num_envs == 0 {
            return Err(invalid("num_envs must be at least 1"));
        }
        let [h, w, c] = [part.shape[0] as i64, part.shape[1] as i64, part.shape[2] as i64];
        let stack = cfg.frame_stack.unwrap_or(if c == 4 { 4 } else { 1 }) as i64;
        if c % stack != 0 {
            return Err(invalid(format!("frame_stack = {stack} does not divide the image's {c} channels")));
        }
        let device = parse_device(req.device.as_str())?;
        tch::set_num_threads(req.threads.max(1) as i32);
        let shape = Shape { obs: [h, w, c], actions: n_actions as i64, atoms: cfg.atoms, hidden: cfg.hidden, context: req.context_dim as i64 };
        let mut online = Net::new(shape.clone(), cfg.noisy_std, cfg.head_relu, derive(req.seed, "init"), device).map_err(invalid)?;
        let mut target = Net::new(shape, cfg.noisy_std, cfg.head_relu, derive(req.seed, "init"), device).map_err(invalid)?;
        for p in &mut target.params {
            p.t = p.t.detach().set_requires_grad(false);
        }
        let mut noise_rng = SeedStream::new(derive(req.seed, "noise"));
        online.sample_noise(&mut noise_rng);
        target.copy_from(&online);
        let layout = Layout { pixels: (h * w) as usize, channels: (c / stack) as usize, stack: stack as usize };
        let replay = Replay::new(
            layout,
            req.context_dim as usize,
            cfg.multi_step,
            cfg.memory_capacity as usize,
            cfg.truncation == Truncation::Bootstrap,
            req.num_envs as usize,
        );
        log::debug!("rainbow: {} params, {} on {:?}, frame stack {stack}", online.param_count(), req.obs, device);
        Ok(RainbowAgent {
            adam: Adam::new(&online.params, cfg.learning_rate, cfg.adam_eps),
            support: Tensor::linspace(cfg.v_min, cfg.v_max, cfg.atoms, (Kind::Float, device)),
            sample_rng: SeedStream::new(derive(req.seed, "replay")),
            noise_rng,
            updates: 0,
            finetuning: false,
            n: req.num_envs as usize,
            obs_shape: [h, w, c],
            n_actions: n_actions as usize,
            ctx_dim: req.context_dim as usize,
            cfg,
            online,
            target,
            replay,
            device,
        })
    }

    fn obs_numel(&self) -> usize {
        self.obs_shape.iter().product::<i64>() as usize
    }

    /// The one observation part, checked.
    fn image<'a>(&self, what: &str, obs: &[ArrayRef<'a>]) -> Result<&'a [u8], PluginError> {
        let [part] = obs else {
            return Err(invalid(format!("{what} has {} parts; this agent takes one", obs.len())));
        };
        let Some(px) = part.u8() else {
            return Err(invalid(format!("{what} is {}, expected u8", part.dtype())));
        };
        check_len(what, px.len(), self.n * self.obs_numel())?;
        Ok(px)
    }

    fn images(&self, data: &[u8], rows: i64) -> Tensor {
        let [h, w, c] = self.obs_shape;
        Tensor::from_slice(data).reshape([rows, h, w, c]).to_device(self.device)
    }

    fn arch(&self) -> String {
        let s = &self.online.shape;
        format!(
            "obs {:?}, frame stack {}, actions {}, atoms {}, hidden {}, context {}, head relu {}",
            s.obs, self.replay.layout.stack, s.actions, s.atoms, s.hidden, s.context, self.cfg.head_relu
        )
    }

    fn beta_span(&self) -> u64 {
        if self.finetuning {
            self.cfg.finetune_beta_updates
        } else {
            self.cfg.beta_updates
        }
    }

    /// The replay (for tests and diagnostics).
    pub fn replay(&self) -> &Replay {
        &self.replay
    }

    /// Each online parameter's name and values, in `params()` order.
    pub fn online_params_named(&self) -> Vec<(String, Vec<f32>)> {
        self.online.params.iter().map(|p| (p.name.clone(), to_vec_f32(&p.t))).collect()
    }

    /// Copies the online net into the target net now (as every `target_update` steps do).
    pub fn sync_target(&mut self) {
        self.target.copy_from(&self.online);
    }

    /// Gradient steps since construction or a fine-tuning load.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Draws one gradient step's batch as the plan says; returns it with each sample's
    /// `(task index, slot)`.
    fn draw(&self, plan: &UpdatePlan, rng: &mut SeedStream, beta: f64, ctx_rows: Option<&Tensor>) -> (Batch, Vec<(usize, usize)>) {
        let per_obs = self.obs_numel();
        let spt = plan.samples_per_task as usize;
        let total = plan.tasks.len() * spt;
        let (n, gamma) = (self.cfg.multi_step, self.cfg.gamma);
        let mut obs = vec![0u8; total * per_obs];
        let mut next = vec![0u8; total * per_obs];
        let (mut actions, mut returns, mut discounts, mut weights) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut stored_ctx = Vec::new();
        let mut picks = Vec::with_capacity(total);
        let mut row_task = Vec::with_capacity(total);
        for (ti, &task) in plan.tasks.iter().enumerate() {
            let Some(buf) = self.replay.buffer(task).filter(|b| b.total_priority() > 0.0) else { continue };
            for (slot, w) in buf.sample(spt, beta, || rng.uniform()) {
                let at = picks.len() * per_obs;
                buf.write_stack(buf.obs_ids(slot), &mut obs[at..at + per_obs]);
                let (ret, discount, boot) = buf.window(slot, n, gamma);
                if let Some(b) = boot {
                    buf.write_stack(buf.next_ids(b), &mut next[at..at + per_obs]);
                }
                actions.push(buf.action(slot) as i64);
                returns.push(ret);
                discounts.push(discount);
                weights.push(w);
                stored_ctx.extend_from_slice(buf.context(slot));
                picks.push((ti, slot));
                row_task.push(ti as i64);
            }
        }
        let rows = picks.len() as i64;
        obs.truncate(picks.len() * per_obs);
        next.truncate(picks.len() * per_obs);
        let context = match ctx_rows {
            Some(z) => Some(z.index_select(0, &Tensor::from_slice(&row_task).to_device(self.device))),
            None if self.ctx_dim > 0 => Some(Tensor::from_slice(&stored_ctx).view([rows, -1]).to_device(self.device)),
            None => None,
        };
        let f = |v: &[f32]| Tensor::from_slice(v).to_device(self.device);
        let batch = Batch {
            obs: self.images(&obs, rows),
            next_obs: self.images(&next, rows),
            actions: Tensor::from_slice(&actions).to_device(self.device),
            returns: f(&returns),
            discounts: f(&discounts),
            weights: f(&weights),
            context,
        };
        (batch, picks)
    }

    /// Checks `plan`; `Ok(false)` when none of its tasks has a sampleable row yet.
    fn check_plan(&self, plan: &UpdatePlan) -> Result<bool, PluginError> {
        if plan.tasks.is_empty() || plan.samples_per_task == 0 {
            return Err(invalid("update: an off-policy plan needs tasks and samples_per_task >= 1"));
        }
        for (i, t) in plan.tasks.iter().enumerate() {
            if plan.tasks[..i].contains(t) {
                return Err(invalid(format!("update: task {t} is listed twice in the plan")));
            }
            if self.replay.buffer(*t).is_none() {
                return Err(invalid(format!("update: nothing recorded for task {t}")));
            }
        }
        // A task whose rows are all still inside an open n-step window (a game just drawn)
        // sits this step out rather than failing a long run; its share is not redrawn. When
        // every task of the plan sits out (Reptile plans one task), the update takes no step.
        let ready = plan.tasks.iter().any(|t| self.replay.buffer(*t).is_some_and(|b| b.total_priority() > 0.0));
        if !plan.context.is_empty() {
            if self.ctx_dim == 0 {
                return Err(invalid("update: the plan has context rows but this agent was built without context (context_dim = 0)"));
            }
            check_len("update: plan context", plan.context.len(), plan.tasks.len() * self.ctx_dim)?;
            if plan.context.iter().any(|x| !x.is_finite()) {
                return Err(invalid("update: plan context contains NaN or infinity"));
            }
        } else if plan.want_context_grad {
            return Err(invalid("update: want_context_grad needs context rows in the plan"));
        }
        Ok(ready)
    }

    fn global_grad_norm(&self) -> f64 {
        tch::no_grad(|| {
            let mut sq = 0f64;
            for p in &self.online.params {
                let g = p.t.grad();
                if g.defined() {
                    sq += g.pow_tensor_scalar(2).sum(Kind::Double).double_value(&[]);
                }
            }
            sq.sqrt()
        })
    }

    fn write_params(w: &mut Writer, net: &Net, names: bool) {
        w.u32(net.params.len() as u32);
        for p in &net.params {
            if names {
                w.str(&p.name);
                let dims = p.t.size();
                w.u32(dims.len() as u32);
                dims.iter().for_each(|&d| w.u64(d as u64));
            }
            w.f32s(&to_vec_f32(&p.t));
        }
    }

    /// A checkpoint's reader after its header, checked against this agent, and the online
    /// network's parameters, which come first.
    fn read_online<'a>(&self, bytes: &'a [u8]) -> Result<(Reader<'a>, Vec<Vec<f32>>), PluginError> {
        let mut r = reader(bytes)?;
        let version = r.u32()?;
        if version != VERSION {
            return Err(invalid(format!("load: checkpoint format {version}, this plugin reads {VERSION}")));
        }
        let arch = r.str()?;
        if arch != self.arch() {
            return Err(invalid(format!("load: checkpoint is for a different network ({arch}); this agent is {}", self.arch())));
        }
        let online = self.read_params(&mut r, true)?;
        Ok((r, online))
    }

    fn read_params(&self, r: &mut Reader, names: bool) -> Result<Vec<Vec<f32>>, PluginError> {
        let count = r.u32()? as usize;
        if count != self.online.params.len() {
            return Err(invalid("load: checkpoint does not match this agent's parameters"));
        }
        let mut out = Vec::with_capacity(count);
        for p in &self.online.params {
            if names {
                let name = r.str()?;
                let ndim = r.u32()? as usize;
                let dims = (0..ndim).map(|_| r.u64().map(|d| d as i64)).collect::<Result<Vec<_>, _>>()?;
                if name != p.name || dims != p.t.size() {
                    return Err(invalid(format!("load: checkpoint parameter '{name}' {dims:?} does not match '{}' {:?}", p.name, p.t.size())));
                }
            }
            out.push(r.f32s(p.t.numel())?);
        }
        Ok(out)
    }
}

fn set_tensors(ts: &mut [Tensor], data: &[Vec<f32>]) {
    tch::no_grad(|| {
        for (t, d) in ts.iter_mut().zip(data) {
            let src = Tensor::from_slice(d).reshape(t.size()).to_device(t.device());
            t.copy_(&src);
        }
    });
}

impl Algo for RainbowAgent {
    fn info(&self) -> AlgoInfo {
        let mut caps = Caps::OFF_POLICY | Caps::DISCRETE;
        if self.ctx_dim > 0 {
            caps = caps | Caps::CONTEXT | Caps::CONTEXT_GRAD;
        }
        AlgoInfo {
            caps,
            state_dim: 0,
            extras_dim: 0,
            param_count: self.online.param_count() as u64,
            steps_per_update: self.cfg.steps_per_update,
            grad_steps: self.cfg.grad_steps,
            batch_size: self.cfg.batch_size,
            learning_starts: if self.finetuning { self.cfg.finetune_learning_starts } else { self.cfg.learning_starts },
        }
    }

    /// Greedy in the mean of the return distribution; with fresh online noise while training,
    /// without noise when `deterministic`.
    fn act(&mut self, input: ActInput<'_>, mut out: ActOutput<'_>) -> Result<(), PluginError> {
        let n = self.n;
        let obs = self.image("act: obs", &input.obs)?;
        let [actions] = out.actions.as_mut_slice() else {
            return Err(invalid("act: the actions buffer must have one part"));
        };
        let Some(actions) = actions.i32() else {
            return Err(invalid("act: the actions buffer is not discrete (i32)"));
        };
        check_len("act: actions buffer", actions.len(), n)?;
        check_len("act: context", input.context.len(), n * self.ctx_dim)?;
        if input.context.iter().any(|x| !x.is_finite()) {
            return Err(invalid("act: context contains NaN or infinity"));
        }
        if !input.deterministic {
            self.online.sample_noise(&mut self.noise_rng);
        }
        let greedy = tch::no_grad(|| {
            let ctx = (self.ctx_dim > 0).then(|| Tensor::from_slice(input.context.as_slice()).view([n as i64, -1]).to_device(self.device));
            let p = self.online.logits(&self.images(obs, n as i64), ctx.as_ref(), !input.deterministic).softmax(2, Kind::Float);
            let q = (p * &self.support).sum_dim_intlist(2, false, Kind::Float);
            q.argmax(1, false).to_device(Device::Cpu)
        });
        let greedy = Vec::<i64>::try_from(&greedy).map_err(|e| PluginError::failed(format!("rainbow: act: {e}")))?;
        for (a, g) in actions.iter_mut().zip(greedy) {
            *a = g as i32;
        }
        Ok(())
    }

    fn record(&mut self, b: Transitions<'_>) -> Result<(), PluginError> {
        let n = self.n;
        let per = self.obs_numel();
        let obs = self.image("record: obs", &b.obs)?;
        let next_obs = self.image("record: next_obs", &b.next_obs)?;
        let final_obs = if b.final_obs.is_empty() { None } else { Some(self.image("record: final_obs", &b.final_obs)?) };
        let Some(actions) = b.actions.first().filter(|_| b.actions.len() == 1).and_then(|p| p.i32()) else {
            return Err(invalid("record: actions are not one part of discrete (i32) actions"));
        };
        check_len("record: actions", actions.len(), n)?;
        if let Some((i, &a)) = actions.iter().enumerate().find(|(_, &a)| a < 0 || a as usize >= self.n_actions) {
            return Err(invalid(format!("record: action {a} of env {i} is out of range 0..{}", self.n_actions)));
        }
        check_len("record: rewards", b.rewards.len(), n)?;
        check_len("record: terminated", b.terminated.len(), n)?;
        check_len("record: truncated", b.truncated.len(), n)?;
        check_len("record: task", b.task.len(), n)?;
        if !b.context.is_empty() {
            check_len("record: context", b.context.len(), n * self.ctx_dim)?;
        }
        if b.rewards.iter().chain(b.context.iter()).any(|x| !x.is_finite()) {
            return Err(invalid("record: rewards or context contain NaN or infinity"));
        }
        #[allow(clippy::needless_range_loop)]
        for i in 0..n {
            let rows = i * per..(i + 1) * per;
            self.replay.record(Row {
                lane: i,
                task: b.task[i],
                obs: &obs[rows.clone()],
                action: actions[i],
                reward: b.rewards[i],
                terminated: b.terminated[i] != 0,
                truncated: b.truncated[i] != 0,
                next_obs: &next_obs[rows.clone()],
                final_obs: final_obs.map(|f| &f[rows]),
                context: if b.context.is_empty() { &[] } else { &b.context[i * self.ctx_dim..(i + 1) * self.ctx_dim] },
            })?;
        }
        Ok(())
    }

    fn update(&mut self, plan: &UpdatePlan) -> Result<UpdateStats, PluginError> {
        if !self.check_plan(plan)? {
            log::debug!(
                "rainbow: update of tasks {:?} skipped: no sampleable row yet (a row needs its {}-step window or an episode end)",
                plan.tasks.as_slice(),
                self.cfg.multi_step
            );
            return Ok(UpdateStats { scalars: Vec::new().into(), context_grad: Vec::new().into(), grad_steps: 0, samples: 0 });
        }
        let (k, ctx) = (plan.tasks.len(), self.ctx_dim);
        let mut context_grad = Vec::new();
        let mut scalars = Vec::new();
        let mut samples = 0u64;
        // grad_steps = 0 evaluates the first step on copies of the generators and commits nothing.
        let steps = plan.grad_steps.max(1);
        for step in 0..steps {
            let commit = plan.grad_steps > 0;
            let (mut sample_rng, mut noise_rng) = (self.sample_rng, self.noise_rng);
            let beta = self.cfg.beta(self.updates, self.beta_span());
            let want_grad = step == 0 && plan.want_context_grad;
            let z = (!plan.context.is_empty()).then(|| {
                Tensor::from_slice(plan.context.as_slice()).view([k as i64, ctx as i64]).to_device(self.device).set_requires_grad(want_grad)
            });
            let (batch, picks) = self.draw(plan, &mut sample_rng, beta, z.as_ref());
            self.target.sample_noise(&mut noise_rng);
            let (loss, per_sample) = rainbow::loss(&self.online, &self.target, &batch, &self.support, self.cfg.v_min, self.cfg.v_max);
            let loss_value = loss.double_value(&[]);
            if !loss_value.is_finite() {
                return Err(PluginError::failed(format!("rainbow: update: the loss is {loss_value}")));
            }
            scalars = vec![Scalar::new("loss", loss_value), Scalar::new("beta", beta)];
            if !commit {
                if let (true, Some(z)) = (want_grad, &z) {
                    let g = Tensor::run_backward(&[&loss], &[z], false, false);
                    context_grad = to_vec_f32(&g[0]);
                }
                samples = 0;
                break;
            }
            self.online.zero_grad();
            loss.backward();
            if let (true, Some(z)) = (want_grad, &z) {
                context_grad = to_vec_f32(&z.grad());
            }
            let norm = self.global_grad_norm();
            let scale = if norm > self.cfg.max_grad_norm { self.cfg.max_grad_norm / (norm + 1e-6) } else { 1.0 };
            self.adam.step(&mut self.online.params, scale);
            self.online.zero_grad();
            scalars.push(Scalar::new("grad_norm", norm));
            // Commit: generators move on, priorities take the new losses, the target may sync.
            self.sample_rng = sample_rng;
            self.noise_rng = noise_rng;
            let per_sample = to_vec_f32(&per_sample);
            for (&(ti, slot), &l) in picks.iter().zip(&per_sample) {
                if let Some(b) = self.replay.buffer_mut(plan.tasks[ti]) {
                    b.set_priority(slot, l as f64, self.cfg.priority_exponent);
                }
            }
            self.updates += 1;
            if self.updates.is_multiple_of(self.cfg.target_update) {
                self.target.copy_from(&self.online);
            }
            samples += picks.len() as u64;
        }
        Ok(UpdateStats { scalars: scalars.into(), context_grad: context_grad.into(), grad_steps: plan.grad_steps, samples })
    }

    fn params(&self) -> Result<Vec<f32>, PluginError> {
        Ok(self.online.flat_params())
    }

    fn set_params(&mut self, params: &[f32]) -> Result<(), PluginError> {
        check_len("set_params", params.len(), self.online.param_count())?;
        if params.iter().any(|x| !x.is_finite()) {
            return Err(invalid("set_params: parameters contain NaN or infinity"));
        }
        self.online.set_flat_params(params);
        Ok(())
    }

    fn save(&self) -> Result<Vec<u8>, PluginError> {
        let mut w = Writer::with_magic(MAGIC);
        w.u32(VERSION);
        w.str(&self.arch());
        Self::write_params(&mut w, &self.online, true);
        Self::write_params(&mut w, &self.target, false);
        w.u64(self.adam.step);
        for m in self.adam.m.iter().chain(&self.adam.v) {
            w.f32s(&to_vec_f32(m));
        }
        w.u32(self.online.noise.len() as u32);
        for (i, o) in &self.online.noise {
            w.f32s(i);
            w.f32s(o);
        }
        w.bytes(&self.noise_rng.to_bytes());
        w.bytes(&self.sample_rng.to_bytes());
        w.u64(self.updates);
        w.u8(self.finetuning as u8);
        w.u8(self.cfg.save_replay as u8);
        if self.cfg.save_replay {
            self.replay.write(&mut w);
        }
        Ok(w.0)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let (mut r, online) = self.read_online(bytes)?;
        let target = self.read_params(&mut r, false)?;
        let adam_step = r.u64()?;
        let sizes: Vec<usize> = self.online.params.iter().map(|p| p.t.numel()).collect();
        let m = sizes.iter().map(|&s| r.f32s(s)).collect::<Result<Vec<_>, _>>()?;
        let v = sizes.iter().map(|&s| r.f32s(s)).collect::<Result<Vec<_>, _>>()?;
        let layers = r.u32()? as usize;
        if layers != self.online.noise.len() {
            return Err(r.corrupt());
        }
        let mut noise = Vec::with_capacity(layers);
        for (i, o) in &self.online.noise {
            noise.push((r.f32s(i.len())?, r.f32s(o.len())?));
        }
        let noise_rng = SeedStream::from_bytes("rainbow noise rng", r.take(8)?)?;
        let sample_rng = SeedStream::from_bytes("rainbow replay rng", r.take(8)?)?;
        let updates = r.u64()?;
        let finetuning = r.u8()? != 0;
        let has_replay = r.u8()? != 0;
        if !has_replay {
            return Err(invalid(
                "load: this checkpoint was saved without its replay (save_replay = false): it can start an adaptation \
                 but not continue its unit exactly",
            ));
        }
        let mut replay = self.replay.clone();
        replay.read(&mut r)?;
        if !r.done() {
            return Err(invalid("load: trailing bytes after the checkpoint"));
        }
        let mut ts: Vec<Tensor> = self.online.params.iter().map(|p| p.t.shallow_clone()).collect();
        set_tensors(&mut ts, &online);
        let mut ts: Vec<Tensor> = self.target.params.iter().map(|p| p.t.shallow_clone()).collect();
        set_tensors(&mut ts, &target);
        set_tensors(&mut self.adam.m, &m);
        set_tensors(&mut self.adam.v, &v);
        self.adam.step = adam_step;
        self.online.noise = noise;
        self.online.upload_noise();
        self.noise_rng = noise_rng;
        self.sample_rng = sample_rng;
        self.updates = updates;
        self.finetuning = finetuning;
        self.replay = replay;
        Ok(())
    }

    fn reset_heads(&mut self, seed: u64) -> Result<(), PluginError> {
        self.online.reset_heads(seed);
        self.target.copy_from(&self.online);
        // Moments accumulated for the old heads would mis-scale the first steps of the new ones.
        self.adam.reset_moments(&self.online.params, |p| p.head);
        Ok(())
    }

    fn clear(&mut self) -> Result<(), PluginError> {
        self.replay.clear();
        Ok(())
    }

    fn load_pretrained(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        if self.cfg.on_load == OnLoad::Resume {
            return self.load(bytes);
        }
        // The study's fine-tuning: the pretrained online weights, everything else fresh.
        let (_, online) = self.read_online(bytes)?;
        let mut ts: Vec<Tensor> = self.online.params.iter().map(|p| p.t.shallow_clone()).collect();
        set_tensors(&mut ts, &online);
        if self.cfg.reset_sigmas {
            self.online.reset_sigmas();
        }
        self.target.copy_from(&self.online);
        self.adam = Adam::new(&self.online.params, self.cfg.learning_rate, self.cfg.adam_eps);
        self.replay.capacity = self.cfg.finetune_memory_capacity as usize;
        self.replay.clear();
        self.updates = 0;
        self.finetuning = true;
        Ok(())
    }
}
