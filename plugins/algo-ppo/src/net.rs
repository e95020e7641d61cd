//! The actor-critic network: IMPALA CNN (images) or MLP (vectors), an optional LSTM core fed
//! with RL² inputs, an optional context input, and the policy and value heads.
//!
//! Parameters are plain leaf tensors in one ordered list rather than a `VarStore`: the order is
//! the order of [`Net::flat_params`] and of checkpoints, the optimizer walks the same list, and
//! initialisation draws from the agent's own [`Rng`] (not libtorch's global generator).
//!
//! Initialisation follows CleanRL: convolutions and the CNN's linear layer keep PyTorch's
//! default (uniform in ±1/sqrt(fan_in)); MLP layers, the RL² embedding and the LSTM are
//! orthogonal; the policy head is orthogonal with gain 0.01 and the value head with gain 1.

use metarl_plugin_api::types::PluginError;

/// What the agent's single observation part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObsKind {
    /// A `u8` HWC image (IMPALA CNN).
    ImageU8,
    /// An `f32` vector (MLP).
    VectorF32,
}
use tch::{Device, Kind, Tensor};

use crate::config::Config;
use crate::rng::Rng;

pub use metarl_tch_common::{to_vec_f32, Param};

#[derive(Clone, Copy)]
struct Layer {
    w: usize,
    b: usize,
}

struct Stage {
    conv: Layer,
    res: [[Layer; 2]; 2],
}

enum Encoder {
    Impala { stages: Vec<Stage>, fc: Layer },
    Mlp { l1: Layer, l2: Layer },
}

struct Core {
    embed: Layer,
    w_ih: usize,
    w_hh: usize,
    b_ih: usize,
    b_hh: usize,
}

/// What the network is built for.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// Image or vector observations.
    pub obs_kind: ObsKind,
    /// `[H, W, C]` or `[D]`.
    pub obs_shape: Vec<i64>,
    /// Number of discrete actions.
    pub n_actions: i64,
    /// Width of the context input (0: none).
    pub context_dim: i64,
}

/// The actor-critic.
pub struct Net {
    /// All trainable tensors, in a fixed order.
    pub params: Vec<Param>,
    encoder: Encoder,
    core: Option<Core>,
    actor: Layer,
    critic: Layer,
    /// Input/output shapes.
    pub shape: Shape,
    /// LSTM hidden size (0 if not recurrent).
    pub hidden: i64,
}

/// Builds the parameter list, drawing initial values from an [`Rng`].
struct Builder<'a> {
    params: Vec<Param>,
    rng: &'a mut Rng,
    device: Device,
}

fn leaf(data: Vec<f32>, shape: &[i64], device: Device) -> Tensor {
    Tensor::from_slice(&data).reshape(shape).to_device(device).set_requires_grad(true)
}

/// PyTorch's default for Linear and Conv2d (kaiming_uniform with a = sqrt(5)): U(±1/sqrt(fan_in)).
fn default_uniform(rng: &mut Rng, n: usize, fan_in: i64) -> Vec<f32> {
    let bound = 1.0 / (fan_in as f64).sqrt();
    (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect()
}

/// An orthogonal `[rows, cols]` matrix scaled by `gain` (as `torch.nn.init.orthogonal_`: QR of
/// a Gaussian matrix, signs fixed by R's diagonal). The QR runs in libtorch, deterministically.
pub fn orthogonal(rng: &mut Rng, rows: i64, cols: i64, gain: f64) -> Tensor {
    let (r, c) = if rows < cols { (cols, rows) } else { (rows, cols) };
    let gauss: Vec<f64> = (0..r * c).map(|_| rng.normal()).collect();
    let a = Tensor::from_slice(&gauss).reshape([r, c]);
    let (q, rr) = Tensor::linalg_qr(&a, "reduced");
    let q = q * rr.diag(0).sign();
    let q = if rows < cols { q.transpose(0, 1) } else { q };
    (q * gain).to_kind(Kind::Float).contiguous()
}

impl Builder<'_> {
    fn push(&mut self, name: String, t: Tensor, head: bool) -> usize {
        self.params.push(Param { name, t, head });
        self.params.len() - 1
    }

    /// A 3x3 convolution (padding 1) with PyTorch's default init.
    fn conv3(&mut self, name: &str, cin: i64, cout: i64) -> Layer {
        let fan_in = cin * 9;
        let w = default_uniform(self.rng, (cout * fan_in) as usize, fan_in);
        let b = default_uniform(self.rng, cout as usize, fan_in);
        Layer {
            w: self.push(format!("{name}.weight"), leaf(w, &[cout, cin, 3, 3], self.device), false),
            b: self.push(format!("{name}.bias"), leaf(b, &[cout], self.device), false),
        }
    }

    /// A linear layer with PyTorch's default init.
    fn linear_default(&mut self, name: &str, fin: i64, fout: i64) -> Layer {
        let w = default_uniform(self.rng, (fout * fin) as usize, fin);
        let b = default_uniform(self.rng, fout as usize, fin);
        Layer {
            w: self.push(format!("{name}.weight"), leaf(w, &[fout, fin], self.device), false),
            b: self.push(format!("{name}.bias"), leaf(b, &[fout], self.device), false),
        }
    }

    /// A linear layer with orthogonal weights (gain) and zero bias (CleanRL's `layer_init`).
    fn linear_orth(&mut self, name: &str, fin: i64, fout: i64, gain: f64, head: bool) -> Layer {
        let w = orthogonal(self.rng, fout, fin, gain).to_device(self.device).set_requires_grad(true);
        let b = Tensor::zeros([fout], (Kind::Float, self.device)).set_requires_grad(true);
        Layer { w: self.push(format!("{name}.weight"), w, head), b: self.push(format!("{name}.bias"), b, head) }
    }

    fn matrix_orth(&mut self, name: &str, rows: i64, cols: i64) -> usize {
        let w = orthogonal(self.rng, rows, cols, 1.0).to_device(self.device).set_requires_grad(true);
        self.push(name.to_string(), w, false)
    }

    fn zeros(&mut self, name: &str, n: i64) -> usize {
        let b = Tensor::zeros([n], (Kind::Float, self.device)).set_requires_grad(true);
        self.push(name.to_string(), b, false)
    }
}

/// Spatial size after a 3x3/stride-2/padding-1 max-pool.
fn pooled(x: i64) -> i64 {
    (x - 1) / 2 + 1
}

const SQRT2: f64 = std::f64::consts::SQRT_2;

impl Net {
    /// Builds and initialises the network.
    pub fn new(cfg: &Config, shape: Shape, seed: u64, device: Device) -> Result<Net, PluginError> {
        let mut rng = Rng::new(seed ^ 0x005E_ED0F_1417);
        let mut b = Builder { params: Vec::new(), rng: &mut rng, device };
        let (encoder, enc_out) = match shape.obs_kind {
            ObsKind::ImageU8 => {
                let &[h, w, c] = shape.obs_shape.as_slice() else {
                    return Err(PluginError::invalid(format!(
                        "ppo: image observations must be [height, width, channels], got {:?}",
                        shape.obs_shape
                    )));
                };
                let (mut h, mut w, mut cin) = (h, w, c);
                let mut stages = Vec::new();
                for (i, &cout) in cfg.channels.iter().enumerate() {
                    let conv = b.conv3(&format!("encoder.stage{i}.conv"), cin, cout);
                    let mut res = [[conv; 2]; 2];
                    for (j, block) in res.iter_mut().enumerate() {
                        for (k, layer) in block.iter_mut().enumerate() {
                            *layer = b.conv3(&format!("encoder.stage{i}.res{j}.conv{k}"), cout, cout);
                        }
                    }
                    stages.push(Stage { conv, res });
                    (h, w, cin) = (pooled(h), pooled(w), cout);
                }
                let fc = b.linear_default("encoder.fc", h * w * cin, cfg.latent);
                (Encoder::Impala { stages, fc }, cfg.latent)
            }
            ObsKind::VectorF32 => {
                let &[d] = shape.obs_shape.as_slice() else {
                    return Err(PluginError::invalid(format!(
                        "ppo: vector observations must have one dimension, got {:?}",
                        shape.obs_shape
                    )));
                };
                let l1 = b.linear_orth("encoder.mlp0", d, cfg.mlp_hidden, SQRT2, false);
                let l2 = b.linear_orth("encoder.mlp1", cfg.mlp_hidden, cfg.mlp_hidden, SQRT2, false);
                (Encoder::Mlp { l1, l2 }, cfg.mlp_hidden)
            }
        };
        let (core, latent, hidden) = if cfg.recurrent {
            let h = cfg.lstm_hidden;
            let embed = b.linear_orth("core.embed", enc_out + shape.n_actions + 2, enc_out, SQRT2, false);
            let core = Core {
                embed,
                w_ih: b.matrix_orth("core.lstm.weight_ih", 4 * h, enc_out),
                w_hh: b.matrix_orth("core.lstm.weight_hh", 4 * h, h),
                b_ih: b.zeros("core.lstm.bias_ih", 4 * h),
                b_hh: b.zeros("core.lstm.bias_hh", 4 * h),
            };
            (Some(core), h, h)
        } else {
            (None, enc_out, 0)
        };
        let head_in = latent + shape.context_dim;
        let actor = b.linear_orth("actor", head_in, shape.n_actions, 0.01, true);
        let critic = b.linear_orth("critic", head_in, 1, 1.0, true);
        Ok(Net { params: b.params, encoder, core, actor, critic, shape, hidden })
    }

    fn p(&self, i: usize) -> &Tensor {
        &self.params[i].t
    }

    fn linear(&self, x: &Tensor, l: Layer) -> Tensor {
        x.linear(self.p(l.w), Some(self.p(l.b)))
    }

    fn conv(&self, x: &Tensor, l: Layer) -> Tensor {
        x.conv2d(self.p(l.w), Some(self.p(l.b)), [1, 1], [1, 1], [1, 1], 1)
    }

    /// Observations (`u8 [B, H, W, C]` or `f32 [B, D]`) to latents `[B, latent]`.
    pub fn encode(&self, obs: &Tensor) -> Tensor {
        match &self.encoder {
            Encoder::Impala { stages, fc } => {
                // The permuted view of HWC bytes has channels-last strides and `to_kind` keeps
                // them, so every convolution below runs channels-last (oneDNN's fast path).
                let mut x = obs.permute([0, 3, 1, 2]).to_kind(Kind::Float) / 255.0;
                for s in stages {
                    x = self.conv(&x, s.conv).max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
                    for [c0, c1] in s.res {
                        x = &x + self.conv(&self.conv(&x.relu(), c0).relu(), c1);
                    }
                }
                self.linear(&x.relu().flatten(1, -1), *fc).relu()
            }
            Encoder::Mlp { l1, l2 } => self.linear(&self.linear(obs, *l1).tanh(), *l2).tanh(),
        }
    }

    /// RL² inputs `[B, n_actions + 2]`: one-hot previous action, previous reward, first flag.
    pub fn rl2_inputs(&self, prev_action: &Tensor, prev_reward: &Tensor, first: &Tensor) -> Tensor {
        Tensor::cat(
            &[prev_action.one_hot(self.shape.n_actions).to_kind(Kind::Float), prev_reward.unsqueeze(1), first.unsqueeze(1)],
            1,
        )
    }

    /// One LSTM step: `(h, c) <- LSTM(ReLU(W [z; rl2]), (h, c))`. Panics if not recurrent.
    pub fn core_step(&self, z: &Tensor, rl2: &Tensor, h: &Tensor, c: &Tensor) -> (Tensor, Tensor) {
        let core = self.core.as_ref().expect("core_step on a feed-forward net");
        let x = self.linear(&Tensor::cat(&[z, &rl2.to_kind(z.kind())], 1), core.embed).relu();
        x.lstm_cell(&[h, c], self.p(core.w_ih), self.p(core.w_hh), Some(self.p(core.b_ih)), Some(self.p(core.b_hh)))
    }

    /// Policy logits `[B, A]` and values `[B]`, both float32.
    pub fn heads(&self, latent: &Tensor, context: Option<&Tensor>) -> (Tensor, Tensor) {
        let x = match context {
            Some(ctx) => Tensor::cat(&[latent, &ctx.to_kind(latent.kind())], 1),
            None => latent.shallow_clone(),
        };
        let logits = self.linear(&x, self.actor).to_kind(Kind::Float);
        let value = self.linear(&x, self.critic).squeeze_dim(-1).to_kind(Kind::Float);
        (logits, value)
    }

    /// Whether the net has an LSTM core.
    pub fn recurrent(&self) -> bool {
        self.core.is_some()
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

    /// Re-initialises the policy and value heads from `seed`.
    pub fn reset_heads(&mut self, seed: u64) {
        let mut rng = Rng::new(seed ^ 0x4EAD_5EED);
        tch::no_grad(|| {
            for (layer, gain) in [(self.actor, 0.01), (self.critic, 1.0)] {
                let size = self.params[layer.w].t.size();
                let w = orthogonal(&mut rng, size[0], size[1], gain).to_device(self.params[layer.w].t.device());
                self.params[layer.w].t.copy_(&w);
                let _ = self.params[layer.b].t.zero_();
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

