//! C2F-ARM's learning step: every level's Q-attention network on one batch.
//!
//! For each level `l` (with its own online net θ_l, target net θ⁻_l and optimiser), a
//! transition (s, a, r, s') where `a` holds the level's voxel `a_l` and, at the last level,
//! the rotation bins and the gripper state:
//!
//! ```text
//! a'_h   = argmax Q_h(s'; θ_l)                  each head h of the level, online net (double Q)
//! Q'_l   = mean_h Q_h(s', a'_h; θ⁻_l)            heads: translation; at the last level also
//!                                               rotation x, y, z and gripper
//! y_l    = max(0, r + γ_d · Q'_l)                γ_d = γ, or 0 where s is terminal
//! δ_l    = mean_h SmoothL1(Q_h(s, a_h; θ_l), y_l)
//! reg_l  = λ_trans · mean|Q_trans(s)| + λ_rot · mean|Q_rot_grip(s)|       (L1 Q regularisation)
//! L      = Σ_l mean_i w_i (δ_l,i + reg_l,i)      w: prioritised-replay importance weights
//! ```
//!
//! then, per parameter, gradient clipped by value (0.01), L2 weight decay (1e-6) added as
//! `torch.optim.Adam(weight_decay=...)` does, one Adam step (5e-4), and the target nets move
//! toward the online ones by τ = 0.0025. This is stepjam/ARM's `QAttentionAgent.update`
//! (HEAD), one level after another; the levels share no parameters, so one backward pass
//! over the summed losses gives each level exactly the gradient of its own loss. The new
//! priority of a transition is ARM's: `(Σ_l sqrt(δ_l + 1e-10) / max_batch sqrt(δ_l + 1e-10))^0.7`.
//!
//! [`TargetMean::AcrossLevels`] instead averages the chosen next-state Q-values of every
//! level and head into one target shared by all levels (the reading "mean of the next state's
//! chosen Q-values" can also have); `PerLevel`, the default, is what ARM's code does.
//!
//! With context rows z (PEARL), level 0's online and target nets take z as an input in s and
//! s' alike; where z requires grad, L is differentiable in it, through the target too (its
//! parameters and argmax held fixed), so dL/dz is the derivative of the reported loss.
//!
//! Rewards enter as given (ARM scales its RLBench reward of 100 by 0.01 and zeroes negative
//! ones: a sparse success of 1 here). Where the env has no rotation control (Meta-World),
//! `fixed_rotation` makes the next state's rotation choice the constant bins the agent always
//! sends, rather than the argmax of a head whose other bins are never trained.

use metarl_tch_common::adam::Adam;
use tch::{Kind, Reduction, Tensor};

use crate::net::{QNet, QOut};
use crate::rotation::BINS;

/// How the next-state Q-values form the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetMean {
    /// Each level's target from its own heads (stepjam/ARM).
    PerLevel,
    /// One target for all levels, from every level's heads.
    AcrossLevels,
}

/// Learning hyper-parameters; the defaults are C2F-ARM's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearnConfig {
    /// Discount γ.
    pub gamma: f64,
    /// Adam step size.
    pub lr: f64,
    /// Adam's ε.
    pub adam_eps: f64,
    /// L2 weight decay, added to the gradient as PyTorch's Adam does.
    pub weight_decay: f64,
    /// Gradients are clipped to ±this, per element (0: no clipping).
    pub grad_clip: f64,
    /// Soft target update rate τ.
    pub tau: f64,
    /// λ of the L1 regularisation of the translation Q-values.
    pub lambda_trans_qreg: f64,
    /// λ of the L1 regularisation of the rotation and gripper Q-values.
    pub lambda_rot_qreg: f64,
    /// Exponent α of the new priorities.
    pub priority_alpha: f64,
    /// Per-level or shared targets.
    pub target: TargetMean,
}

impl Default for LearnConfig {
    fn default() -> Self {
        LearnConfig {
            gamma: 0.99,
            lr: 5e-4,
            adam_eps: 1e-8,
            weight_decay: 1e-6,
            grad_clip: 0.01,
            tau: 0.0025,
            lambda_trans_qreg: 1.0,
            lambda_rot_qreg: 1.0,
            priority_alpha: 0.7,
            target: TargetMean::PerLevel,
        }
    }
}

/// One level's part of a batch.
pub struct LevelBatch {
    /// `f32 [B, 10, G, G, G]`: the level's voxel grid of s (in the box the transition's
    /// coarser level chose).
    pub voxels: Tensor,
    /// The same for s'.
    pub next_voxels: Tensor,
    /// `i64 [B, 3]`: the voxel a_l taken at this level.
    pub action: Tensor,
}

/// One gradient step's inputs, on the networks' device.
pub struct Batch {
    /// One entry per level, coarsest first.
    pub levels: Vec<LevelBatch>,
    /// `f32 [B, P]` proprioception of s.
    pub proprio: Tensor,
    /// `f32 [B, P]` proprioception of s'.
    pub next_proprio: Tensor,
    /// `i64 [B, 4]`: rotation bins x, y, z and the gripper state taken.
    pub rot_grip: Tensor,
    /// `f32 [B]` rewards.
    pub rewards: Tensor,
    /// `f32 [B]` bootstrap discounts: γ, or 0 where s' is terminal.
    pub discounts: Tensor,
    /// `f32 [B]` importance-sampling weights.
    pub weights: Tensor,
    /// `f32 [B, Z]` context rows (PEARL's z) for level 0, the same for s and s'; `None`
    /// without context. Where they require grad, the loss is differentiable in them, the
    /// target included (its argmax held fixed).
    pub context: Option<Tensor>,
}

/// A level's online and target networks and their optimiser.
pub struct Level {
    /// Online net θ_l.
    pub online: QNet,
    /// Target net θ⁻_l.
    pub target: QNet,
    /// Adam over `online`'s parameters.
    pub adam: Adam,
}

impl Level {
    /// A level whose target starts as a copy of `online`.
    pub fn new(online: QNet, target: QNet, cfg: &LearnConfig) -> Level {
        let mut target = target;
        // The target net is never differentiated in its parameters (only, for PEARL, in z).
        for p in &mut target.params {
            p.t = p.t.detach().set_requires_grad(false);
        }
        target.copy_from(&online);
        let adam = Adam::new(&online.params, cfg.lr, cfg.adam_eps);
        Level { online, target, adam }
    }
}

/// What one step reports.
pub struct StepStats {
    /// The loss L before the step.
    pub loss: f64,
    /// `f32 [B, levels]`: each level's Bellman error δ_l (detached).
    pub deltas: Tensor,
    /// `f32 [B]`: the transitions' new priorities.
    pub priorities: Tensor,
}

/// `[B, 3]` index of each sample's highest voxel in `[B, 1, G, G, G]`.
pub fn argmax_voxel(q: &Tensor) -> Tensor {
    let g = q.size()[2];
    let flat = q.flatten(1, -1).argmax(1, false);
    Tensor::stack(&[flat.divide_scalar_mode(g * g, "floor"), flat.divide_scalar_mode(g, "floor").remainder(g), flat.remainder(g)], 1)
}

/// `[B]` values of `[B, 1, G, G, G]` at `[B, 3]` voxels.
pub fn at_voxel(q: &Tensor, index: &Tensor) -> Tensor {
    let g = q.size()[2];
    let flat = index.select(1, 0) * (g * g) + index.select(1, 1) * g + index.select(1, 2);
    q.flatten(1, -1).gather(1, &flat.unsqueeze(1), false).squeeze_dim(1)
}

/// `[B, 4]` greedy rotation bins and gripper state of `[B, 3·72 + 2]` Q-values.
pub fn argmax_rot_grip(q: &Tensor) -> Tensor {
    let b = q.size()[0];
    let rot = q.narrow(1, 0, 3 * BINS).view([b, 3, BINS]).argmax(2, false);
    let grip = q.narrow(1, 3 * BINS, 2).argmax(1, true);
    Tensor::cat(&[rot, grip], 1)
}

/// `[B, 4]` values of `[B, 3·72 + 2]` Q-values at `[B, 4]` (3 bins, gripper) choices.
pub fn at_rot_grip(q: &Tensor, choice: &Tensor) -> Tensor {
    let b = q.size()[0];
    let rot = q.narrow(1, 0, 3 * BINS).view([b, 3, BINS]).gather(2, &choice.narrow(1, 0, 3).unsqueeze(2), false).squeeze_dim(2);
    let grip = q.narrow(1, 3 * BINS, 2).gather(1, &choice.narrow(1, 3, 1), false);
    Tensor::cat(&[rot, grip], 1)
}

/// `y = max(0, r + γ_d · mean_h Q'_h)` from `[B, H]` chosen next-state values.
pub fn bellman_target(rewards: &Tensor, discounts: &Tensor, chosen_next: &Tensor) -> Tensor {
    (rewards + discounts * chosen_next.mean_dim(1, false, Kind::Float)).clamp_min(0.0)
}

/// `[B, H]` target-net values at the online net's greedy choices in s' for one level (with
/// context rows `z` at level 0). Without gradient history unless `z` requires grad: then the
/// values are differentiable in `z` at the fixed choices.
fn chosen_next_values(level: &Level, voxels: &Tensor, proprio: &Tensor, z: Option<&Tensor>, fixed_rotation: Option<[i64; 3]>) -> Tensor {
    let (trans_choice, rot_grip_choice) = tch::no_grad(|| {
        let online = level.online.forward(voxels, proprio, z);
        let rot_grip = online.rot_grip.map(|on| {
            let choice = argmax_rot_grip(&on);
            match fixed_rotation {
                Some(bins) => {
                    let fixed = Tensor::from_slice(&bins).to_device(choice.device()).unsqueeze(0).expand([choice.size()[0], 3], false);
                    Tensor::cat(&[fixed, choice.narrow(1, 3, 1)], 1)
                }
                None => choice,
            }
        });
        (argmax_voxel(&online.trans), rot_grip)
    });
    let values = || {
        let target = level.target.forward(voxels, proprio, z);
        let trans = at_voxel(&target.trans, &trans_choice).unsqueeze(1);
        match (&rot_grip_choice, target.rot_grip) {
            (Some(choice), Some(tg)) => Tensor::cat(&[trans, at_rot_grip(&tg, choice)], 1),
            _ => trans,
        }
    };
    if z.is_some_and(Tensor::requires_grad) {
        values()
    } else {
        tch::no_grad(values)
    }
}

/// The loss `L` of the module docs and each level's per-sample `δ_l` (detached, `[B, levels]`).
pub fn loss(levels: &[Level], b: &Batch, cfg: &LearnConfig, fixed_rotation: Option<[i64; 3]>) -> (Tensor, Tensor) {
    // The context enters level 0 only (the author's fork).
    let z = |level: usize| if level == 0 { b.context.as_ref() } else { None };
    // Next state: each level's chosen values under the target nets.
    let chosen: Vec<Tensor> =
        levels.iter().zip(&b.levels).enumerate().map(|(i, (l, lb))| chosen_next_values(l, &lb.next_voxels, &b.next_proprio, z(i), fixed_rotation)).collect();
    let targets: Vec<Tensor> = match cfg.target {
        TargetMean::PerLevel => chosen.iter().map(|c| bellman_target(&b.rewards, &b.discounts, c)).collect(),
        TargetMean::AcrossLevels => {
            let y = bellman_target(&b.rewards, &b.discounts, &Tensor::cat(&chosen, 1));
            chosen.iter().map(|_| y.shallow_clone()).collect()
        }
    };

    let mut total = Tensor::zeros([], (Kind::Float, b.rewards.device()));
    let mut deltas = Vec::with_capacity(levels.len());
    for (i, ((level, lb), y)) in levels.iter().zip(&b.levels).zip(&targets).enumerate() {
        let QOut { trans, rot_grip } = level.online.forward(&lb.voxels, &b.proprio, z(i));
        let mut taken = vec![at_voxel(&trans, &lb.action).unsqueeze(1)];
        let mut reg = trans.abs().flatten(1, -1).mean_dim(1, false, Kind::Float) * cfg.lambda_trans_qreg;
        if let Some(rg) = &rot_grip {
            taken.push(at_rot_grip(rg, &b.rot_grip));
            reg += rg.abs().mean_dim(1, false, Kind::Float) * cfg.lambda_rot_qreg;
        }
        let taken = Tensor::cat(&taken, 1);
        let y = y.unsqueeze(1).expand_as(&taken);
        let delta = taken.smooth_l1_loss(&y, Reduction::None, 1.0).mean_dim(1, false, Kind::Float);
        total += (&b.weights * (&delta + reg)).mean(Kind::Float);
        deltas.push(delta.detach());
    }
    (total, Tensor::stack(&deltas, 1))
}

/// ARM's new priorities from `[B, levels]` Bellman errors.
pub fn priorities(deltas: &Tensor, alpha: f64) -> Tensor {
    let p = (deltas + 1e-10).sqrt();
    let p = &p / p.amax([0], true);
    p.sum_dim_intlist(1, false, Kind::Float).pow_tensor_scalar(alpha)
}

/// One gradient step on every level, then the soft target updates.
pub fn step(levels: &mut [Level], b: &Batch, cfg: &LearnConfig, fixed_rotation: Option<[i64; 3]>) -> StepStats {
    for l in levels.iter_mut() {
        l.online.zero_grad();
    }
    let (total, deltas) = loss(levels, b, cfg, fixed_rotation);
    total.backward();
    for l in levels.iter_mut() {
        tch::no_grad(|| {
            for p in &l.online.params {
                let mut g = p.t.grad();
                if !g.defined() {
                    continue;
                }
                if cfg.grad_clip > 0.0 {
                    let _ = g.clamp_(-cfg.grad_clip, cfg.grad_clip);
                }
                if cfg.weight_decay > 0.0 {
                    let _ = g.g_add_(&(&p.t * cfg.weight_decay));
                }
            }
        });
        l.adam.step(&mut l.online.params, 1.0);
        let Level { online, target, .. } = l;
        target.soft_update_from(online, cfg.tau);
    }
    let priorities = priorities(&deltas, cfg.priority_alpha);
    StepStats { loss: total.double_value(&[]), deltas, priorities }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{NetSize, Shape};
    use crate::voxel::voxelise;
    use metarl_tch_common::to_vec_f32;
    use tch::Device;

    fn cpu() -> (Kind, Device) {
        (Kind::Float, Device::Cpu)
    }

    #[test]
    fn greedy_choices_and_their_values_index_the_same_voxel() {
        let g = 4;
        let q = Tensor::zeros([2, 1, g, g, g], cpu());
        let _ = q.get(0).get(0).get(1).get(2).get(3).fill_(5.0);
        let _ = q.get(1).get(0).get(3).get(0).get(1).fill_(6.0);
        let idx = argmax_voxel(&q);
        assert_eq!(Vec::<i64>::try_from(idx.view([-1])).unwrap(), [1, 2, 3, 3, 0, 1]);
        assert_eq!(to_vec_f32(&at_voxel(&q, &idx)), [5.0, 6.0]);

        let rg = Tensor::zeros([1, 3 * BINS + 2], cpu());
        for (at, v) in [(10, 1.0), (BINS + 71, 2.0), (2 * BINS, 3.0), (3 * BINS + 1, 4.0)] {
            let _ = rg.get(0).get(at).fill_(v);
        }
        let choice = argmax_rot_grip(&rg);
        assert_eq!(Vec::<i64>::try_from(choice.view([-1])).unwrap(), [10, 71, 0, 1]);
        assert_eq!(to_vec_f32(&at_rot_grip(&rg, &choice)), [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn the_target_is_the_clamped_discounted_mean_of_the_chosen_values() {
        let r = Tensor::from_slice(&[0.0f32, 1.0, 0.0]);
        let d = Tensor::from_slice(&[0.99f32, 0.0, 0.5]);
        let chosen = Tensor::from_slice(&[0.2f32, 0.4, 9.0, 9.0, -0.5, -0.1]).view([3, 2]);
        let y = to_vec_f32(&bellman_target(&r, &d, &chosen));
        // 0.99 · 0.3; terminal: the reward alone; a negative value clamps to 0.
        for (got, want) in y.iter().zip([0.297, 1.0, 0.0]) {
            assert!((got - want).abs() < 1e-6, "{y:?}");
        }
        // Priorities: each level's sqrt(δ) over its batch maximum, summed, to the power α.
        let deltas = Tensor::from_slice(&[4.0f32, 1.0, 1.0, 1.0]).view([2, 2]);
        let p = to_vec_f32(&priorities(&deltas, 0.5));
        assert!((p[0] - 2f32.sqrt()).abs() < 1e-5 && (p[1] - 1.5f32.sqrt()).abs() < 1e-5, "{p:?}");
    }

    /// Two levels of 8³ with tiny nets and a fixed batch of random scenes.
    fn setup(cfg: &LearnConfig) -> (Vec<Level>, Batch) {
        tch::set_num_threads(1);
        tch::manual_seed(5);
        let (b, g, n, proprio) = (6, 8, 400, 5);
        let size = NetSize { kernels: 8, latent: 8, dense: 32, zero_pad: false };
        let levels = (0..2)
            .map(|l| {
                let shape = Shape { grid: g, proprio, context: 0, rot_grip: l == 1 };
                let net = |seed| QNet::new(shape, size, seed, Device::Cpu).unwrap();
                Level::new(net(10 + l as u64), net(20 + l as u64), cfg)
            })
            .collect();
        let bounds = Tensor::from_slice(&[0f32, 0., 0., 1., 1., 1.]).view([1, 6]).expand([b, 6], false);
        let scene = || voxelise(&Tensor::rand([b, n, 3], cpu()), &(Tensor::rand([b, n, 3], cpu()) * 2.0 - 1.0), &bounds, g);
        let level = || LevelBatch { voxels: scene(), next_voxels: scene(), action: Tensor::randint(g, [b, 3], (Kind::Int64, Device::Cpu)) };
        let batch = Batch {
            levels: vec![level(), level()],
            proprio: Tensor::rand([b, proprio], cpu()),
            next_proprio: Tensor::rand([b, proprio], cpu()),
            rot_grip: Tensor::cat(&[Tensor::randint(BINS, [b, 3], (Kind::Int64, Device::Cpu)), Tensor::randint(2, [b, 1], (Kind::Int64, Device::Cpu))], 1),
            rewards: Tensor::from_slice(&[1f32, 0., 0., 1., 0., 0.]),
            discounts: Tensor::from_slice(&[0f32, 0.99, 0.99, 0., 0.99, 0.99]),
            weights: Tensor::ones([b], cpu()),
            context: None,
        };
        (levels, batch)
    }

    #[test]
    fn the_loss_falls_on_a_fixed_batch_with_the_paper_settings() {
        let cfg = LearnConfig::default();
        let (mut levels, batch) = setup(&cfg);
        let first = step(&mut levels, &batch, &cfg, None);
        assert_eq!(first.deltas.size(), [6, 2]);
        assert_eq!(first.priorities.size(), [6]);
        let mut last = first.loss;
        for _ in 0..40 {
            last = step(&mut levels, &batch, &cfg, None).loss;
        }
        let (after, deltas) = loss(&levels, &batch, &cfg, None);
        let after = after.double_value(&[]);
        let bellman = |d: &Tensor| d.mean(Kind::Float).double_value(&[]);
        eprintln!("loss {:.4} -> {last:.4} -> {after:.4}; mean δ {:.4} -> {:.4}", first.loss, bellman(&first.deltas), bellman(&deltas));
        assert!(first.loss.is_finite() && after < 0.8 * first.loss, "loss {} -> {after}", first.loss);
        // Not only the regulariser: the Bellman errors fall too.
        assert!(bellman(&deltas) < 0.8 * bellman(&first.deltas));
    }

    #[test]
    fn the_target_nets_trail_the_online_nets_by_tau() {
        let cfg = LearnConfig::default();
        let (mut levels, batch) = setup(&cfg);
        let before: Vec<Vec<f32>> = levels.iter().map(|l| metarl_tch_common::flat_params(&l.target.params)).collect();
        step(&mut levels, &batch, &cfg, Some([36, 36, 36]));
        for (l, old) in levels.iter().zip(before) {
            let online = metarl_tch_common::flat_params(&l.online.params);
            let target = metarl_tch_common::flat_params(&l.target.params);
            // The target started equal to the online net before the step: θ⁻ = (1 - τ) θ_old + τ θ_new.
            let moved = online.iter().zip(&old).filter(|(n, o)| n != o).count();
            assert!(moved > online.len() / 2, "the online net moved");
            for ((t, o), n) in target.iter().zip(&old).zip(&online) {
                let want = (1.0 - cfg.tau) * *o as f64 + cfg.tau * *n as f64;
                assert!((*t as f64 - want).abs() < 1e-6, "{t} vs {want}");
            }
        }
    }

    #[test]
    fn a_shared_target_and_a_fixed_rotation_change_the_loss_but_still_learn() {
        let base = LearnConfig::default();
        let shared = LearnConfig { target: TargetMean::AcrossLevels, ..base };
        let (levels, batch) = setup(&base);
        let per_level = loss(&levels, &batch, &base, None).0.double_value(&[]);
        let across = loss(&levels, &batch, &shared, None).0.double_value(&[]);
        let fixed = loss(&levels, &batch, &base, Some([0, 0, 0])).0.double_value(&[]);
        assert!(per_level != across && per_level != fixed, "{per_level} {across} {fixed}");
        let (mut levels, _) = setup(&shared);
        let first = step(&mut levels, &batch, &shared, Some([36, 36, 36])).loss;
        for _ in 0..40 {
            step(&mut levels, &batch, &shared, Some([36, 36, 36]));
        }
        let after = loss(&levels, &batch, &shared, Some([36, 36, 36])).0.double_value(&[]);
        assert!(after < 0.8 * first, "{first} -> {after}");
    }
}
