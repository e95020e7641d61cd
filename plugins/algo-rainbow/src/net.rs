//! The DER network: two strided convolutions, then noisy dueling C51 heads.
//!
//! ```text
//! x/255 -> conv 32 5x5/5 -> ReLU -> conv 64 5x5/5 -> ReLU -> flatten (576 on 84x84) [; z]
//!   value:     NoisyLinear(hidden) -> ReLU -> NoisyLinear(atoms)              [-> ReLU]
//!   advantage: NoisyLinear(hidden) -> ReLU -> NoisyLinear(actions x atoms)    [-> ReLU]
//! logits(a) = v + a(a) - mean_a a          (log-)softmax over the atoms
//! ```
//!
//! The bracketed ReLU is the study author's quirk (`head_relu`). A context `z` (PEARL) is
//! concatenated to the convolutional features before the heads. NoisyLinear is factorised
//! Gaussian noise (Fortunato et al. 2018) with Kaixhin's initialisation: μ uniform in
//! ±1/sqrt(fan_in), weight σ = σ₀/sqrt(fan_in), bias σ = σ₀/sqrt(fan_out), noise
//! f(ε) = sign(ε)sqrt(|ε|). Convolutions keep PyTorch's default initialisation.
//!
//! Parameters are plain leaf tensors in one ordered list (the order of `params()` and of
//! checkpoints); initial values and noise come from the agent's own generators, never from
//! libtorch's global one.

use metarl_plugin_kit::seeds::SeedStream;
use tch::{Device, Kind, Tensor};

pub use metarl_tch_common::{to_vec_f32, Param};

#[derive(Clone, Copy)]
struct Conv {
    w: usize,
    b: usize,
}

/// Indices of a NoisyLinear layer's parameters.
#[derive(Clone, Copy)]
struct Noisy {
    w_mu: usize,
    w_sigma: usize,
    b_mu: usize,
    b_sigma: usize,
    fin: i64,
    fout: i64,
}

/// What the network is built for.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// `[H, W, C]` of one observation.
    pub obs: [i64; 3],
    /// Discrete actions.
    pub actions: i64,
    /// Atoms.
    pub atoms: i64,
    /// Hidden width of each stream.
    pub hidden: i64,
    /// Context width (0: none).
    pub context: i64,
}

/// A standard normal draw (Box-Muller, one per call).
pub fn normal(rng: &mut SeedStream) -> f64 {
    let u1 = 1.0 - rng.uniform();
    let u2 = rng.uniform();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The network.
pub struct Net {
    /// All trainable tensors, in a fixed order.
    pub params: Vec<Param>,
    conv1: Conv,
    conv2: Conv,
    /// value hidden, advantage hidden, value out, advantage out.
    noisy: [Noisy; 4],
    /// Factorised noise in use per noisy layer: `(f(ε_in), f(ε_out))`.
    pub noise: Vec<(Vec<f32>, Vec<f32>)>,
    noise_t: Vec<(Tensor, Tensor)>,
    /// Shapes.
    pub shape: Shape,
    /// Width of the flattened convolutional features.
    pub features: i64,
    head_relu: bool,
    noisy_std: f64,
    device: Device,
}

fn conv_out(x: i64) -> i64 {
    (x - 5) / 5 + 1
}

fn leaf(data: &[f32], shape: &[i64], device: Device) -> Tensor {
    Tensor::from_slice(data).reshape(shape).to_device(device).set_requires_grad(true)
}

fn uniform(rng: &mut SeedStream, n: usize, bound: f64) -> Vec<f32> {
    (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect()
}

impl Net {
    /// Builds and initialises the network from `seed`. Fails if the image is smaller than
    /// the two 5x5 convolutions need.
    pub fn new(shape: Shape, noisy_std: f64, head_relu: bool, seed: u64, device: Device) -> Result<Net, String> {
        let [h, w, c] = shape.obs;
        let (oh, ow) = (conv_out(conv_out(h)), conv_out(conv_out(w)));
        if oh < 1 || ow < 1 {
            return Err(format!("images of {h}x{w} are too small for two 5x5 stride-5 convolutions (at least 25x25)"));
        }
        let features = 64 * oh * ow;
        let mut rng = SeedStream::new(seed ^ 0x0DE2_1A17);
        let mut params = Vec::new();
        let mut push = |name: String, t: Tensor, head: bool| {
            params.push(Param { name, t, head });
            params.len() - 1
        };
        let conv = |name: &str, cin: i64, cout: i64, rng: &mut SeedStream, push: &mut dyn FnMut(String, Tensor, bool) -> usize| {
            let fan_in = cin * 25;
            let bound = 1.0 / (fan_in as f64).sqrt();
            let w = uniform(rng, (cout * fan_in) as usize, bound);
            let b = uniform(rng, cout as usize, bound);
            Conv {
                w: push(format!("{name}.weight"), leaf(&w, &[cout, cin, 5, 5], device), false),
                b: push(format!("{name}.bias"), leaf(&b, &[cout], device), false),
            }
        };
        let conv1 = conv("conv1", c, 32, &mut rng, &mut push);
        let conv2 = conv("conv2", 32, 64, &mut rng, &mut push);
        let head_in = features + shape.context;
        let dims = [
            ("fc_h_v", head_in, shape.hidden),
            ("fc_h_a", head_in, shape.hidden),
            ("fc_z_v", shape.hidden, shape.atoms),
            ("fc_z_a", shape.hidden, shape.actions * shape.atoms),
        ];
        let noisy = dims.map(|(name, fin, fout)| {
            let z = vec![0f32; (fin * fout) as usize];
            Noisy {
                w_mu: push(format!("{name}.weight_mu"), leaf(&z, &[fout, fin], device), true),
                w_sigma: push(format!("{name}.weight_sigma"), leaf(&z, &[fout, fin], device), true),
                b_mu: push(format!("{name}.bias_mu"), leaf(&z[..fout as usize], &[fout], device), true),
                b_sigma: push(format!("{name}.bias_sigma"), leaf(&z[..fout as usize], &[fout], device), true),
                fin,
                fout,
            }
        });
        let noise = noisy.iter().map(|l| (vec![0f32; l.fin as usize], vec![0f32; l.fout as usize])).collect();
        let mut net =
            Net { params, conv1, conv2, noisy, noise, noise_t: Vec::new(), shape, features, head_relu, noisy_std, device };
        net.init_heads(&mut rng);
        net.upload_noise();
        Ok(net)
    }

    /// Kaixhin's NoisyLinear initialisation of the four head layers.
    fn init_heads(&mut self, rng: &mut SeedStream) {
        tch::no_grad(|| {
            for l in self.noisy {
                let range = 1.0 / (l.fin as f64).sqrt();
                let w = uniform(rng, (l.fin * l.fout) as usize, range);
                let b = uniform(rng, l.fout as usize, range);
                self.params[l.w_mu].t.copy_(&Tensor::from_slice(&w).reshape([l.fout, l.fin]).to_device(self.device));
                self.params[l.b_mu].t.copy_(&Tensor::from_slice(&b).to_device(self.device));
            }
        });
        self.reset_sigmas();
    }

    /// σ back to σ₀/sqrt(fan_in) (weights) and σ₀/sqrt(fan_out) (biases): the study's
    /// `--reset_sigmas`.
    pub fn reset_sigmas(&mut self) {
        tch::no_grad(|| {
            for l in self.noisy {
                let _ = self.params[l.w_sigma].t.fill_(self.noisy_std / (l.fin as f64).sqrt());
                let _ = self.params[l.b_sigma].t.fill_(self.noisy_std / (l.fout as f64).sqrt());
            }
        });
    }

    /// Re-initialises the dueling heads from `seed`, keeping the encoder.
    pub fn reset_heads(&mut self, seed: u64) {
        let mut rng = SeedStream::new(seed ^ 0x4EAD_5EED);
        self.init_heads(&mut rng);
    }

    /// Draws new factorised noise for every noisy layer.
    pub fn sample_noise(&mut self, rng: &mut SeedStream) {
        let f = |x: f64| (x.signum() * x.abs().sqrt()) as f32;
        for (eps_in, eps_out) in &mut self.noise {
            eps_in.iter_mut().for_each(|e| *e = f(normal(rng)));
            eps_out.iter_mut().for_each(|e| *e = f(normal(rng)));
        }
        self.upload_noise();
    }

    /// Makes the tensors of `self.noise` current (after a change or a load).
    pub fn upload_noise(&mut self) {
        self.noise_t = self
            .noise
            .iter()
            .map(|(i, o)| (Tensor::from_slice(i).to_device(self.device), Tensor::from_slice(o).to_device(self.device)))
            .collect();
    }

    fn p(&self, i: usize) -> &Tensor {
        &self.params[i].t
    }

    fn noisy_linear(&self, x: &Tensor, k: usize, noise: bool) -> Tensor {
        let l = self.noisy[k];
        if noise {
            let (eps_in, eps_out) = &self.noise_t[k];
            let w = self.p(l.w_mu) + self.p(l.w_sigma) * eps_out.outer(eps_in);
            let b = self.p(l.b_mu) + self.p(l.b_sigma) * eps_out;
            x.linear(&w, Some(&b))
        } else {
            x.linear(self.p(l.w_mu), Some(self.p(l.b_mu)))
        }
    }

    /// Convolutional features `[B, features]` of `u8 [B, H, W, C]` observations.
    pub fn encode(&self, obs: &Tensor) -> Tensor {
        let x = obs.permute([0, 3, 1, 2]).to_kind(Kind::Float) / 255.0;
        let conv = |x: &Tensor, c: Conv| x.conv2d(self.p(c.w), Some(self.p(c.b)), [5, 5], [0, 0], [1, 1], 1).relu();
        conv(&conv(&x, self.conv1), self.conv2).flatten(1, -1)
    }

    /// Return-distribution logits `[B, actions, atoms]` from features (and context rows).
    pub fn heads(&self, features: &Tensor, context: Option<&Tensor>, noise: bool) -> Tensor {
        let x = match context {
            Some(z) => Tensor::cat(&[features, z], 1),
            None => features.shallow_clone(),
        };
        let mut v = self.noisy_linear(&self.noisy_linear(&x, 0, noise).relu(), 2, noise);
        let mut a = self.noisy_linear(&self.noisy_linear(&x, 1, noise).relu(), 3, noise);
        if self.head_relu {
            v = v.relu();
            a = a.relu();
        }
        let a = a.view([-1, self.shape.actions, self.shape.atoms]);
        v.unsqueeze(1) + &a - a.mean_dim(1, true, Kind::Float)
    }

    /// Logits `[B, actions, atoms]` of observations.
    pub fn logits(&self, obs: &Tensor, context: Option<&Tensor>, noise: bool) -> Tensor {
        self.heads(&self.encode(obs), context, noise)
    }

    /// Number of trainable floats.
    pub fn param_count(&self) -> usize {
        metarl_tch_common::param_count(&self.params)
    }

    /// All parameters, flattened in order.
    pub fn flat_params(&self) -> Vec<f32> {
        metarl_tch_common::flat_params(&self.params)
    }

    /// Overwrites all parameters from a flat vector (length checked by the caller).
    pub fn set_flat_params(&mut self, flat: &[f32]) {
        metarl_tch_common::set_flat_params(&mut self.params, flat)
    }

    /// Copies `other`'s parameters into this net (the target update).
    pub fn copy_from(&mut self, other: &Net) {
        tch::no_grad(|| {
            for (p, q) in self.params.iter_mut().zip(&other.params) {
                p.t.copy_(&q.t);
            }
        });
    }

    /// Zeroes every gradient.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.t.zero_grad();
        }
    }
}

