//! Host-side helpers for batched envs: opening one through a plugin, random actions.

use metarl_plugin_api::env::EnvRequest;
use metarl_plugin_api::types::{ActionSpace, ArrayRef, PluginError};
use metarl_plugin_kit::buf::SpaceBuf;
use metarl_plugin_kit::driver::{random_action, CallFailed};
pub use metarl_plugin_kit::driver::EnvBatch;
use metarl_plugin_kit::seeds::SeedStream;

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

/// Uniformly random actions from a fixed seed, for benchmarks and smoke tests: each discrete
/// element uniform over its choices, each bounded continuous element uniform in its bounds.
pub struct RandomActions {
    rng: SeedStream,
    space: ActionSpace,
    /// The current batch.
    pub buf: SpaceBuf,
}

impl RandomActions {
    /// A generator for `n` envs of `space`.
    pub fn new(space: &ActionSpace, n: usize, seed: u64) -> Self {
        Self { rng: SeedStream::new(seed), space: space.clone(), buf: SpaceBuf::zeros(space, n) }
    }

    /// Draws a new batch into `buf` and returns its views.
    pub fn sample(&mut self) -> Vec<ArrayRef<'_>> {
        for row in 0..self.buf.n {
            random_action(&self.space, &mut self.buf, row, &mut self.rng);
        }
        self.buf.views()
    }
}
