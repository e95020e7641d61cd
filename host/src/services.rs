//! The host side of a meta plugin's phase: building envs for it and hearing its progress.

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RErr, ROk, RSlice};
use metarl_plugin_api::algo::AlgoBox;
use metarl_plugin_api::env::{EnvBox, EnvRequest};
use metarl_plugin_api::meta::{HostServices, HostServicesFfi, HostServicesFfi_TO};
use metarl_plugin_api::types::{PResult, PluginError, Scalar};

use crate::loader::Plugin;

/// Called on every progress report: `(algo, env_steps, scalars)`; returns whether to go on.
pub type ProgressFn<'a> = dyn FnMut(&mut AlgoBox, u64, &[Scalar]) -> anyhow::Result<bool> + 'a;

/// What the host lends a meta plugin for one phase.
pub struct PhaseServices<'a> {
    env_plugin: &'a Plugin,
    family: String,
    env_config: String,
    allowed_tasks: Vec<u64>,
    on_progress: Box<ProgressFn<'a>>,
    /// The first error raised on the host side during the phase (the plugin only sees a
    /// generic failure; the host reports this one).
    pub host_error: Option<anyhow::Error>,
    /// Envs built so far in this phase.
    pub envs_built: usize,
}

impl<'a> PhaseServices<'a> {
    /// Services building envs of `env_plugin`'s `family`, restricted to `allowed_tasks`
    /// (empty = any task of the family).
    pub fn new(
        env_plugin: &'a Plugin,
        family: &str,
        env_config: String,
        allowed_tasks: Vec<u64>,
        on_progress: Box<ProgressFn<'a>>,
    ) -> Self {
        Self {
            env_plugin,
            family: family.to_string(),
            env_config,
            allowed_tasks,
            on_progress,
            host_error: None,
            envs_built: 0,
        }
    }

    /// The FFI-safe handle to pass in a `MetaContext`.
    pub fn handle(&mut self) -> HostServices<'_> {
        HostServicesFfi_TO::from_ptr(self, TD_Opaque)
    }

    fn fail<T>(&mut self, err: anyhow::Error) -> PResult<T> {
        let msg = format!("{err:#}");
        if self.host_error.is_none() {
            self.host_error = Some(err);
        }
        RErr(PluginError::failed(msg))
    }
}

impl HostServicesFfi for PhaseServices<'_> {
    fn make_env(&mut self, tasks: RSlice<'_, u64>, num_envs: u32, trials: u32, seed: u64) -> PResult<EnvBox> {
        if let Some(t) = tasks.iter().find(|t| !self.allowed_tasks.is_empty() && !self.allowed_tasks.contains(t)) {
            return RErr(PluginError::invalid(format!(
                "task {t} is not among this phase's tasks; a meta-method may only use the tasks it was given"
            )));
        }
        let req = EnvRequest {
            family: self.family.as_str().into(),
            tasks: tasks.to_vec().into(),
            num_envs,
            trials,
            seed,
            config: self.env_config.as_str().into(),
        };
        let plugin = self.env_plugin;
        match catch_unwind(AssertUnwindSafe(|| plugin.new_env(&req))) {
            Ok(Ok(env)) => {
                self.envs_built += 1;
                ROk(env)
            }
            Ok(Err(e)) => RErr(PluginError { kind: e.error.kind, message: e.to_string().into() }),
            Err(_) => self.fail(anyhow::anyhow!("host panicked while building an env")),
        }
    }

    fn progress(&mut self, algo: &mut AlgoBox, env_steps: u64, scalars: RSlice<'_, Scalar>) -> PResult<bool> {
        let cb = &mut self.on_progress;
        match catch_unwind(AssertUnwindSafe(|| cb(algo, env_steps, scalars.as_slice()))) {
            Ok(Ok(go_on)) => ROk(go_on),
            Ok(Err(e)) => self.fail(e),
            Err(_) => self.fail(anyhow::anyhow!("host panicked in a progress report")),
        }
    }
}
