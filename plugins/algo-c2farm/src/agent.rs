//! [`C2fArmAgent`]: the [`Algo`] implementation. Validates what crosses the boundary, acts
//! coarse to fine, records into the per-task replay, draws the plan's batches, voxelises them
//! and hands them to [`crate::learn::step`].

use metarl_plugin_api::algo::{ActInput, ActOutput, Algo, AlgoInfo, AlgoRequest, Transitions, UpdatePlan, UpdateStats};
use metarl_plugin_api::types::*;
use metarl_plugin_kit::bytes::{Reader, Writer};
use metarl_plugin_kit::seeds::{derive, SeedStream};
use metarl_tch_common::{flat_params, param_count, set_flat_params, to_vec_f32};
use tch::{Device, Kind, Tensor};

use crate::c2f::Bounds;
use crate::config::{AdaptExploration, Config};
use crate::learn::{self, argmax_rot_grip, argmax_voxel, Batch, Level, LevelBatch};
use crate::net::{QNet, Shape};
use crate::replay::{Replay, Row};
use crate::rotation::{self, BINS};
use crate::spaces::{fixed_rotation, ActionMap, AgentAction, Cloud, EnvAction, Geometry, ObsMap};
use crate::voxel::voxelise;

/// Magic bytes at the start of every checkpoint.
pub const MAGIC: &[u8] = b"METARL-C2FARM\n";
/// Checkpoint format version.
pub const VERSION: u32 = 1;

/// A C2F-ARM agent.
pub struct C2fArmAgent {
    cfg: Config,
    obs_map: ObsMap,
    act_map: ActionMap,
    geo: Geometry,
    keep: Bounds,
    levels: Vec<Level>,
    /// The constant rotation bins where the env has no rotation control.
    fixed_rotation: Option<[i64; 3]>,
    replay: Replay,
    /// Exploration at training `act`s.
    explore_rng: SeedStream,
    /// Prioritised sampling.
    sample_rng: SeedStream,
    /// Crop augmentation of demonstrations.
    augment_rng: SeedStream,
    /// Env steps acted in training (the ε schedule).
    acted: u64,
    /// Gradient steps taken.
    updates: u64,
    device: Device,
    n: usize,
    /// Width of the context rows (PEARL's z; 0 without).
    ctx_dim: usize,
}

fn invalid(msg: impl std::fmt::Display) -> PluginError {
    PluginError::invalid(format!("c2farm: {msg}"))
}

fn check_len(what: &str, got: usize, want: usize) -> Result<(), PluginError> {
    if got != want {
        return Err(invalid(format!("{what} has {got} entries, expected {want}")));
    }
    Ok(())
}

/// A standard normal draw (Box–Muller).
fn gauss(rng: &mut SeedStream) -> f64 {
    let (u1, u2) = (1.0 - rng.uniform(), rng.uniform());
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// What a walk down the levels gives.
struct Descent {
    /// Each level's `[B, 10, G, G, G]` grid.
    grids: Vec<Tensor>,
    /// Each row's voxel per level.
    voxels: Vec<Vec<[i64; 3]>>,
    /// The last level's `[B, 3·72 + 2]` rotation and gripper Q-values.
    rot_grip: Tensor,
}

impl C2fArmAgent {
    /// Builds an agent from a host request; refuses, in one line, spaces it cannot use.
    pub fn new(req: &AlgoRequest) -> Result<Self, PluginError> {
        let cfg = Config::from_toml(&req.config)?;
        let obs_map = ObsMap::new(&req.obs, cfg.cameras.as_deref(), cfg.proprio.as_deref())?;
        let act_map = ActionMap::new(&req.action)?;
        if req.num_envs == 0 {
            return Err(invalid("num_envs must be at least 1"));
        }
        let Some(scene) = cfg.scene_bounds.or(act_map.position_bounds) else {
            return Err(invalid("the pose action part has no position bounds: set scene_bounds in the config"));
        };
        let geo = Geometry { scene, grid: cfg.grid, levels: cfg.levels, offset: cfg.bounds_offset };
        let device = metarl_tch_common::parse_device(req.device.as_str()).map_err(invalid)?;
        tch::set_num_threads(req.threads.max(1) as i32);
        let mut levels = Vec::with_capacity(cfg.levels);
        for l in 0..cfg.levels {
            // The context enters level 0 only, through its own dense layer (the author's fork).
            let context = if l == 0 { req.context_dim as i64 } else { 0 };
            let shape = Shape { grid: cfg.grid, proprio: obs_map.proprio_dim() as i64, context, rot_grip: l + 1 == cfg.levels };
            let seed = derive(req.seed, &format!("level {l}"));
            let online = QNet::new(shape, cfg.net, seed, device).map_err(|e| invalid(format!("config: {e}")))?;
            let target = QNet::new(shape, cfg.net, seed, device).map_err(invalid)?;
            levels.push(Level::new(online, target, &cfg.learn));
        }
        let fixed_rotation = (!act_map.rotates()).then(fixed_rotation);
        log::debug!("c2farm: {} parameters over {} levels of {}³, scene {scene:?}, device {device:?}", levels.iter().map(|l| l.online.param_count()).sum::<usize>(), cfg.levels, cfg.grid);
        Ok(C2fArmAgent {
            replay: Replay::new(cfg.memory_capacity as usize, req.num_envs as usize),
            keep: geo.keep(),
            explore_rng: SeedStream::new(derive(req.seed, "explore")),
            sample_rng: SeedStream::new(derive(req.seed, "replay")),
            augment_rng: SeedStream::new(derive(req.seed, "augment")),
            acted: 0,
            updates: 0,
            n: req.num_envs as usize,
            ctx_dim: req.context_dim as usize,
            cfg,
            obs_map,
            act_map,
            geo,
            levels,
            fixed_rotation,
            device,
        })
    }

    /// The replay (tests and diagnostics).
    pub fn replay(&self) -> &Replay {
        &self.replay
    }

    /// The coarse-to-fine geometry.
    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// The exploration rate a training `act` would use now.
    pub fn epsilon(&self) -> f64 {
        self.cfg.epsilon(self.acted)
    }

    /// Gradient steps taken.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    fn extras_dim(&self) -> usize {
        3 * self.cfg.levels + 4
    }

    fn arch(&self) -> String {
        format!(
            "levels {}, grid {}, offset {}, scene {:?}, net {:?}, proprio {}, context {}, rotation {}",
            self.cfg.levels,
            self.cfg.grid,
            self.cfg.bounds_offset,
            self.geo.scene,
            self.cfg.net,
            self.obs_map.proprio_dim(),
            self.ctx_dim,
            if self.fixed_rotation.is_some() { "fixed" } else { "free" }
        )
    }

    /// `[B, N, 3]` points (NaN-padded: voxelise drops them), `[B, N, 3]` colours in [-1, 1] and
    /// `[B, P]` proprioception of `clouds`.
    fn tensors(&self, clouds: &[&Cloud]) -> (Tensor, Tensor, Tensor) {
        let b = clouds.len();
        let n = clouds.iter().map(|c| c.len()).max().unwrap_or(0).max(1);
        let p = self.obs_map.proprio_dim();
        let mut pts = vec![f32::NAN; b * n * 3];
        let mut rgb = vec![0f32; b * n * 3];
        let mut prop = vec![0f32; b * p];
        for (i, c) in clouds.iter().enumerate() {
            pts[i * n * 3..i * n * 3 + c.points.len()].copy_from_slice(&c.points);
            for (o, &v) in rgb[i * n * 3..].iter_mut().zip(&c.rgb) {
                *o = v as f32 / 127.5 - 1.0;
            }
            if c.proprio.len() == p {
                prop[i * p..(i + 1) * p].copy_from_slice(&c.proprio);
            }
        }
        let t = |v: &[f32], shape: &[i64]| Tensor::from_slice(v).view(shape).to_device(self.device);
        (t(&pts, &[b as i64, n as i64, 3]), t(&rgb, &[b as i64, n as i64, 3]), t(&prop, &[b as i64, p as i64]))
    }

    fn bounds_tensor(&self, boxes: &[Bounds]) -> Tensor {
        let flat: Vec<f32> = boxes.iter().flatten().map(|&x| x as f32).collect();
        Tensor::from_slice(&flat).view([boxes.len() as i64, 6]).to_device(self.device)
    }

    /// Coarse to fine from level 0 with the online nets (and context rows `z` at level 0):
    /// each level voxelises its box, takes the voxel of highest translation Q (which
    /// `pick(level, row, greedy)` may replace: exploration), and puts the next level's box
    /// around it.
    fn descend(&self, pts: &Tensor, rgb: &Tensor, proprio: &Tensor, z: Option<&Tensor>, pick: &mut dyn FnMut(usize, usize, [i64; 3]) -> [i64; 3]) -> Descent {
        tch::no_grad(|| {
            let b = pts.size()[0] as usize;
            let mut voxels: Vec<Vec<[i64; 3]>> = vec![Vec::with_capacity(self.cfg.levels); b];
            let mut grids = Vec::with_capacity(self.cfg.levels);
            let mut rot_grip = Tensor::zeros([b as i64, 3 * BINS + 2], (Kind::Float, self.device));
            for (l, level) in self.levels.iter().enumerate() {
                let boxes: Vec<Bounds> = voxels.iter().map(|v| self.geo.boxes(v, &[])[l]).collect();
                let grid = voxelise(pts, rgb, &self.bounds_tensor(&boxes), self.cfg.grid);
                let q = level.online.forward(&grid, proprio, if l == 0 { z } else { None });
                let greedy = Vec::<i64>::try_from(argmax_voxel(&q.trans).to_device(Device::Cpu).view([-1])).unwrap_or_default();
                for (i, v) in voxels.iter_mut().enumerate() {
                    v.push(pick(l, i, [greedy[3 * i], greedy[3 * i + 1], greedy[3 * i + 2]]));
                }
                if let Some(rg) = q.rot_grip {
                    rot_grip = rg;
                }
                grids.push(grid);
            }
            Descent { grids, voxels, rot_grip }
        })
    }

    /// The agent's actions for `clouds`: greedy, with ε-greedy and Gaussian exploration drawn
    /// from `rng` when `eps > 0` or the noise is on.
    #[allow(clippy::too_many_arguments)]
    fn choose(&self, clouds: &[&Cloud], z: Option<&Tensor>, eps: f64, voxel_noise: f64, rotation_noise: f64, rng: &mut SeedStream) -> Vec<AgentAction> {
        let (pts, rgb, prop) = self.tensors(clouds);
        let g = self.cfg.grid;
        let mut pick = |_l: usize, _i: usize, greedy: [i64; 3]| {
            if eps > 0.0 && rng.uniform() < eps {
                [0; 3].map(|_| rng.below(g as usize) as i64)
            } else if voxel_noise > 0.0 {
                greedy.map(|v| (v + (voxel_noise * gauss(rng)).round() as i64).clamp(0, g - 1))
            } else {
                greedy
            }
        };
        let d = self.descend(&pts, &rgb, &prop, z, &mut pick);
        let rg = Vec::<i64>::try_from(argmax_rot_grip(&d.rot_grip).to_device(Device::Cpu).view([-1])).unwrap_or_default();
        d.voxels
            .into_iter()
            .enumerate()
            .map(|(i, voxels)| {
                let mut bins = [rg[4 * i], rg[4 * i + 1], rg[4 * i + 2]];
                let mut grip = rg[4 * i + 3];
                match self.fixed_rotation {
                    Some(fixed) => bins = fixed,
                    None => {
                        for b in &mut bins {
                            if eps > 0.0 && rng.uniform() < eps {
                                *b = rng.below(BINS as usize) as i64;
                            } else if rotation_noise > 0.0 {
                                *b = (*b + (rotation_noise * gauss(rng)).round() as i64).rem_euclid(BINS);
                            }
                        }
                    }
                }
                if eps > 0.0 && rng.uniform() < eps {
                    grip = rng.below(2) as i64;
                }
                AgentAction { voxels, rot_grip: [bins[0], bins[1], bins[2], grip] }
            })
            .collect()
    }

    /// The agent action behind env action row `row` and its boxes' shifts: the act's own
    /// (from `extras`) when it matches the env action, else the voxels of the action's
    /// position level by level and the bins of its orientation (actions changed after `act`;
    /// demonstrations, whose finer boxes are moved by crop augmentation drawn from `rng`).
    fn agent_action(&self, actions: &[ArrayRef<'_>], extras: &[f32], row: usize, rng: &mut SeedStream) -> Result<(AgentAction, Vec<[f32; 3]>), PluginError> {
        let EnvAction { position: pos, quat, gripper: grip } = self.act_map.read(actions, row)?;
        let k = self.extras_dim();
        if !extras.is_empty() {
            if let Some(a) = AgentAction::from_extras(&extras[row * k..(row + 1) * k], self.cfg.levels, self.cfg.grid) {
                let p = self.geo.position(&a.voxels, &[]);
                let same_rot = match (quat, self.fixed_rotation) {
                    (Some(q), _) => rotation::angle_between(q, rotation::bins_to_quat([a.rot_grip[0], a.rot_grip[1], a.rot_grip[2]])) < 1e-3,
                    (None, Some(f)) => a.rot_grip[..3] == f,
                    (None, None) => true,
                };
                if (0..3).all(|k| (p[k] - pos[k]).abs() < 1e-5) && a.rot_grip[3] == grip && same_rot {
                    return Ok((a, Vec::new()));
                }
            }
        }
        let bins = match (quat, self.fixed_rotation) {
            (_, Some(f)) => f,
            (Some(q), None) => rotation::quat_to_bins(q),
            (None, None) => fixed_rotation(),
        };
        let rot_grip = [bins[0], bins[1], bins[2], grip];
        let reach = (self.cfg.crop_augmentation * self.cfg.bounds_offset) as f32;
        if !extras.is_empty() || reach == 0.0 || self.cfg.levels == 1 {
            return Ok((AgentAction { voxels: self.geo.voxels_for(pos), rot_grip }, Vec::new()));
        }
        let raw: Vec<[f32; 3]> = (1..self.cfg.levels).map(|_| [0; 3].map(|_| (2.0 * rng.uniform() as f32 - 1.0) * reach)).collect();
        let (voxels, shifts) = self.geo.augmented(pos, &raw);
        Ok((AgentAction { voxels, rot_grip }, shifts))
    }

    /// Checks `plan`: tasks listed once, each with rows, and context rows where given.
    fn check_plan(&self, plan: &UpdatePlan) -> Result<(), PluginError> {
        if plan.tasks.is_empty() || plan.samples_per_task == 0 {
            return Err(invalid("update: an off-policy plan needs tasks and samples_per_task >= 1"));
        }
        for (i, t) in plan.tasks.iter().enumerate() {
            if plan.tasks[..i].contains(t) {
                return Err(invalid(format!("update: task {t} is listed twice in the plan")));
            }
            if self.replay.buffer(*t).is_none_or(|b| b.is_empty()) {
                return Err(invalid(format!("update: nothing recorded for task {t}")));
            }
        }
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
        Ok(())
    }

    /// One gradient step's batch as the plan says, drawn with `rng`: each sample's task index
    /// and slot, and the batch voxelised level by level: s in the boxes its action chose, s'
    /// in the boxes the online nets choose greedily there (what acting in s' would do). The
    /// context of a sample is its task's row of `z_rows` (`[tasks, Z]`) when given, else the
    /// row stored with it.
    fn draw(&self, plan: &UpdatePlan, rng: &mut SeedStream, z_rows: Option<&Tensor>) -> (Batch, Vec<(usize, usize)>) {
        let spt = plan.samples_per_task as usize;
        let none = Cloud { proprio: vec![0.0; self.obs_map.proprio_dim()], ..Cloud::default() };
        let (mut obs, mut next, mut picks) = (Vec::new(), Vec::new(), Vec::new());
        let (mut voxels, mut rot_grip, mut rewards, mut discounts, mut weights) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut stored_ctx, mut row_task, mut shifts) = (Vec::new(), Vec::new(), Vec::new());
        for (ti, &task) in plan.tasks.iter().enumerate() {
            let Some(buf) = self.replay.buffer(task) else { continue };
            for s in buf.sample(spt, self.cfg.importance_beta, || rng.uniform()) {
                obs.push(s.obs);
                next.push(s.next.unwrap_or(&none));
                voxels.push(s.action.voxels.clone());
                shifts.push(s.shifts.to_vec());
                rot_grip.extend_from_slice(&s.action.rot_grip);
                rewards.push(s.reward);
                discounts.push(if s.next.is_some() { self.cfg.learn.gamma as f32 } else { 0.0 });
                weights.push(s.weight);
                stored_ctx.extend_from_slice(s.context);
                row_task.push(ti as i64);
                picks.push((ti, s.slot));
            }
        }
        let rows = picks.len() as i64;
        let context = match z_rows {
            Some(z) => Some(z.index_select(0, &Tensor::from_slice(&row_task).to_device(self.device))),
            None if self.ctx_dim > 0 => Some(Tensor::from_slice(&stored_ctx).view([rows, self.ctx_dim as i64]).to_device(self.device)),
            None => None,
        };
        let (pts, rgb, proprio) = self.tensors(&obs);
        let (npts, nrgb, next_proprio) = self.tensors(&next);
        let next_grids = self.descend(&npts, &nrgb, &next_proprio, context.as_ref(), &mut |_, _, greedy| greedy).grids;
        let levels = next_grids
            .into_iter()
            .enumerate()
            .map(|(l, next_voxels)| {
                let boxes: Vec<Bounds> = voxels.iter().zip(&shifts).map(|(v, s)| self.geo.boxes(v, s)[l]).collect();
                let taken: Vec<i64> = voxels.iter().flat_map(|v| v[l]).collect();
                LevelBatch {
                    voxels: voxelise(&pts, &rgb, &self.bounds_tensor(&boxes), self.cfg.grid),
                    next_voxels,
                    action: Tensor::from_slice(&taken).view([rows, 3]).to_device(self.device),
                }
            })
            .collect();
        let f = |v: &[f32]| Tensor::from_slice(v).to_device(self.device);
        let batch = Batch {
            levels,
            proprio,
            next_proprio,
            rot_grip: Tensor::from_slice(&rot_grip).view([rows, 4]).to_device(self.device),
            rewards: f(&rewards),
            discounts: f(&discounts),
            weights: f(&weights),
            context,
        };
        (batch, picks)
    }

    fn write_net(w: &mut Writer, net: &QNet) {
        w.u32(net.params.len() as u32);
        for p in &net.params {
            w.str(&p.name);
            w.f32s(&to_vec_f32(&p.t));
        }
    }

    fn read_net(r: &mut Reader, net: &QNet) -> Result<Vec<Vec<f32>>, PluginError> {
        if r.u32()? as usize != net.params.len() {
            return Err(invalid("load: the checkpoint's network does not match this agent's"));
        }
        net.params
            .iter()
            .map(|p| {
                let name = r.str()?;
                if name != p.name {
                    return Err(invalid(format!("load: checkpoint parameter '{name}' where '{}' was expected", p.name)));
                }
                r.f32s(p.t.numel())
            })
            .collect()
    }

    /// `load`, or with `pretrained` the start of an adaptation, which also takes a checkpoint
    /// saved without its replay.
    fn restore(&mut self, bytes: &[u8], pretrained: bool) -> Result<(), PluginError> {
        let mut r = Reader::new(bytes, MAGIC, "c2farm")?;
        let version = r.u32()?;
        if version != VERSION {
            return Err(invalid(format!("load: checkpoint format {version}, this plugin reads {VERSION}")));
        }
        let arch = r.str()?;
        if arch != self.arch() {
            return Err(invalid(format!("load: the checkpoint is for another network ({arch}); this agent is {}", self.arch())));
        }
        let mut nets = Vec::with_capacity(self.levels.len());
        for l in &self.levels {
            let online = Self::read_net(&mut r, &l.online)?;
            let target = Self::read_net(&mut r, &l.target)?;
            let step = r.u64()?;
            let sizes: Vec<usize> = l.online.params.iter().map(|p| p.t.numel()).collect();
            let m = sizes.iter().map(|&s| r.f32s(s)).collect::<Result<Vec<_>, _>>()?;
            let v = sizes.iter().map(|&s| r.f32s(s)).collect::<Result<Vec<_>, _>>()?;
            nets.push((online, target, step, m, v));
        }
        let explore_rng = SeedStream::from_bytes("c2farm exploration rng", r.take(8)?)?;
        let sample_rng = SeedStream::from_bytes("c2farm replay rng", r.take(8)?)?;
        let augment_rng = SeedStream::from_bytes("c2farm augmentation rng", r.take(8)?)?;
        let (acted, updates) = (r.u64()?, r.u64()?);
        let mut replay = Replay::new(self.replay.capacity, self.n);
        if r.u8()? != 0 {
            replay.read(&mut r)?;
        } else if pretrained {
            log::info!("c2farm: this checkpoint holds no replay (save_replay = false): the replay starts empty");
        } else {
            return Err(invalid(
                "load: this checkpoint was saved without its replay (save_replay = false): it can start an adaptation \
                 but not continue its unit exactly",
            ));
        }
        r.finish()?;
        for (l, (online, target, step, m, v)) in self.levels.iter_mut().zip(nets) {
            let mut ts: Vec<Tensor> = l.online.params.iter().map(|p| p.t.shallow_clone()).collect();
            set_tensors(&mut ts, &online);
            let mut ts: Vec<Tensor> = l.target.params.iter().map(|p| p.t.shallow_clone()).collect();
            set_tensors(&mut ts, &target);
            set_tensors(&mut l.adam.m, &m);
            set_tensors(&mut l.adam.v, &v);
            l.adam.step = step;
        }
        self.explore_rng = explore_rng;
        self.sample_rng = sample_rng;
        self.augment_rng = augment_rng;
        self.acted = acted;
        self.updates = updates;
        self.replay = replay;
        Ok(())
    }
}

fn set_tensors(ts: &mut [Tensor], data: &[Vec<f32>]) {
    tch::no_grad(|| {
        for (t, d) in ts.iter_mut().zip(data) {
            t.copy_(&Tensor::from_slice(d).reshape(t.size()).to_device(t.device()));
        }
    });
}

impl Algo for C2fArmAgent {
    fn info(&self) -> AlgoInfo {
        let mut caps = Caps::OFF_POLICY | Caps::CONTINUOUS | Caps::DISCRETE | Caps::COMPOSITE_ACTIONS | Caps::MULTI_PART_OBS | Caps::USES_DEMOS;
        if self.ctx_dim > 0 {
            caps = caps | Caps::CONTEXT | Caps::CONTEXT_GRAD;
        }
        AlgoInfo {
            caps,
            state_dim: 0,
            extras_dim: self.extras_dim() as u32,
            param_count: self.levels.iter().map(|l| l.online.param_count() as u64).sum(),
            steps_per_update: self.cfg.steps_per_update,
            grad_steps: self.cfg.grad_steps,
            batch_size: self.cfg.batch_size,
            learning_starts: self.cfg.learning_starts,
        }
    }

    /// Coarse to fine, greedy in each level's Q-values; while training (not `deterministic`)
    /// with ε-greedy voxels, bins and gripper and Gaussian noise on the voxels and bins.
    fn act(&mut self, input: ActInput<'_>, mut out: ActOutput<'_>) -> Result<(), PluginError> {
        let n = self.n;
        self.obs_map.check("act: obs", &input.obs, n)?;
        check_len("act: action parts", out.actions.len(), self.act_map.parts)?;
        check_len("act: extras", out.extras.len(), n * self.extras_dim())?;
        check_len("act: context", input.context.len(), n * self.ctx_dim)?;
        if input.context.iter().any(|x| !x.is_finite()) {
            return Err(invalid("act: context contains NaN or infinity"));
        }
        let z = (self.ctx_dim > 0).then(|| Tensor::from_slice(input.context.as_slice()).view([n as i64, self.ctx_dim as i64]).to_device(self.device));
        let clouds: Vec<Cloud> = (0..n).map(|i| self.obs_map.cloud(&input.obs, i, &self.keep)).collect();
        let refs: Vec<&Cloud> = clouds.iter().collect();
        let (eps, vn, rn) = if input.deterministic { (0.0, 0.0, 0.0) } else { (self.cfg.epsilon(self.acted), self.cfg.voxel_noise, self.cfg.rotation_noise) };
        let mut rng = self.explore_rng;
        let chosen = self.choose(&refs, z.as_ref(), eps, vn, rn, &mut rng);
        let k = self.extras_dim();
        for (i, a) in chosen.iter().enumerate() {
            let bins = [a.rot_grip[0], a.rot_grip[1], a.rot_grip[2]];
            self.act_map.write(out.actions.as_mut_slice(), i, self.geo.position(&a.voxels, &[]), bins, a.rot_grip[3])?;
            a.to_extras(&mut out.extras[i * k..(i + 1) * k]);
        }
        if !input.deterministic {
            self.explore_rng = rng;
            self.acted += n as u64;
        }
        Ok(())
    }

    fn record(&mut self, b: Transitions<'_>) -> Result<(), PluginError> {
        let n = self.n;
        self.obs_map.check("record: obs", &b.obs, n)?;
        self.obs_map.check("record: next_obs", &b.next_obs, n)?;
        let has_final = !b.final_obs.is_empty();
        if has_final {
            self.obs_map.check("record: final_obs", &b.final_obs, n)?;
        }
        check_len("record: action parts", b.actions.len(), self.act_map.parts)?;
        check_len("record: rewards", b.rewards.len(), n)?;
        check_len("record: terminated", b.terminated.len(), n)?;
        check_len("record: truncated", b.truncated.len(), n)?;
        check_len("record: task", b.task.len(), n)?;
        if !b.extras.is_empty() {
            check_len("record: extras", b.extras.len(), n * self.extras_dim())?;
        }
        if !b.context.is_empty() {
            check_len("record: context", b.context.len(), n * self.ctx_dim)?;
        }
        if b.rewards.iter().chain(b.context.iter()).any(|x| !x.is_finite()) {
            return Err(invalid("record: rewards or context contain NaN or infinity"));
        }
        let mut rng = self.augment_rng;
        for i in 0..n {
            let (action, shifts) = self.agent_action(&b.actions, &b.extras, i, &mut rng)?;
            // Where to bootstrap from: nowhere after a terminal state; after a truncation the
            // true last observation, which demonstrations (no extras) give as `next_obs`.
            let next = if b.terminated[i] != 0 {
                None
            } else if b.truncated[i] != 0 {
                if has_final {
                    Some(self.obs_map.cloud(&b.final_obs, i, &self.keep))
                } else if b.extras.is_empty() {
                    Some(self.obs_map.cloud(&b.next_obs, i, &self.keep))
                } else {
                    None
                }
            } else {
                Some(self.obs_map.cloud(&b.next_obs, i, &self.keep))
            };
            let obs = self.obs_map.cloud(&b.obs, i, &self.keep);
            let context = if b.context.is_empty() { vec![0.0; self.ctx_dim] } else { b.context[i * self.ctx_dim..(i + 1) * self.ctx_dim].to_vec() };
            self.replay.record(Row { lane: i, task: b.task[i], obs, action, reward: b.rewards[i], next, context, shifts });
        }
        self.augment_rng = rng;
        Ok(())
    }

    fn update(&mut self, plan: &UpdatePlan) -> Result<UpdateStats, PluginError> {
        self.check_plan(plan)?;
        let mut scalars = Vec::new();
        let mut samples = 0u64;
        let mut context_grad = Vec::new();
        // grad_steps = 0 evaluates the first step's loss on a copy of the generator and commits nothing.
        for step in 0..plan.grad_steps.max(1) {
            let mut rng = self.sample_rng;
            let want_grad = step == 0 && plan.want_context_grad;
            let z = (!plan.context.is_empty()).then(|| {
                Tensor::from_slice(plan.context.as_slice()).view([plan.tasks.len() as i64, self.ctx_dim as i64]).to_device(self.device).set_requires_grad(want_grad)
            });
            let (batch, picks) = self.draw(plan, &mut rng, z.as_ref());
            if plan.grad_steps == 0 {
                let (loss, _) = learn::loss(&self.levels, &batch, &self.cfg.learn, self.fixed_rotation);
                if let (true, Some(z)) = (want_grad, &z) {
                    context_grad = to_vec_f32(&Tensor::run_backward(&[&loss], &[z], false, false)[0]);
                }
                scalars = vec![Scalar::new("loss", loss.double_value(&[]))];
                break;
            }
            let stats = learn::step(&mut self.levels, &batch, &self.cfg.learn, self.fixed_rotation);
            if let (true, Some(z)) = (want_grad, &z) {
                context_grad = to_vec_f32(&z.grad());
            }
            if !stats.loss.is_finite() {
                return Err(PluginError::failed(format!("c2farm: update: the loss is {}", stats.loss)));
            }
            self.sample_rng = rng;
            for (&(ti, slot), &p) in picks.iter().zip(&to_vec_f32(&stats.priorities)) {
                if let Some(b) = self.replay.buffer_mut(plan.tasks[ti]) {
                    b.set_priority(slot, p as f64);
                }
            }
            let deltas = to_vec_f32(&stats.deltas.mean_dim(0, false, Kind::Float));
            scalars = vec![Scalar::new("loss", stats.loss), Scalar::new("epsilon", self.cfg.epsilon(self.acted))];
            for (l, d) in deltas.iter().enumerate() {
                scalars.push(Scalar::new(&format!("bellman_error_{l}"), *d as f64));
            }
            self.updates += 1;
            samples += picks.len() as u64;
        }
        Ok(UpdateStats { scalars: scalars.into(), context_grad: context_grad.into(), grad_steps: plan.grad_steps, samples })
    }

    fn params(&self) -> Result<Vec<f32>, PluginError> {
        Ok(self.levels.iter().flat_map(|l| flat_params(&l.online.params)).collect())
    }

    fn set_params(&mut self, params: &[f32]) -> Result<(), PluginError> {
        let total: usize = self.levels.iter().map(|l| param_count(&l.online.params)).sum();
        check_len("set_params", params.len(), total)?;
        if params.iter().any(|x| !x.is_finite()) {
            return Err(invalid("set_params: parameters contain NaN or infinity"));
        }
        let mut at = 0;
        for l in &mut self.levels {
            let k = param_count(&l.online.params);
            set_flat_params(&mut l.online.params, &params[at..at + k]);
            at += k;
        }
        Ok(())
    }

    fn save(&self) -> Result<Vec<u8>, PluginError> {
        let mut w = Writer::with_magic(MAGIC);
        w.u32(VERSION);
        w.str(&self.arch());
        for l in &self.levels {
            Self::write_net(&mut w, &l.online);
            Self::write_net(&mut w, &l.target);
            w.u64(l.adam.step);
            for m in l.adam.m.iter().chain(&l.adam.v) {
                w.f32s(&to_vec_f32(m));
            }
        }
        w.bytes(&self.explore_rng.to_bytes());
        w.bytes(&self.sample_rng.to_bytes());
        w.bytes(&self.augment_rng.to_bytes());
        w.u64(self.acted);
        w.u64(self.updates);
        w.u8(self.cfg.save_replay as u8);
        if self.cfg.save_replay {
            self.replay.write(&mut w);
        }
        Ok(w.0)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.restore(bytes, false)
    }

    /// Everything `load` restores, then the ε schedule from its start unless
    /// `adapt_exploration = "continue"`. A checkpoint saved without its replay starts the
    /// adaptation with an empty one.
    fn load_pretrained(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.restore(bytes, true)?;
        if self.cfg.adapt_exploration == AdaptExploration::Restart {
            self.acted = 0;
        }
        Ok(())
    }

    fn reset_heads(&mut self, seed: u64) -> Result<(), PluginError> {
        for (i, l) in self.levels.iter_mut().enumerate() {
            l.online.reset_heads(derive(seed, &format!("level {i}"))).map_err(invalid)?;
            let Level { online, target, adam } = l;
            target.copy_from(online);
            // Moments accumulated for the old heads would mis-scale the new heads' first steps.
            adam.reset_moments(&online.params, |p| p.head);
        }
        Ok(())
    }

    fn clear(&mut self) -> Result<(), PluginError> {
        self.replay.clear();
        Ok(())
    }
}
