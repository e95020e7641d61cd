//! Host-side helpers for batched envs: opening one through a plugin, random actions.

use metarl_plugin_api::driver::CallFailed;
pub use metarl_plugin_api::driver::EnvBatch;
use metarl_plugin_api::env::EnvRequest;
use metarl_plugin_api::types::{ActionBuf, ActionKind, ActionSpace, ActionsRef, PluginError};

use crate::loader::{CallError, Plugin};

/// Builds a batched env through `plugin`, with its output buffers, checking that it has the
/// requested number of envs.
pub fn open(plugin: &Plugin, req: &EnvRequest) -> Result<EnvBatch, CallError> {
    let env = plugin.new_env(req)?;
    let batch = call(&plugin.name, EnvBatch::new(env))?;
    if batch.spec.num_envs != req.num_envs {
        let error = PluginError::failed(format!("env reports {} envs but {} were requested", batch.spec.num_envs, req.num_envs));
        return Err(CallError { plugin: plugin.name.clone(), call: "spec", error });
    }
    Ok(batch)
}

/// Names the plugin in the error of a call made through the driver.
pub fn call<T>(plugin: &str, r: Result<T, CallFailed>) -> Result<T, CallError> {
    r.map_err(|f| CallError { plugin: plugin.to_string(), call: f.call, error: f.error })
}

/// Uniformly random actions from a fixed seed (SplitMix64), for benchmarks and smoke tests.
pub struct RandomActions {
    state: u64,
    space: ActionSpace,
    /// The current batch.
    pub buf: ActionBuf,
}

impl RandomActions {
    /// A generator for `n` envs of `space`.
    pub fn new(space: &ActionSpace, n: usize, seed: u64) -> Self {
        Self { state: seed, space: space.clone(), buf: ActionBuf::zeros(space, n) }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Draws a new batch into `buf`.
    pub fn sample(&mut self) -> ActionsRef<'_> {
        let n = self.space.n as u64;
        match self.space.kind {
            ActionKind::Discrete => {
                let len = self.buf_len();
                for i in 0..len {
                    let a = (self.next_u64() % n.max(1)) as i32;
                    if let ActionBuf::Discrete(v) = &mut self.buf {
                        v[i] = a;
                    }
                }
            }
            ActionKind::Continuous => {
                let len = self.buf_len();
                for i in 0..len {
                    let d = i % self.space.n as usize;
                    let u = (self.next_u64() >> 11) as f32 / (1u64 << 53) as f32;
                    let (lo, hi) = (self.space.low[d], self.space.high[d]);
                    if let ActionBuf::Continuous(v) = &mut self.buf {
                        v[i] = lo + u * (hi - lo);
                    }
                }
            }
        }
        self.buf.as_ref()
    }

    fn buf_len(&self) -> usize {
        match &self.buf {
            ActionBuf::Discrete(v) => v.len(),
            ActionBuf::Continuous(v) => v.len(),
        }
    }
}
