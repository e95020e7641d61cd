//! Plumbing between the rollout and the loss: the update's tensors, the minibatch schedule and
//! the forward pass over a minibatch (including truncated BPTT for the recurrent core).
//!
//! Recurrent layout: a minibatch is a group of envs, each with its whole rollout as one
//! sequence (`T` steps). The LSTM starts from the state stored at the sequence's first step
//! and carries its own state from there, except at rows where the caller had replaced the
//! state it passed to `act` (see [`crate::rollout::ActMemo::restart`]: usually a zeroed row at
//! an episode or trial start), where it restarts from the stored row, as acting did.

use metarl_plugin_api::types::PluginError;
use tch::{Device, Kind, Tensor};

use crate::autocast;

use crate::net::Net;
use crate::rng::Rng;
use crate::rollout::Rollout;

/// The rollout as tensors, with the GAE targets.
pub struct UpdateData {
    /// Observations `[rows, ...]` on the CPU (`u8` images are a view of the rollout).
    pub obs: Tensor,
    /// Actions `[rows]` (i64).
    pub actions: Tensor,
    /// `log pi_old(a|s)` `[rows]`.
    pub logprobs: Tensor,
    /// `V_old(s)` `[rows]`.
    pub values: Tensor,
    /// GAE advantages `[rows]`.
    pub advantages: Tensor,
    /// `advantages + values` `[rows]`.
    pub returns: Tensor,
    /// 1 for rows of the tasks being learned, 0 otherwise `[rows]`.
    pub weights: Tensor,
    /// Recurrent: stored states `[rows, 2H]`, restart flags `[rows]`, RL² inputs `[rows, A+2]`.
    pub recurrent: Option<(Tensor, Tensor, Tensor)>,
    /// Context rows `[rows, ctx]`.
    pub contexts: Option<Tensor>,
    /// Steps in the rollout.
    pub steps: usize,
    /// Envs per step.
    pub n: usize,
    /// Where the network lives.
    pub device: Device,
}

fn f32s(v: &[f32], device: Device) -> Tensor {
    Tensor::from_slice(v).to_device(device)
}

impl UpdateData {
    /// Views `rollout` as tensors; `rollout` must outlive the result unchanged.
    pub fn new(net: &Net, rollout: &Rollout, advantages: &[f32], returns: &[f32], selected: &[bool], device: Device) -> Self {
        let weights: Vec<f32> = selected.iter().map(|&s| s as u8 as f32).collect();
        let recurrent = net.recurrent().then(|| {
            let rows = rollout.rows() as i64;
            let states = f32s(&rollout.states, device).reshape([rows, -1]);
            let rl2 = net.rl2_inputs(
                &Tensor::from_slice(&rollout.prev_actions).to_device(device),
                &f32s(&rollout.prev_rewards, device),
                &f32s(&rollout.firsts, device),
            );
            (states, f32s(&rollout.restarts, device), rl2)
        });
        let contexts =
            (net.shape.context_dim > 0).then(|| f32s(&rollout.contexts, device).reshape([rollout.rows() as i64, -1]));
        UpdateData {
            obs: rollout.obs_tensor(&net.shape.obs_shape),
            actions: Tensor::from_slice(&rollout.actions).to_device(device),
            logprobs: f32s(&rollout.logprobs, device),
            values: f32s(&rollout.values, device),
            advantages: f32s(advantages, device),
            returns: f32s(returns, device),
            weights: f32s(&weights, device),
            recurrent,
            contexts,
            steps: rollout.steps,
            n: rollout.n,
            device,
        }
    }
}

/// The rows of one minibatch.
pub enum Minibatch {
    /// Independent rows (feed-forward net).
    Rows(Vec<i64>),
    /// Whole per-env sequences (recurrent net); rows are listed time-major.
    Envs(Vec<i64>),
}

impl Minibatch {
    /// Row indices in the order [`evaluate`] returns its outputs.
    pub fn rows(&self, steps: usize, n: usize) -> Vec<i64> {
        match self {
            Minibatch::Rows(r) => r.clone(),
            Minibatch::Envs(envs) => {
                (0..steps as i64).flat_map(|t| envs.iter().map(move |&e| t * n as i64 + e)).collect()
            }
        }
    }
}

/// One epoch's minibatches, shuffled: at most `count` of them, covering every selected row
/// (feed-forward) or every env with a selected row (recurrent, at most one minibatch per env).
pub fn minibatches(rng: &mut Rng, selected: &[bool], n: usize, count: usize, recurrent: bool) -> Vec<Minibatch> {
    if recurrent {
        let mut envs: Vec<i64> =
            (0..n).filter(|&e| selected.iter().skip(e).step_by(n).any(|&s| s)).map(|e| e as i64).collect();
        rng.shuffle(&mut envs);
        let groups = count.min(envs.len()).max(1);
        // Split as evenly as possible: the first `envs % groups` groups get one more.
        let (base, extra) = (envs.len() / groups, envs.len() % groups);
        let mut out = Vec::with_capacity(groups);
        let mut at = 0;
        for g in 0..groups {
            let len = base + usize::from(g < extra);
            out.push(Minibatch::Envs(envs[at..at + len].to_vec()));
            at += len;
        }
        out
    } else {
        let mut rows: Vec<i64> = (0..selected.len()).filter(|&i| selected[i]).map(|i| i as i64).collect();
        rng.shuffle(&mut rows);
        let size = rows.len().div_ceil(count.max(1)).max(1);
        rows.chunks(size).map(|c| Minibatch::Rows(c.to_vec())).collect()
    }
}

/// The network's outputs on one minibatch.
pub struct Evaluated {
    /// Policy logits `[R, A]` (float32).
    pub logits: Tensor,
    /// Values `[R]` (float32).
    pub values: Tensor,
    /// Row indices of the outputs, on the net's device.
    pub rows: Tensor,
}

/// Runs the network over a minibatch (call inside the autocast scope, with grad enabled).
pub fn evaluate(net: &Net, data: &UpdateData, mb: &Minibatch) -> Evaluated {
    let rows_cpu = Tensor::from_slice(&mb.rows(data.steps, data.n));
    let rows = rows_cpu.to_device(data.device);
    let obs = data.obs.index_select(0, &rows_cpu).to_device(data.device);
    let context = data.contexts.as_ref().map(|c| c.index_select(0, &rows));
    let z = net.encode(&obs);
    let latent = match (mb, &data.recurrent) {
        (Minibatch::Envs(envs), Some((states, restarts, rl2))) => {
            let (t_len, b) = (data.steps as i64, envs.len() as i64);
            let z = z.view([t_len, b, -1]);
            let stored = states.index_select(0, &rows).view([t_len, b, -1]);
            let restart = restarts.index_select(0, &rows).view([t_len, b, 1]);
            let rl2 = rl2.index_select(0, &rows).view([t_len, b, -1]);
            let hidden = net.hidden;
            let (mut h, mut c) = (Tensor::new(), Tensor::new());
            let mut outs = Vec::with_capacity(data.steps);
            for t in 0..t_len {
                let s = stored.get(t);
                let (sh, sc) = (s.narrow(1, 0, hidden), s.narrow(1, hidden, hidden));
                if t == 0 {
                    (h, c) = (sh, sc);
                } else {
                    let r = restart.get(t);
                    h = &r * sh + (1.0 - &r) * &h;
                    c = &r * sc + (1.0 - &r) * &c;
                }
                (h, c) = net.core_step(&z.get(t), &rl2.get(t), &h, &c);
                outs.push(h.shallow_clone());
            }
            Tensor::stack(&outs, 0).view([t_len * b, -1])
        }
        _ => z,
    };
    let (logits, values) = net.heads(&latent, context.as_ref());
    Evaluated { logits, values, rows }
}

/// `V(s_T)` for the observations after the last recorded step (no grad, in bf16 autocast if
/// `bf16`). The recurrent core continues from the state `act` wrote at that step.
pub fn bootstrap_values(net: &Net, rollout: &Rollout, bf16: bool, device: Device) -> Result<Vec<f32>, PluginError> {
    let _no_grad = tch::no_grad_guard();
    let _ac = autocast::Scope::enter(bf16, device)?;
    let n = rollout.n;
    let last = (rollout.steps - 1) * n..rollout.steps * n;
    let z = net.encode(&rollout.next_obs_tensor(&net.shape.obs_shape).to_device(device));
    let latent = if net.recurrent() {
        let dones: Vec<f32> = rollout.dones[last.clone()].iter().map(|&d| d as f32).collect();
        let rl2 = net.rl2_inputs(
            &Tensor::from_slice(&rollout.actions[last]).to_device(device),
            &f32s(&rollout.last_raw_rewards, device),
            &f32s(&dones, device),
        );
        let state = f32s(&rollout.next_state, device).view([n as i64, -1]);
        let (h, c) = (state.narrow(1, 0, net.hidden), state.narrow(1, net.hidden, net.hidden));
        net.core_step(&z, &rl2, &h, &c).0
    } else {
        z
    };
    let context = (net.shape.context_dim > 0).then(|| f32s(&rollout.next_context, device).view([n as i64, -1]));
    let (_, values) = net.heads(&latent, context.as_ref());
    Ok(crate::net::to_vec_f32(&values.to_kind(Kind::Float)))
}
