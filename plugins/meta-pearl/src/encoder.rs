//! The context encoder q(z | c) and its Gaussian posterior.
//!
//! ```text
//! per transition (s, a, r) of a context:
//!   e(s) = flatten(ReLU(conv 64 5x5/5 (ReLU(conv 32 5x5/5 (s_image / 255)))))  [; s_vector]
//!   (μ_n, σ²_n) = split(W2 ReLU(W1 [e(s); a; r] + b1) + b2),  σ²_n = softplus(·)
//! product of Gaussians over the context's N transitions:
//!   σ² = 1 / Σ_n 1/σ²_n,   μ = σ² Σ_n μ_n/σ²_n
//! z = μ + σ ⊙ ε,  ε ~ N(0, I)                          (reparameterised)
//! KL(q(z|c) ‖ N(0, I)) = ½ Σ_j (σ²_j + μ_j² − 1 − ln σ²_j)
//! ```
//!
//! The image path is the DER encoder (as in the study's `PearlDQN`, which runs its own DER
//! convolutions over each context transition's frame stack); a vector observation enters as
//! it is. Initial values follow PyTorch's defaults (uniform in ±1/sqrt(fan_in)), drawn from
//! the plugin's own generator; ε too, so runs never touch libtorch's global generator.

use metarl_plugin_kit::seeds::SeedStream;
use metarl_tch_common::{to_vec_f32, Param};
use tch::{Device, Kind, Tensor};

use crate::context::{Batch, Layout};

/// Variances are kept above this (σ² = softplus(·) can underflow to 0).
const MIN_VAR: f64 = 1e-7;

/// The encoder network.
pub struct Encoder {
    /// Trainable tensors, in checkpoint order.
    pub params: Vec<Param>,
    /// What it reads.
    pub layout: Layout,
    /// Width of z.
    pub latent: i64,
    /// MLP width.
    pub hidden: i64,
    conv: bool,
    device: Device,
}

/// q(z | c) for a batch of tasks: `[K, latent]` means and variances.
pub struct Posterior {
    /// Means.
    pub mu: Tensor,
    /// Variances.
    pub var: Tensor,
}

/// A standard normal draw (Box-Muller).
pub fn normal(rng: &mut SeedStream) -> f32 {
    let u1 = 1.0 - rng.uniform();
    let u2 = rng.uniform();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// `n` standard normal draws.
pub fn normals(rng: &mut SeedStream, n: usize) -> Vec<f32> {
    (0..n).map(|_| normal(rng)).collect()
}

fn leaf(rng: &mut SeedStream, shape: &[i64], fan_in: i64, device: Device) -> Tensor {
    let bound = 1.0 / (fan_in as f64).sqrt();
    let n: i64 = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect();
    Tensor::from_slice(&v).reshape(shape).to_device(device).set_requires_grad(true)
}

impl Encoder {
    /// A freshly initialised encoder.
    pub fn new(layout: Layout, hidden: i64, latent: i64, seed: u64, device: Device) -> Self {
        let mut rng = SeedStream::new(seed ^ 0x5045_4152);
        let mut params = Vec::new();
        let mut add = |name: &str, t: Tensor| params.push(Param { name: name.into(), t, head: false });
        let mut features = layout.vector_dim as i64;
        if let Some((_, [h, w, c])) = layout.image {
            let out = |x: i64| ((x - 5) / 5 + 1 - 5) / 5 + 1;
            add("conv1.weight", leaf(&mut rng, &[32, c, 5, 5], c * 25, device));
            add("conv1.bias", leaf(&mut rng, &[32], c * 25, device));
            add("conv2.weight", leaf(&mut rng, &[64, 32, 5, 5], 32 * 25, device));
            add("conv2.bias", leaf(&mut rng, &[64], 32 * 25, device));
            features += 64 * out(h) * out(w);
        }
        let input = features + layout.action_dim as i64 + 1;
        add("fc1.weight", leaf(&mut rng, &[hidden, input], input, device));
        add("fc1.bias", leaf(&mut rng, &[hidden], input, device));
        add("fc2.weight", leaf(&mut rng, &[2 * latent, hidden], hidden, device));
        add("fc2.bias", leaf(&mut rng, &[2 * latent], hidden, device));
        let conv = layout.image.is_some();
        Encoder { params, layout, latent, hidden, conv, device }
    }

    /// A description of the architecture, checked when a checkpoint is loaded.
    pub fn arch(&self) -> String {
        format!("pearl-encoder v1: {}, hidden {}, latent {}", self.layout.describe(), self.hidden, self.latent)
    }

    /// Per-transition `(μ_n, σ²_n)`, each `[rows, latent]`.
    pub fn factors(&self, b: &Batch) -> (Tensor, Tensor) {
        let rows = b.rows as i64;
        let p = |i: usize| &self.params[i].t;
        let mut parts = Vec::new();
        let mut next = 0;
        if let Some((_, [h, w, c])) = self.layout.image.filter(|_| self.conv) {
            let x = Tensor::from_slice(&b.images).view([rows, h, w, c]).to_device(self.device).permute([0, 3, 1, 2]).to_kind(Kind::Float)
                / 255.0;
            let x = x.conv2d(p(0), Some(p(1)), [5, 5], [0, 0], [1, 1], 1).relu();
            let x = x.conv2d(p(2), Some(p(3)), [5, 5], [0, 0], [1, 1], 1).relu();
            parts.push(x.flatten(1, -1));
            next = 4;
        }
        let floats = |v: &[f32], width: usize| Tensor::from_slice(v).view([rows, width as i64]).to_device(self.device);
        if self.layout.vector_dim > 0 {
            parts.push(floats(&b.vectors, self.layout.vector_dim));
        }
        parts.push(floats(&b.actions, self.layout.action_dim));
        parts.push(floats(&b.rewards, 1));
        let x = Tensor::cat(&parts, 1);
        let hdn = x.linear(p(next), Some(p(next + 1))).relu();
        let out = hdn.linear(p(next + 2), Some(p(next + 3)));
        let mu = out.narrow(1, 0, self.latent);
        let var = out.narrow(1, self.latent, self.latent).softplus().clamp_min(MIN_VAR);
        (mu, var)
    }

    /// q(z | c_k) for `tasks` contexts of `per_task` transitions each, laid out task after
    /// task in `b`.
    pub fn posterior(&self, b: &Batch, tasks: usize, per_task: usize) -> Posterior {
        let (mu, var) = self.factors(b);
        let shape = [tasks as i64, per_task as i64, self.latent];
        let (mu, var) = (mu.view(shape), var.view(shape));
        let precision = var.reciprocal();
        let var = precision.sum_dim_intlist(1, false, Kind::Float).reciprocal();
        let mu = &var * (mu * &precision).sum_dim_intlist(1, false, Kind::Float);
        Posterior { mu, var }
    }

    /// Where the tensors live.
    pub fn device(&self) -> Device {
        self.device
    }
}

impl Posterior {
    /// The prior N(0, I) for `tasks` tasks (what a task without context gets).
    pub fn prior(tasks: usize, latent: i64, device: Device) -> Self {
        let shape = [tasks as i64, latent];
        Posterior { mu: Tensor::zeros(shape, (Kind::Float, device)), var: Tensor::ones(shape, (Kind::Float, device)) }
    }

    /// z = μ + σ ⊙ ε, with ε given (`[K, latent]` floats).
    pub fn sample(&self, eps: &[f32]) -> Tensor {
        let eps = Tensor::from_slice(eps).view(self.mu.size().as_slice()).to_device(self.mu.device());
        &self.mu + self.var.sqrt() * eps
    }

    /// KL(q ‖ N(0, I)) per task, `[K]`.
    pub fn kl(&self) -> Tensor {
        (&self.var + self.mu.square() - 1.0 - self.var.log()).sum_dim_intlist(1, false, Kind::Float) * 0.5
    }

    /// Rows `[K, latent]` stacked from single-task posteriors.
    pub fn stack(parts: &[Posterior]) -> Self {
        let mu: Vec<&Tensor> = parts.iter().map(|p| &p.mu).collect();
        let var: Vec<&Tensor> = parts.iter().map(|p| &p.var).collect();
        Posterior { mu: Tensor::cat(&mu, 0), var: Tensor::cat(&var, 0) }
    }
}

/// The encoder's loss for one update, whose gradient with respect to the encoder's
/// parameters φ is the study's: ∂L/∂φ = Σ_k (∂L/∂z_k) ∂z_k/∂φ + w ∂ mean_k KL_k/∂φ.
///
/// `dl_dz` is the algo's ∂L/∂z (`UpdateStats::context_grad`), a constant here, so the first
/// term back-propagates exactly that gradient through the reparameterised z. The KL is
/// averaged over the update's tasks as the algo's loss averages over its samples, which keeps
/// the two terms in the ratio of the study's code (per-sample loss plus that sample's task KL).
pub fn encoder_loss(z: &Tensor, dl_dz: &[f32], post: &Posterior, kl_weight: f64) -> Tensor {
    let g = Tensor::from_slice(dl_dz).view(z.size().as_slice()).to_device(z.device());
    (z * g).sum(Kind::Float) + post.kl().mean(Kind::Float) * kl_weight
}

/// A tensor's values as a flat `Vec<f32>`.
pub fn values(t: &Tensor) -> Vec<f32> {
    to_vec_f32(t)
}
