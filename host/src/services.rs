//! The host side of a meta plugin's phase: building envs for it and hearing its progress.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RErr, ROk, RSlice};
use metarl_plugin_api::algo::AlgoBox;
use abi_stable::std_types::RVec;
use metarl_plugin_api::env::{
    EnvBox, EnvFfi, EnvFfi_TO, EnvRequest, EnvSpec, EpisodeStat, ResetBuffers, StepBuffers, Trajectory,
};
use metarl_plugin_api::meta::{HostServices, HostServicesFfi, HostServicesFfi_TO};
use metarl_plugin_api::types::{ActionsRef, PResult, PluginError, Scalar};

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
    /// Every episode finished in an env of this phase, stamped with the phase's env steps.
    pub episodes: Arc<Mutex<EpisodeLog>>,
}

/// Episodes finished during a phase, in completion order.
#[derive(Debug, Default)]
pub struct EpisodeLog {
    /// Env steps taken so far in the phase, over all its envs.
    pub env_steps: u64,
    /// `(env steps when it finished, episode)`.
    pub finished: Vec<(u64, EpisodeStat)>,
}

/// An env lent to a meta plugin: forwards every call and logs finished episodes for the host,
/// so that adaptation curves do not depend on the meta plugin reporting them.
struct RecordingEnv {
    inner: EnvBox,
    num_envs: u64,
    log: Arc<Mutex<EpisodeLog>>,
    pending: Vec<EpisodeStat>,
}

impl EnvFfi for RecordingEnv {
    fn spec(&self) -> PResult<EnvSpec> {
        self.inner.spec()
    }
    fn reset(&mut self, seed: u64, out: ResetBuffers<'_>) -> PResult<()> {
        self.inner.reset(seed, out)
    }
    fn step(&mut self, actions: ActionsRef<'_>, out: StepBuffers<'_>) -> PResult<()> {
        if let RErr(e) = self.inner.step(actions, out) {
            return RErr(e);
        }
        let done = match self.inner.take_episodes() {
            ROk(d) => d,
            RErr(e) => return RErr(e),
        };
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.env_steps += self.num_envs;
        let at = log.env_steps;
        log.finished.extend(done.iter().map(|e| (at, *e)));
        self.pending.extend(done);
        ROk(())
    }
    fn take_episodes(&mut self) -> PResult<RVec<EpisodeStat>> {
        ROk(std::mem::take(&mut self.pending).into())
    }
    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> PResult<RVec<Trajectory>> {
        self.inner.demos(task, episodes, seed)
    }
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
            episodes: Arc::default(),
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
                let recording = RecordingEnv { inner: env, num_envs: num_envs as u64, log: self.episodes.clone(), pending: Vec::new() };
                ROk(EnvFfi_TO::from_value(recording, TD_Opaque))
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
