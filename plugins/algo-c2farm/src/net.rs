//! The Q-attention network of one level: a 3D U-Net over the level's voxel grid.
//!
//! ```text
//! voxels [B,10,G³] -> Inc(k) ─┐
//! proprio -> Dense(k) -> tile ┼─ cat -> down0 Inc(k) ──────────────────────────────┐ d0 (G)
//! [z -> Dense(c) -> tile] ────┘            │ maxpool 3/2                           │
//!                                  down1 Inc(2k) ─────────────────────┐ d1 (G/2)   │
//!                                          │ maxpool 3/2 (G > 8 only) │            │
//!                                  down2 Inc(4k) -> up2 ─ cat ────────┘            │
//!                                                      up1 (Inc, ×2 trilinear, Inc) ─ cat
//!                                                                  final Conv3 (k) ┘ = f1
//! translation Q  [B,1,G³]  = Conv3(f1 -> 1)
//! rotation/grip Q [B,3·72+2] (last level) = Dense(h) -> Dense(h) -> Dense(3·72+2) over
//!     [spatial softmax (3 per channel) ; global max] of d0, d1, (d2,) f1
//! ```
//!
//! This is stepjam/ARM's `Qattention3DNet` as C2F-ARM configures it (`k` = 64 kernels,
//! LeakyReLU with slope 0.02, no normalisation, `h` = 128, 3×3×3 convolutions with
//! replicate padding, its `include_prev_layer` off). An inception block `Inc(out)` is ARM's
//! `Conv3DInceptionBlock`: the concatenation of a 1×1 branch (out/2 channels), a 1×1 → 3×3
//! branch (out/4) and a 1×1 → 3×3 → 3×3 branch (out/4), with `latent` (32) channels inside
//! the branches; an up block is an inception block, ×2 trilinear upsampling (corners not
//! aligned) and another inception block. A spatial softmax (temperature 0.01) gives each
//! channel's expected (d, h, w) position in [-1, 1]³ (ARM's meshgrid orders them (h, d, w),
//! a fixed permutation of the same features). `zero_pad` swaps the replicate padding for zeros
//! (cheaper on a CPU; `cpu-small`). Initialisation is ARM's: Kaiming-uniform for
//! the LeakyReLU layers, Xavier-uniform for the output layers, zero biases.
//!
//! ARM builds a fourth down block for G > 16 whose channel counts do not add up, so only
//! grids of at most 16 are supported, as in every C2F-ARM configuration: two down blocks for
//! G ≤ 8 (G even), three for 8 < G ≤ 16 (G a multiple of 4).
//!
//! A context `z` (PEARL, the author's fork: level 0 only) is tiled in beside the proprio
//! features through its own dense layer. [`NetSize`] holds the sizes: `paper` and
//! `cpu-small`. Parameters are plain leaf tensors in one ordered list, initialised from the
//! agent's own generator, never from libtorch's global one; the output layers (translation
//! conv, rotation/gripper MLP) are the "heads" a `reset_heads` re-initialises.

use metarl_plugin_kit::seeds::SeedStream;
use tch::{Device, Kind, Tensor};

pub use metarl_tch_common::Param;

use crate::rotation::BINS;
use crate::voxel::FEATURES;

/// LeakyReLU's negative slope in ARM.
pub const LRELU_SLOPE: f64 = 0.02;
/// Spatial softmax temperature in ARM.
const SOFTMAX_TEMPERATURE: f64 = 0.01;

/// Widths of the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetSize {
    /// `k`: kernels of the first blocks (the down blocks have k, 2k, 4k).
    pub kernels: i64,
    /// Channels inside an inception block's branches.
    pub latent: i64,
    /// Width of the rotation/gripper MLP's two hidden layers.
    pub dense: i64,
    /// Pad the 3×3×3 convolutions with zeros inside the convolution instead of ARM's
    /// replicate padding (a separate copy of every input): about 40% less time per update on
    /// a CPU at G = 8, with the same parameters.
    pub zero_pad: bool,
}

impl NetSize {
    /// C2F-ARM's sizes: 64 kernels, 32 latent, 128-128 MLP, replicate padding.
    pub const PAPER: NetSize = NetSize { kernels: 64, latent: 32, dense: 128, zero_pad: false };
    /// Sized for a 2-core CPU: 16 kernels, 16 latent, 64-64 MLP, zero padding.
    pub const CPU_SMALL: NetSize = NetSize { kernels: 16, latent: 16, dense: 64, zero_pad: true };
}

/// What one level's network is built for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Voxels per side, G.
    pub grid: i64,
    /// Proprioception width (0: none).
    pub proprio: i64,
    /// Context width (0: none; PEARL's z, level 0 only).
    pub context: i64,
    /// Whether this level has the rotation and gripper heads (the last level).
    pub rot_grip: bool,
}

impl Shape {
    /// Width of the rotation/gripper output: 3 × 72 rotation bins, then 2 gripper states.
    pub fn rot_grip_width(&self) -> i64 {
        3 * BINS + 2
    }
}

/// One level's Q-values.
pub struct QOut {
    /// `[B, 1, G, G, G]` translation Q-values, one per voxel.
    pub trans: Tensor,
    /// `[B, 3·72 + 2]`: rotation Q-values per Euler axis (72 each), then the gripper's 2
    /// (last level only).
    pub rot_grip: Option<Tensor>,
}

#[derive(Clone, Copy)]
struct Conv {
    w: usize,
    b: usize,
    kernel: i64,
    act: bool,
}

#[derive(Clone, Copy)]
struct Dense {
    w: usize,
    b: usize,
    act: bool,
}

#[derive(Clone, Copy)]
struct Inception {
    one: Conv,
    a1: Conv,
    a3: Conv,
    b1: Conv,
    b3a: Conv,
    b3b: Conv,
}

#[derive(Clone, Copy)]
struct Up {
    first: Inception,
    second: Inception,
}

/// One level's Q-attention network.
pub struct QNet {
    /// All trainable tensors, in a fixed order.
    pub params: Vec<Param>,
    /// What it is built for.
    pub shape: Shape,
    /// Its widths.
    pub size: NetSize,
    input: Inception,
    proprio: Option<Dense>,
    context: Option<Dense>,
    down: Vec<Inception>,
    up2: Option<Up>,
    up1: Up,
    final1: Conv,
    final2: Conv,
    dense: Option<[Dense; 3]>,
    device: Device,
}

/// Builds the parameter list as layers are declared.
struct Builder<'a> {
    params: Vec<Param>,
    rng: &'a mut SeedStream,
    device: Device,
    head: bool,
}

fn uniform(rng: &mut SeedStream, n: usize, bound: f64) -> Vec<f32> {
    (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect()
}

/// ARM's initial bound: Kaiming-uniform for LeakyReLU layers, Xavier-uniform otherwise.
fn init_bound(act: bool, fan_in: i64, fan_out: i64) -> f64 {
    if act {
        let gain = (2.0 / (1.0 + LRELU_SLOPE * LRELU_SLOPE)).sqrt();
        gain * (3.0 / fan_in as f64).sqrt()
    } else {
        (6.0 / (fan_in + fan_out) as f64).sqrt()
    }
}

impl Builder<'_> {
    fn push(&mut self, name: String, data: Vec<f32>, shape: &[i64]) -> usize {
        let t = Tensor::from_slice(&data).reshape(shape).to_device(self.device).set_requires_grad(true);
        self.params.push(Param { name, t, head: self.head });
        self.params.len() - 1
    }

    fn conv(&mut self, name: &str, cin: i64, cout: i64, kernel: i64, act: bool) -> Conv {
        let k3 = kernel * kernel * kernel;
        let w = uniform(self.rng, (cout * cin * k3) as usize, init_bound(act, cin * k3, cout * k3));
        Conv {
            w: self.push(format!("{name}.weight"), w, &[cout, cin, kernel, kernel, kernel]),
            b: self.push(format!("{name}.bias"), vec![0.0; cout as usize], &[cout]),
            kernel,
            act,
        }
    }

    fn dense(&mut self, name: &str, fin: i64, fout: i64, act: bool) -> Dense {
        let w = uniform(self.rng, (fout * fin) as usize, init_bound(act, fin, fout));
        Dense {
            w: self.push(format!("{name}.weight"), w, &[fout, fin]),
            b: self.push(format!("{name}.bias"), vec![0.0; fout as usize], &[fout]),
            act,
        }
    }

    fn inception(&mut self, name: &str, cin: i64, cout: i64, latent: i64) -> Inception {
        let cs = cout / 4;
        Inception {
            one: self.conv(&format!("{name}.1x1"), cin, 2 * cs, 1, true),
            a1: self.conv(&format!("{name}.3x3.reduce"), cin, latent, 1, true),
            a3: self.conv(&format!("{name}.3x3"), latent, cs, 3, true),
            b1: self.conv(&format!("{name}.5x5.reduce"), cin, latent, 1, true),
            b3a: self.conv(&format!("{name}.5x5.a"), latent, latent, 3, true),
            b3b: self.conv(&format!("{name}.5x5.b"), latent, cs, 3, true),
        }
    }

    fn up(&mut self, name: &str, cin: i64, cout: i64, latent: i64) -> Up {
        Up { first: self.inception(&format!("{name}.0"), cin, cout, latent), second: self.inception(&format!("{name}.1"), cout, cout, latent) }
    }
}

/// LeakyReLU with ARM's slope, as libtorch's fused `prelu` with one fixed slope (no
/// gradient): `max(x, slope·x)` computes the same but backs up through two ops, which made
/// the update 17-27% slower than PyTorch's `leaky_relu` (benches/c2farm.sh).
fn lrelu(x: Tensor) -> Tensor {
    let slope = Tensor::from(LRELU_SLOPE as f32).to_kind(x.kind()).to_device(x.device());
    x.prelu(&slope)
}

impl QNet {
    /// Builds and initialises a level's network from `seed`. Fails on a grid size or width the
    /// architecture cannot take.
    pub fn new(shape: Shape, size: NetSize, seed: u64, device: Device) -> Result<QNet, String> {
        let g = shape.grid;
        if !(2..=16).contains(&g) || g % 2 != 0 || (g > 8 && g % 4 != 0) {
            return Err(format!("grid size {g} is not supported: use an even size up to 8, or a multiple of 4 up to 16"));
        }
        let k = size.kernels;
        if k < 4 || k % 4 != 0 || size.latent < 1 || size.dense < 1 {
            return Err(format!("network widths {size:?}: kernels must be a positive multiple of 4, latent and dense positive"));
        }
        let mut rng = SeedStream::new(seed ^ 0xC2F_A12A);
        let mut b = Builder { params: Vec::new(), rng: &mut rng, device, head: false };
        let l = size.latent;
        let input = b.inception("input", FEATURES, k, l);
        let proprio = (shape.proprio > 0).then(|| b.dense("proprio", shape.proprio, k, true));
        let context = (shape.context > 0).then(|| b.dense("context", shape.context, shape.context, true));
        let d0_in = k + if shape.proprio > 0 { k } else { 0 } + shape.context;
        let mut down = vec![b.inception("down0", d0_in, k, l), b.inception("down1", k, 2 * k, l)];
        let deep = g > 8;
        let up2 = deep.then(|| {
            down.push(b.inception("down2", 2 * k, 4 * k, l));
            b.up("up2", 4 * k, k, l)
        });
        let k1 = if deep { 2 * k + k } else { 2 * k };
        let up1 = b.up("up1", k1, k, l);
        let final1 = b.conv("final", 2 * k, k, 3, true);
        b.head = true;
        let final2 = b.conv("trans", k, 1, 3, false);
        let dense = shape.rot_grip.then(|| {
            let feats: i64 = [k, 2 * k, 4 * k][..down.len()].iter().map(|c| 4 * c).sum::<i64>() + 4 * k;
            [
                b.dense("rot_grip.0", feats, size.dense, true),
                b.dense("rot_grip.1", size.dense, size.dense, true),
                b.dense("rot_grip.out", size.dense, shape.rot_grip_width(), false),
            ]
        });
        let params = b.params;
        Ok(QNet { params, shape, size, input, proprio, context, down, up2, up1, final1, final2, dense, device })
    }

    fn p(&self, i: usize) -> &Tensor {
        &self.params[i].t
    }

    fn conv(&self, x: &Tensor, c: Conv) -> Tensor {
        let pad = c.kernel / 2;
        let y = if pad > 0 && !self.size.zero_pad {
            x.pad([pad; 6], "replicate", None).conv3d(self.p(c.w), Some(self.p(c.b)), [1; 3], [0; 3], [1; 3], 1)
        } else {
            x.conv3d(self.p(c.w), Some(self.p(c.b)), [1; 3], [pad; 3], [1; 3], 1)
        };
        if c.act {
            lrelu(y)
        } else {
            y
        }
    }

    fn dense(&self, x: &Tensor, d: Dense) -> Tensor {
        let y = x.linear(self.p(d.w), Some(self.p(d.b)));
        if d.act {
            lrelu(y)
        } else {
            y
        }
    }

    fn inception(&self, x: &Tensor, i: Inception) -> Tensor {
        let one = self.conv(x, i.one);
        let three = self.conv(&self.conv(x, i.a1), i.a3);
        let five = self.conv(&self.conv(&self.conv(x, i.b1), i.b3a), i.b3b);
        Tensor::cat(&[one, three, five], 1)
    }

    fn up(&self, x: &Tensor, u: Up) -> Tensor {
        let y = self.inception(x, u.first);
        let s = y.size();
        let y = y.upsample_trilinear3d([s[2] * 2, s[3] * 2, s[4] * 2], false, None, None, None);
        self.inception(&y, u.second)
    }

    /// Each channel's spatial softmax (expected position, 3 values) and global max:
    /// `[B, 4·C]`.
    fn summary(x: &Tensor) -> Tensor {
        let s = x.size();
        let (b, c, d, h, w) = (s[0], s[1], s[2], s[3], s[4]);
        let lin = |n: i64| Tensor::linspace(-1.0, 1.0, n, (Kind::Float, x.device()));
        let pos = Tensor::stack(
            &[
                lin(d).view([d, 1, 1]).expand([d, h, w], false),
                lin(h).view([1, h, 1]).expand([d, h, w], false),
                lin(w).view([1, 1, w]).expand([d, h, w], false),
            ],
            3,
        )
        .view([d * h * w, 3]);
        let attention = (x.reshape([b * c, d * h * w]) / SOFTMAX_TEMPERATURE).softmax(1, Kind::Float);
        let keypoints = attention.matmul(&pos).view([b, c * 3]);
        let max = x.amax([2, 3, 4], false);
        Tensor::cat(&[keypoints, max], 1)
    }

    /// Q-values of `voxels` (`[B, 10, G, G, G]`) with `proprio` (`[B, P]`, ignored when the
    /// net has none) and the context rows `z` (`[B, Z]`, when built with a context).
    pub fn forward(&self, voxels: &Tensor, proprio: &Tensor, z: Option<&Tensor>) -> QOut {
        let s = voxels.size();
        let (b, g) = (s[0], s[2]);
        let tile = |v: Tensor| {
            let c = v.size()[1];
            v.view([b, c, 1, 1, 1]).expand([b, c, g, g, g], false)
        };
        let mut x = vec![self.inception(voxels, self.input)];
        if let Some(p) = self.proprio {
            x.push(tile(self.dense(proprio, p)));
        }
        if let (Some(c), Some(z)) = (self.context, z) {
            x.push(tile(self.dense(z, c)));
        } else if let Some(c) = self.context {
            // No rows given: a zero context, so the shapes still line up.
            let zeros = Tensor::zeros([b, self.shape.context], (Kind::Float, self.device));
            x.push(tile(self.dense(&zeros, c)));
        }
        let x = Tensor::cat(&x, 1);

        let pool = |t: &Tensor| t.max_pool3d([3; 3], [2; 3], [1; 3], [1; 3], false);
        let d0 = self.inception(&x, self.down[0]);
        let d1 = self.inception(&pool(&d0), self.down[1]);
        let d2 = self.up2.map(|_| self.inception(&pool(&d1), self.down[2]));
        let u = match (self.up2, &d2) {
            (Some(up2), Some(d2)) => Tensor::cat(&[&d1, &self.up(d2, up2)], 1),
            _ => d1.shallow_clone(),
        };
        let u1 = self.up(&u, self.up1);
        let f1 = self.conv(&Tensor::cat(&[&d0, &u1], 1), self.final1);
        let trans = self.conv(&f1, self.final2);
        let rot_grip = self.dense.map(|[h0, h1, out]| {
            let feats: Vec<Tensor> = [Some(&d0), Some(&d1), d2.as_ref(), Some(&f1)].into_iter().flatten().map(Self::summary).collect();
            let h = self.dense(&self.dense(&Tensor::cat(&feats, 1), h0), h1);
            self.dense(&h, out)
        });
        QOut { trans, rot_grip }
    }

    /// Number of trainable floats.
    pub fn param_count(&self) -> usize {
        metarl_tch_common::param_count(&self.params)
    }

    /// Copies `other`'s parameters into this net.
    pub fn copy_from(&mut self, other: &QNet) {
        tch::no_grad(|| {
            for (p, q) in self.params.iter_mut().zip(&other.params) {
                p.t.copy_(&q.t);
            }
        });
    }

    /// Polyak averaging toward `other`: `θ ← τ θ_other + (1 - τ) θ`.
    pub fn soft_update_from(&mut self, other: &QNet, tau: f64) {
        tch::no_grad(|| {
            for (p, q) in self.params.iter_mut().zip(&other.params) {
                let _ = p.t.g_mul_scalar_(1.0 - tau);
                let _ = p.t.g_add_(&(&q.t * tau));
            }
        });
    }

    /// Re-initialises the heads (translation conv, rotation/gripper MLP) as a net built from
    /// `seed` would have them, keeping everything else.
    pub fn reset_heads(&mut self, seed: u64) -> Result<(), String> {
        let fresh = QNet::new(self.shape, self.size, seed, self.device)?;
        tch::no_grad(|| {
            for (p, q) in self.params.iter_mut().zip(&fresh.params) {
                if p.head {
                    p.t.copy_(&q.t);
                }
            }
        });
        Ok(())
    }

    /// Zeroes every gradient.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.t.zero_grad();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_input(b: i64, g: i64, proprio: i64) -> (Tensor, Tensor) {
        tch::manual_seed(0);
        (Tensor::rand([b, FEATURES, g, g, g], (Kind::Float, Device::Cpu)), Tensor::rand([b, proprio], (Kind::Float, Device::Cpu)))
    }

    #[test]
    fn outputs_have_the_documented_shapes_at_both_depths() {
        tch::set_num_threads(1);
        let size = NetSize { kernels: 8, latent: 8, dense: 16, zero_pad: false };
        for (grid, rot_grip) in [(16, true), (8, true), (16, false), (4, false)] {
            let shape = Shape { grid, proprio: 5, context: 0, rot_grip };
            let net = QNet::new(shape, size, 1, Device::Cpu).expect("a supported shape");
            let (v, p) = random_input(2, grid, 5);
            let out = net.forward(&v, &p, None);
            assert_eq!(out.trans.size(), [2, 1, grid, grid, grid]);
            match out.rot_grip {
                Some(rg) => {
                    assert!(rot_grip);
                    assert_eq!(rg.size(), [2, 3 * 72 + 2]);
                }
                None => assert!(!rot_grip),
            }
        }
        for bad in [7, 10, 14, 20, 32] {
            let shape = Shape { grid: bad, proprio: 5, context: 0, rot_grip: true };
            assert!(QNet::new(shape, size, 1, Device::Cpu).is_err(), "grid {bad}");
        }
    }

    #[test]
    fn zero_padding_keeps_the_parameters_and_changes_only_the_borders() {
        tch::set_num_threads(1);
        let shape = Shape { grid: 8, proprio: 5, context: 0, rot_grip: false };
        let replicate = NetSize { kernels: 8, latent: 8, dense: 16, zero_pad: false };
        let a = QNet::new(shape, replicate, 2, Device::Cpu).unwrap();
        let b = QNet::new(shape, NetSize { zero_pad: true, ..replicate }, 2, Device::Cpu).unwrap();
        let w = |n: &QNet| metarl_tch_common::flat_params(&n.params);
        assert_eq!(w(&a), w(&b));
        // A constant grid: replicate padding sees the same constant beyond the faces, zeros do not.
        let v = Tensor::ones([1, FEATURES, 8, 8, 8], (Kind::Float, Device::Cpu));
        let p = Tensor::ones([1, 5], (Kind::Float, Device::Cpu));
        let (qa, qb) = (a.forward(&v, &p, None).trans, b.forward(&v, &p, None).trans);
        assert_eq!(qa.size(), qb.size());
        assert!((&qa - &qb).abs().max().double_value(&[]) > 1e-6, "the padding matters at the faces");
    }

    #[test]
    fn paper_size_has_arms_parameter_count() {
        // Counted by hand from ARM's layer list for G = 16, 11-d proprio, last level:
        // inception(cin, out) = 1x1 (cin·out/2 + out/2) + reduce (cin·32 + 32) + 3x3 (27·32·out/4 + out/4)
        //                     + reduce (cin·32 + 32) + 3x3 (27·32·32 + 32) + 3x3 (27·32·out/4 + out/4)
        let inc = |cin: i64, out: i64| {
            cin * out / 2 + out / 2 + 2 * (cin * 32 + 32) + 2 * (27 * 32 * out / 4 + out / 4) + 27 * 32 * 32 + 32
        };
        let dense = |i: i64, o: i64| i * o + o;
        let conv3 = |i: i64, o: i64| 27 * i * o + o;
        let k = 64;
        let want = inc(10, k) + dense(11, k) + inc(2 * k, k) + inc(k, 2 * k) + inc(2 * k, 4 * k)
            + inc(4 * k, k) + inc(k, k) // up2
            + inc(3 * k, k) + inc(k, k) // up1
            + conv3(2 * k, k) + conv3(k, 1)
            + dense(4 * (k + 2 * k + 4 * k + k), 128) + dense(128, 128) + dense(128, 218);
        let net = QNet::new(Shape { grid: 16, proprio: 11, context: 0, rot_grip: true }, NetSize::PAPER, 0, Device::Cpu).unwrap();
        assert_eq!(net.param_count() as i64, want);
    }

    #[test]
    fn a_forward_and_backward_pass_reach_every_parameter() {
        tch::set_num_threads(1);
        let shape = Shape { grid: 8, proprio: 5, context: 4, rot_grip: true };
        let mut net = QNet::new(shape, NetSize { kernels: 8, latent: 8, dense: 16, zero_pad: false }, 3, Device::Cpu).unwrap();
        let (v, p) = random_input(2, 8, 5);
        let z = Tensor::ones([2, 4], (Kind::Float, Device::Cpu));
        net.zero_grad();
        let out = net.forward(&v, &p, Some(&z));
        let loss = out.trans.square().mean(Kind::Float) + out.rot_grip.unwrap().square().mean(Kind::Float);
        loss.backward();
        for param in &net.params {
            let g = param.t.grad();
            assert!(g.defined(), "{} has no gradient", param.name);
            let n = g.abs().sum(Kind::Float).double_value(&[]);
            assert!(n > 0.0 && n.is_finite(), "{}: |grad| = {n}", param.name);
        }
        // The same seed builds the same net; another seed another.
        let same = QNet::new(shape, net.size, 3, Device::Cpu).unwrap();
        let other = QNet::new(shape, net.size, 4, Device::Cpu).unwrap();
        let w = |n: &QNet| metarl_tch_common::flat_params(&n.params);
        assert_eq!(w(&net), w(&same));
        assert_ne!(w(&net), w(&other));
    }
}
