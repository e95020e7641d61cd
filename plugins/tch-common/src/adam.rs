//! Adam (Kingma & Ba 2015) over the network's parameter list, with its state in the open.
//!
//! tch's `nn::Optimizer` keeps its moments inside libtorch where a checkpoint cannot reach
//! them; owning `m`, `v` and the step count here lets `save`/`load` resume bit-for-bit. The
//! arithmetic is PyTorch's (`torch.optim.Adam`, no weight decay, no amsgrad):
//!
//! ```text
//! m <- b1 m + (1 - b1) g            v <- b2 v + (1 - b2) g²
//! p <- p - (lr / (1 - b1^t)) · m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//! ```

use tch::{Kind, Tensor};

use crate::Param;

/// Adam's state for one parameter list.
pub struct Adam {
    /// Step size.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Steps taken.
    pub step: u64,
    /// First moments, one per parameter.
    pub m: Vec<Tensor>,
    /// Second moments, one per parameter.
    pub v: Vec<Tensor>,
}

impl Adam {
    /// Fresh state (zero moments) for `params`.
    pub fn new(params: &[Param], lr: f64, eps: f64) -> Self {
        let zeros = || params.iter().map(|p| Tensor::zeros_like(&p.t).to_kind(Kind::Float)).collect::<Vec<_>>();
        Adam { lr, beta1: 0.9, beta2: 0.999, eps, step: 0, m: zeros(), v: zeros() }
    }

    /// One step using each parameter's `.grad()` multiplied by `grad_scale` (the grad-norm
    /// clip factor). Parameters without a gradient are left alone, as PyTorch does.
    pub fn step(&mut self, params: &mut [Param], grad_scale: f64) {
        self.step += 1;
        let bias1 = 1.0 - self.beta1.powi(self.step as i32);
        let bias2 = 1.0 - self.beta2.powi(self.step as i32);
        let step_size = self.lr / bias1;
        let bias2_sqrt = bias2.sqrt();
        tch::no_grad(|| {
            for ((p, m), v) in params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                let g = p.t.grad();
                if !g.defined() {
                    continue;
                }
                let g = if grad_scale == 1.0 { g } else { g * grad_scale };
                let _ = m.g_mul_scalar_(self.beta1);
                let _ = m.g_add_(&(&g * (1.0 - self.beta1)));
                let _ = v.g_mul_scalar_(self.beta2);
                let _ = v.g_add_(&(&g * &g * (1.0 - self.beta2)));
                let denom = v.sqrt() / bias2_sqrt + self.eps;
                let _ = p.t.g_sub_(&(&*m / denom * step_size));
            }
        });
    }

    /// Zeroes the moments of the parameters selected by `which` (after re-initialising them).
    pub fn reset_moments(&mut self, params: &[Param], which: impl Fn(&Param) -> bool) {
        tch::no_grad(|| {
            for ((p, m), v) in params.iter().zip(&mut self.m).zip(&mut self.v) {
                if which(p) {
                    let _ = m.zero_();
                    let _ = v.zero_();
                }
            }
        });
    }
}
