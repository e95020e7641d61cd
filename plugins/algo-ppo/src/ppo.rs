//! The PPO update, as in Schulman et al. 2017 with the details of the Procgen paper
//! (Cobbe et al. 2020) and CleanRL's `ppo_procgen.py`. Read top to bottom:
//!
//! 1. bootstrap `V(s_T)` (already done by `record` when the rollout filled up) and compute
//!    GAE advantages and returns ([`gae`]);
//! 2. for each epoch, for each shuffled minibatch: evaluate the current policy, form the
//!    clipped-surrogate objective ([`ppo_loss`]), back-propagate, clip the global gradient
//!    norm and take an Adam step;
//! 3. report the diagnostics.
//!
//! Episode ends: `terminated` is terminal. `truncated` (time limit) is treated as terminal too:
//! with auto-resetting envs `next_obs` is already the next episode's first observation, so the
//! value needed to bootstrap through the cut is not available. This is the usual approximation
//! (CleanRL does the same); it slightly under-values states near the time limit.

use std::borrow::Cow;

use metarl_plugin_api::algo::{UpdatePlan, UpdateStats};
use metarl_plugin_api::types::{PluginError, Scalar};
use tch::{Device, Kind, Tensor};

use metarl_tch_common::adam::Adam;
use crate::autocast;
use crate::batch::{self, Evaluated, UpdateData};
use crate::config::{Config, Precision};
use crate::net::Net;
use crate::rng::Rng;
use crate::rollout::Rollout;

/// Generalised advantage estimation (Schulman et al. 2016), over `[T, n]` time-major rows:
///
/// ```text
/// delta_t = r_t + gamma (1 - d_t) V(s_{t+1}) - V(s_t)
/// A_t     = delta_t + gamma lambda (1 - d_t) A_{t+1}
/// R_t     = A_t + V(s_t)
/// ```
///
/// where `d_t` = 1 if the episode ended at step `t`, and `V(s_T)` is `next_values`.
pub fn gae(
    rewards: &[f32],
    values: &[f32],
    dones: &[u8],
    next_values: &[f32],
    n: usize,
    gamma: f64,
    lambda: f64,
) -> (Vec<f32>, Vec<f32>) {
    let steps = rewards.len() / n;
    let mut advantages = vec![0f32; rewards.len()];
    for (e, &bootstrap) in next_values.iter().enumerate().take(n) {
        let mut next_adv = 0f64;
        let mut next_value = bootstrap as f64;
        for t in (0..steps).rev() {
            let i = t * n + e;
            let not_done = 1.0 - dones[i] as f64;
            let delta = rewards[i] as f64 + gamma * not_done * next_value - values[i] as f64;
            next_adv = delta + gamma * lambda * not_done * next_adv;
            advantages[i] = next_adv as f32;
            next_value = values[i] as f64;
        }
    }
    let returns = advantages.iter().zip(values).map(|(a, v)| a + v).collect();
    (advantages, returns)
}

/// The PPO objective on one minibatch and its diagnostics.
pub struct Loss {
    /// `L = L_clip - c_ent * H + c_vf * L_V` (to minimise).
    pub total: Tensor,
    /// Clipped surrogate policy loss.
    pub policy: f64,
    /// Value loss.
    pub value: f64,
    /// Mean policy entropy.
    pub entropy: f64,
    /// `E[(r - 1) - log r]`, the low-variance KL(old || new) estimator.
    pub approx_kl: f64,
    /// Fraction of rows whose ratio was clipped.
    pub clip_frac: f64,
}

/// The minibatch's rollout targets, gathered to the rows [`batch::evaluate`] produced.
pub struct Targets {
    /// Actions taken.
    pub actions: Tensor,
    /// `log pi_old(a|s)`.
    pub old_logprobs: Tensor,
    /// `V_old(s)`.
    pub old_values: Tensor,
    /// GAE advantages.
    pub advantages: Tensor,
    /// Returns `R = A + V_old`.
    pub returns: Tensor,
    /// 1 for rows that count (tasks being learned), 0 otherwise.
    pub weights: Tensor,
}

/// Clipped-surrogate PPO loss with clipped value loss and entropy bonus:
///
/// ```text
/// ratio  = pi(a|s) / pi_old(a|s)
/// L_clip = E[ max(-A ratio, -A clip(ratio, 1 - eps, 1 + eps)) ]
/// L_V    = 1/2 E[ max((V - R)², (V_old + clip(V - V_old, -eps, eps) - R)²) ]
/// L      = L_clip - c_ent E[H(pi(.|s))] + c_vf L_V
/// ```
///
/// with `A` normalised per minibatch. Expectations are weighted means over `weights`.
pub fn ppo_loss(cfg: &Config, out: &Evaluated, tg: &Targets) -> Loss {
    let w_sum = tg.weights.sum(Kind::Float).clamp_min(1.0);
    let mean = |x: &Tensor| (x * &tg.weights).sum(Kind::Float) / &w_sum;

    let logp_all = out.logits.log_softmax(-1, Kind::Float);
    let new_logprob = logp_all.gather(1, &tg.actions.unsqueeze(1), false).squeeze_dim(1);
    let entropy = -(logp_all.exp() * &logp_all).sum_dim_intlist(-1, false, Kind::Float);

    let log_ratio = &new_logprob - &tg.old_logprobs;
    let ratio = log_ratio.exp();

    let mut adv = tg.advantages.shallow_clone();
    if cfg.norm_adv {
        let mu = mean(&adv);
        let var = ((&adv - &mu).square() * &tg.weights).sum(Kind::Float) / (&w_sum - 1.0).clamp_min(1.0);
        adv = (&adv - &mu) / (var.sqrt() + 1e-8);
    }
    let eps = cfg.clip_coef;
    let policy_loss = mean(&(-&adv * &ratio).maximum(&(-&adv * ratio.clamp(1.0 - eps, 1.0 + eps))));

    let v_unclipped = (&out.values - &tg.returns).square();
    let value_loss: Tensor = if cfg.clip_vloss {
        let v_clipped = &tg.old_values + (&out.values - &tg.old_values).clamp(-eps, eps);
        0.5 * mean(&v_unclipped.maximum(&(v_clipped - &tg.returns).square()))
    } else {
        0.5 * mean(&v_unclipped)
    };
    let entropy = mean(&entropy);

    let total = &policy_loss - cfg.ent_coef * &entropy + cfg.vf_coef * &value_loss;

    let (approx_kl, clip_frac) = tch::no_grad(|| {
        let kl = mean(&((&ratio - 1.0) - &log_ratio));
        let clipped = mean(&(&ratio - 1.0).abs().gt(eps).to_kind(Kind::Float));
        (kl.double_value(&[]), clipped.double_value(&[]))
    });
    Loss {
        total,
        policy: policy_loss.double_value(&[]),
        value: value_loss.double_value(&[]),
        entropy: entropy.double_value(&[]),
        approx_kl,
        clip_frac,
    }
}

/// Scale that brings the global gradient norm to at most `max_norm`
/// (`torch.nn.utils.clip_grad_norm_`), and the norm before clipping.
fn clip_grad_norm(net: &Net, max_norm: f64) -> (f64, f64) {
    let norm = tch::no_grad(|| {
        let squares: Vec<Tensor> =
            net.params.iter().map(|p| p.t.grad()).filter(|g| g.defined()).map(|g| g.square().sum(Kind::Float)).collect();
        if squares.is_empty() {
            0.0
        } else {
            Tensor::stack(&squares, 0).sum(Kind::Float).sqrt().double_value(&[])
        }
    });
    ((max_norm / (norm + 1e-6)).min(1.0), norm)
}

/// `1 - Var[R - V] / Var[R]` over the selected rows (0 when the returns are constant).
fn explained_variance(values: &[f32], returns: &[f32], selected: &[bool]) -> f64 {
    let pairs: Vec<(f64, f64)> =
        values.iter().zip(returns).zip(selected).filter(|(_, &s)| s).map(|((&v, &r), _)| (v as f64, r as f64)).collect();
    let n = pairs.len() as f64;
    let var = |xs: &mut dyn Iterator<Item = f64>| {
        let xs: Vec<f64> = xs.collect();
        let mu = xs.iter().sum::<f64>() / n;
        xs.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / n
    };
    let var_r = var(&mut pairs.iter().map(|p| p.1));
    if var_r == 0.0 {
        return 0.0;
    }
    1.0 - var(&mut pairs.iter().map(|p| p.1 - p.0)) / var_r
}

/// Everything the update mutates or reads.
pub struct Learner<'a> {
    /// Hyper-parameters.
    pub cfg: &'a Config,
    /// The actor-critic.
    pub net: &'a mut Net,
    /// Its optimizer.
    pub adam: &'a mut Adam,
    /// Minibatch shuffling.
    pub rng: &'a mut Rng,
    /// Where the network lives.
    pub device: Device,
}

/// One PPO update on `rollout` (which the caller clears afterwards): `plan.grad_steps`
/// epochs. With 0 epochs, the losses of the first minibatch are computed and nothing changes
/// (the shuffling generator included).
pub fn update(l: Learner<'_>, rollout: &Rollout, plan: &UpdatePlan) -> Result<UpdateStats, PluginError> {
    let Learner { cfg, net, adam, rng, device } = l;
    let bf16 = cfg.precision == Precision::Bf16;
    let selected = vec![true; rollout.rows()];

    // 1. Advantages and returns.
    let next_values = match &rollout.next_values {
        Some(v) => Cow::Borrowed(v.as_slice()),
        None => Cow::Owned(batch::bootstrap_values(net, rollout, bf16, device)?),
    };
    let (advantages, returns) =
        gae(&rollout.rewards, &rollout.values, &rollout.dones, &next_values, rollout.n, cfg.gamma, cfg.gae_lambda);

    // 2. Epochs of minibatch gradient steps.
    let data = UpdateData::new(net, rollout, &advantages, &returns, &selected, device);
    let evaluate_only = plan.grad_steps == 0;
    let mut probe_rng = rng.clone();
    let epochs = if evaluate_only { 1 } else { plan.grad_steps as usize };
    let mut sums = [0f64; 6];
    let mut steps = 0usize;
    let mut samples = 0u64;
    'epochs: for _epoch in 0..epochs {
        let shuffle = if evaluate_only { &mut probe_rng } else { &mut *rng };
        for mb in batch::minibatches(shuffle, &selected, rollout.n, cfg.num_minibatches, net.recurrent()) {
            let out = {
                let _ac = autocast::Scope::enter(bf16, device)?;
                batch::evaluate(net, &data, &mb)
            };
            let tg = Targets {
                actions: data.actions.index_select(0, &out.rows),
                old_logprobs: data.logprobs.index_select(0, &out.rows),
                old_values: data.values.index_select(0, &out.rows),
                advantages: data.advantages.index_select(0, &out.rows),
                returns: data.returns.index_select(0, &out.rows),
                weights: data.weights.index_select(0, &out.rows),
            };
            if tg.weights.sum(Kind::Float).double_value(&[]) == 0.0 {
                continue;
            }
            let loss = ppo_loss(cfg, &out, &tg);
            if evaluate_only {
                for (s, v) in sums.iter_mut().zip([loss.policy, loss.value, loss.entropy, loss.approx_kl, loss.clip_frac]) {
                    *s += v;
                }
                steps = 1;
                break 'epochs;
            }

            net.zero_grad();
            loss.total.backward();
            let (scale, norm) = clip_grad_norm(net, cfg.max_grad_norm);
            adam.step(&mut net.params, scale);

            for (s, v) in sums.iter_mut().zip([loss.policy, loss.value, loss.entropy, loss.approx_kl, loss.clip_frac, norm]) {
                *s += v;
            }
            steps += 1;
            samples += out.rows.size()[0] as u64;
        }
    }
    net.zero_grad();

    // 3. Diagnostics (means over the update's gradient steps).
    let k = steps.max(1) as f64;
    let names = ["policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac", "grad_norm"];
    let mut scalars: Vec<Scalar> = names.iter().zip(sums).map(|(n, s)| Scalar::new(n, s / k)).collect();
    scalars.push(Scalar::new("explained_variance", explained_variance(&rollout.values, &returns, &selected)));
    scalars.push(Scalar::new("grad_steps", steps as f64));
    Ok(UpdateStats {
        scalars: scalars.into(),
        context_grad: Default::default(),
        grad_steps: if evaluate_only { 0 } else { steps as u32 },
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gae_matches_hand_computation() {
        // One env, three steps, episode ends at step 1: no bootstrapping across it.
        let (gamma, lambda) = (0.9, 0.5);
        let (adv, ret) = gae(&[1.0, 2.0, 3.0], &[0.5, 0.25, 1.0], &[0, 1, 0], &[2.0], 1, gamma, lambda);
        let d2 = 3.0 + 0.9 * 2.0 - 1.0;
        let d1 = 2.0 - 0.25;
        let d0 = 1.0 + 0.9 * 0.25 - 0.5;
        let a0 = d0 + gamma * lambda * d1;
        for (got, want) in adv.iter().zip([a0, d1, d2]) {
            assert!((*got as f64 - want).abs() < 1e-6, "{adv:?}");
        }
        assert!((ret[0] - (a0 as f32 + 0.5)).abs() < 1e-6);
    }
}
