//! The Rainbow loss (Hessel et al. 2018) as DER uses it: a distributional (C51) n-step
//! double-Q target, cross-entropy weighted by prioritised-replay importance weights.
//!
//! ```text
//! a*      = argmax_a Σ_j z_j p_j(s_{t+n}, a; θ)                  (online net: double Q)
//! Tz_j    = clamp(R_t^(n) + γ^n z_j, v_min, v_max)               (γ^n = 0 at a terminal)
//! m       = Φ(Tz, p(s_{t+n}, a*; θ⁻))                            (projection onto z, target net)
//! L_i     = -Σ_j m_j log p_j(s_t, a_t; θ)                        (also the new priority)
//! L       = 1/B Σ_i w_i L_i
//! ```

use tch::{Kind, Tensor};

use crate::net::Net;

/// One gradient step's inputs, on the network's device.
pub struct Batch {
    /// `u8 [B, H, W, C]` observations s_t.
    pub obs: Tensor,
    /// `u8 [B, H, W, C]` bootstrap observations s_{t+m} (zeros where there is none).
    pub next_obs: Tensor,
    /// `i64 [B]` actions a_t.
    pub actions: Tensor,
    /// `f32 [B]` n-step returns R_t.
    pub returns: Tensor,
    /// `f32 [B]` bootstrap discounts γ^m (0 without bootstrap).
    pub discounts: Tensor,
    /// `f32 [B]` importance-sampling weights w_i.
    pub weights: Tensor,
    /// `f32 [B, context]` context rows, the same for s_t and s_{t+m} (None without context).
    pub context: Option<Tensor>,
}

/// The C51 projection Φ: the distribution with probabilities `next_p` (`[B, atoms]`) on the
/// support shifted to `Tz = R + d z` and clamped to `[v_min, v_max]`, redistributed onto
/// the fixed support by linear interpolation between its two neighbouring atoms. Mass that
/// falls exactly on an atom stays there. Differentiable in `next_p`.
pub fn project(returns: &Tensor, discounts: &Tensor, next_p: &Tensor, support: &Tensor, v_min: f64, v_max: f64) -> Tensor {
    let atoms = support.size()[0];
    let delta = (v_max - v_min) / (atoms - 1) as f64;
    let tz = (returns.unsqueeze(1) + discounts.unsqueeze(1) * support.unsqueeze(0)).clamp(v_min, v_max);
    let b = (tz - v_min) / delta; // position of Tz_j on the atom grid, in [0, atoms - 1]
    let lower = b.floor();
    let frac = &b - &lower; // share of the upper neighbour
    let l = lower.to_kind(Kind::Int64).clamp(0, atoms - 1);
    let u = (&l + 1i64).clamp_max(atoms - 1);
    // W[i, j, k]: share of source atom j that lands on atom k.
    let w = l.one_hot(atoms).to_kind(Kind::Float) * (1f64 - &frac).unsqueeze(2)
        + u.one_hot(atoms).to_kind(Kind::Float) * frac.unsqueeze(2);
    next_p.unsqueeze(1).bmm(&w).squeeze_dim(1)
}

/// The loss of one gradient step: `(L, L_i)` with `L_i` detached (the new priorities).
/// The online net's noise is the one in use (drawn when it last acted, as in Kaixhin's
/// Rainbow); the target net's must have been drawn for this step.
pub fn loss(online: &Net, target: &Net, b: &Batch, support: &Tensor, v_min: f64, v_max: f64) -> (Tensor, Tensor) {
    let atoms = support.size()[0];
    let ctx = b.context.as_ref();
    let log_p = online.logits(&b.obs, ctx, true).log_softmax(2, Kind::Float);
    let log_p_a = log_p.gather(1, &b.actions.view([-1, 1, 1]).expand([-1, 1, atoms], false), false).squeeze_dim(1);

    // The target holds the network parameters fixed; it depends on the context (the same rows
    // for both nets), so dL/dz sees it, as UpdateStats::context_grad defines.
    let a_star = tch::no_grad(|| {
        let ctx = ctx.map(|z| z.detach());
        let q_next = (online.logits(&b.next_obs, ctx.as_ref(), true).softmax(2, Kind::Float) * support).sum_dim_intlist(2, false, Kind::Float);
        q_next.argmax(1, false)
    });
    let m = {
        let p_next = target.logits(&b.next_obs, ctx, true).softmax(2, Kind::Float);
        let p_next_a = p_next.gather(1, &a_star.view([-1, 1, 1]).expand([-1, 1, atoms], false), false).squeeze_dim(1);
        project(&b.returns, &b.discounts, &p_next_a, support, v_min, v_max)
    };

    let per_sample = -(m * log_p_a).sum_dim_intlist(1, false, Kind::Float);
    let loss = (&b.weights * &per_sample).mean(Kind::Float);
    (loss, per_sample.detach())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    fn rows(x: &Tensor) -> Vec<f32> {
        crate::net::to_vec_f32(x)
    }

    #[test]
    fn projection_matches_a_hand_computed_case() {
        // Support {-2, -1, 0, 1, 2} (Δz = 1).
        let support = t(&[-2.0, -1.0, 0.0, 1.0, 2.0]);
        let p = t(&[0.1, 0.2, 0.3, 0.3, 0.1]).view([1, 5]);
        // R = 0.5, γ^n = 0.5: Tz = -0.5, 0, 0.5, 1, 1.5.
        // -0.5 splits 0.1 between -1 and 0 (0.05 each); 0 keeps 0.2 at 0; 0.5 splits 0.3
        // between 0 and 1; 1 keeps 0.3 at 1; 1.5 splits 0.1 between 1 and 2.
        let m = project(&t(&[0.5]), &t(&[0.5]), &p, &support, -2.0, 2.0);
        let want = [0.0, 0.05, 0.05 + 0.2 + 0.15, 0.15 + 0.3 + 0.05, 0.05];
        for (g, w) in rows(&m).iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{:?} vs {want:?}", rows(&m));
        }
        // Terminal (γ^n = 0), R = 1.25: all mass at 1.25 -> 0.75 on atom 1, 0.25 on atom 2.
        let m = project(&t(&[1.25]), &t(&[0.0]), &p, &support, -2.0, 2.0);
        let want = [0.0, 0.0, 0.0, 0.75, 0.25];
        for (g, w) in rows(&m).iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{:?}", rows(&m));
        }
        // Clamping: R = 5 puts everything on v_max; R = -5 with γ^n = 1 pushes Tz below v_min.
        let m = project(&t(&[5.0, -5.0]), &t(&[1.0, 1.0]), &Tensor::cat(&[&p, &p], 0), &support, -2.0, 2.0);
        let m = rows(&m);
        assert!((m[4] - 1.0).abs() < 1e-6 && (m[5] - 1.0).abs() < 1e-6, "{m:?}");
    }
}
