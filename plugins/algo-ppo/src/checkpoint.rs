//! The `save`/`load` byte format: a small, self-describing little-endian container.
//!
//! ```text
//! "METARL-PPO\n" | u32 version | str architecture
//! u32 count | count x (str name | u32 ndim | ndim x i64 dim | f32 data)      parameters
//! u64 adam step | count x f32 data (m) | count x f32 data (v)               optimizer
//! 4 x u64                                                                   sampling RNG
//! f64 mean | f64 var | f64 count | u32 n | n x f64                          reward scale
//! ```
//!
//! `str` is a u32 length and UTF-8 bytes. Values are stored bit-exactly, so a resumed agent
//! continues exactly where the saved one was. The architecture line (network shape, not
//! hyper-parameters) must match the loading agent's. A rollout in progress is not saved:
//! save between updates.

use metarl_plugin_api::types::PluginError;
use metarl_plugin_kit::bytes::{Reader, Writer};

const MAGIC: &[u8] = b"METARL-PPO\n";
const VERSION: u32 = 1;

/// A tensor as stored: name, shape, values.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Parameter name.
    pub name: String,
    /// Shape.
    pub dims: Vec<i64>,
    /// Values, flattened.
    pub data: Vec<f32>,
}

/// Everything a checkpoint holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Description of the network's shape.
    pub arch: String,
    /// Parameters in order.
    pub params: Vec<Stored>,
    /// Adam's step count.
    pub adam_step: u64,
    /// Adam first moments (same order and sizes as `params`).
    pub adam_m: Vec<Vec<f32>>,
    /// Adam second moments.
    pub adam_v: Vec<Vec<f32>>,
    /// Sampling RNG state.
    pub rng: [u64; 4],
    /// Reward scale: mean, variance, count.
    pub reward_stats: [f64; 3],
    /// Reward scale: per-env discounted returns.
    pub reward_returns: Vec<f64>,
}

impl Checkpoint {
    /// Serialises the checkpoint.
    pub fn to_bytes(&self) -> Vec<u8> {
        let floats: usize = self.params.iter().map(|p| p.data.len()).sum();
        let mut w = Writer(Vec::with_capacity(64 + floats * 12));
        w.bytes(MAGIC);
        w.u32(VERSION);
        w.str(&self.arch);
        w.u32(self.params.len() as u32);
        for p in &self.params {
            w.str(&p.name);
            w.u32(p.dims.len() as u32);
            for &d in &p.dims {
                w.u64(d as u64);
            }
            w.f32s(&p.data);
        }
        w.u64(self.adam_step);
        for m in self.adam_m.iter().chain(&self.adam_v) {
            w.f32s(m);
        }
        for s in self.rng {
            w.u64(s);
        }
        for s in self.reward_stats {
            w.f64(s);
        }
        w.u32(self.reward_returns.len() as u32);
        for &r in &self.reward_returns {
            w.f64(r);
        }
        w.0
    }

    /// Parses bytes from [`Checkpoint::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PluginError> {
        let mut r = Reader::new(bytes, MAGIC, "ppo")?;
        let version = r.u32()?;
        if version != VERSION {
            return Err(PluginError::invalid(format!("ppo load: checkpoint format {version}, this plugin reads {VERSION}")));
        }
        let arch = r.str()?;
        let count = r.u32()? as usize;
        let mut params = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let name = r.str()?;
            let ndim = r.u32()? as usize;
            let dims = (0..ndim).map(|_| r.u64().map(|d| d as i64)).collect::<Result<Vec<_>, _>>()?;
            let numel = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?));
            let data = r.f32s(numel.ok_or_else(|| r.corrupt())?)?;
            params.push(Stored { name, dims, data });
        }
        let adam_step = r.u64()?;
        let moments = |r: &mut Reader<'_>| params.iter().map(|p| r.f32s(p.data.len())).collect::<Result<Vec<_>, _>>();
        let adam_m = moments(&mut r)?;
        let adam_v = moments(&mut r)?;
        let rng = [r.u64()?, r.u64()?, r.u64()?, r.u64()?];
        let reward_stats = [r.f64()?, r.f64()?, r.f64()?];
        let n = r.u32()? as usize;
        let reward_returns = (0..n).map(|_| r.f64()).collect::<Result<Vec<_>, _>>()?;
        if !r.done() {
            return Err(PluginError::invalid("ppo load: trailing bytes after the checkpoint"));
        }
        Ok(Checkpoint { arch, params, adam_step, adam_m, adam_v, rng, reward_stats, reward_returns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let c = Checkpoint {
            arch: "test".into(),
            params: vec![Stored { name: "w".into(), dims: vec![2, 1], data: vec![1.5, -0.0] }],
            adam_step: 7,
            adam_m: vec![vec![0.1, 0.2]],
            adam_v: vec![vec![0.3, f32::MIN_POSITIVE]],
            rng: [1, 2, 3, u64::MAX],
            reward_stats: [0.5, 2.0, 1e-4],
            reward_returns: vec![1.0, -3.0],
        };
        let bytes = c.to_bytes();
        assert_eq!(Checkpoint::from_bytes(&bytes).unwrap(), c);
        let e = Checkpoint::from_bytes(&bytes[..bytes.len() - 3]).unwrap_err();
        assert!(e.message.contains("truncated"), "{}", e.message);
        assert!(Checkpoint::from_bytes(b"nope").unwrap_err().message.contains("magic"));
    }
}
