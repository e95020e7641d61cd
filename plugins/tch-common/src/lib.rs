//! What metarl's libtorch algo plugins (`algo-ppo`, `algo-rainbow`, `algo-c2farm`) share: a
//! network's parameters as a named list ([`Param`]) with flat-vector views for
//! `params`/`set_params`, Adam with its state in the open for exact resume ([`adam::Adam`]),
//! the device an `AlgoRequest` names ([`parse_device`]), and the sum tree and id renumbering of
//! prioritised replay ([`replay`]).
//!
//! It is compiled into each plugin that uses it (an rlib, not a plugin) and nothing in it
//! crosses the plugin boundary, so it is no contract: third-party plugins need none of it.
//! Each plugin's own `build.rs` still bakes libtorch's rpath into its cdylib.
#![deny(missing_docs)]

pub mod adam;
pub mod replay;

use tch::{Device, Kind, Tensor};

/// One trainable tensor of a network.
pub struct Param {
    /// Stable name, used in checkpoints.
    pub name: String,
    /// The leaf tensor (requires grad).
    pub t: Tensor,
    /// Part of the heads that `reset_heads` re-initialises.
    pub head: bool,
}

/// Number of trainable floats in `params`.
pub fn param_count(params: &[Param]) -> usize {
    params.iter().map(|p| p.t.numel()).sum()
}

/// All parameters, flattened in order (the `Algo::params` vector).
pub fn flat_params(params: &[Param]) -> Vec<f32> {
    let mut out = Vec::with_capacity(param_count(params));
    for p in params {
        out.extend(to_vec_f32(&p.t));
    }
    out
}

/// Overwrites all parameters from a flat vector in the order of [`flat_params`] (its length
/// is checked by the caller).
pub fn set_flat_params(params: &mut [Param], flat: &[f32]) {
    let mut at = 0;
    tch::no_grad(|| {
        for p in params.iter_mut() {
            let n = p.t.numel();
            let src = Tensor::from_slice(&flat[at..at + n]).reshape(p.t.size()).to_device(p.t.device());
            p.t.copy_(&src);
            at += n;
        }
    });
}

/// A tensor's values as float32, on the CPU, flattened.
pub fn to_vec_f32(t: &Tensor) -> Vec<f32> {
    let flat = t.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]);
    Vec::<f32>::try_from(&flat).expect("a float tensor converts to Vec<f32>")
}

/// Resolves `AlgoRequest::device` (`cpu`, `cuda`, `cuda:N`, `auto` or empty = CUDA when
/// present); the error says what libtorch sees.
pub fn parse_device(name: &str) -> Result<Device, String> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "auto" | "" => Ok(Device::cuda_if_available()),
        "cuda" if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        "cuda" => Err("device 'cuda' requested but libtorch sees no CUDA device (use 'cpu' or 'auto')".into()),
        other => match other.strip_prefix("cuda:").and_then(|i| i.parse::<usize>().ok()) {
            Some(i) if (i as i64) < tch::Cuda::device_count() => Ok(Device::Cuda(i)),
            Some(i) => Err(format!("device 'cuda:{i}' requested but libtorch sees {} CUDA devices", tch::Cuda::device_count())),
            None => Err(format!("unknown device '{other}' (expected cpu, cuda, cuda:N or auto)")),
        },
    }
}
