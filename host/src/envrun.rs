//! Host-side handle on a batched env: owns the buffers the env writes into and checks sizes.

use abi_stable::std_types::RVec;
use metarl_plugin_api::env::{EnvBox, EnvRequest, EnvSpec, EpisodeStat, ResetBuffers, StepBuffers};
use metarl_plugin_api::types::{ActionBuf, ActionKind, ActionSpace, ActionsRef, ObsBuf};

use crate::loader::{check, CallError, Plugin};

/// A batched env plus the buffers its outputs land in.
pub struct EnvRunner {
    plugin: String,
    env: EnvBox,
    /// Spaces and batch size.
    pub spec: EnvSpec,
    /// Latest observations, `num_envs * numel`.
    pub obs: ObsBuf,
    /// Latest rewards.
    pub reward: Vec<f32>,
    /// Latest terminal flags.
    pub terminated: Vec<u8>,
    /// Latest truncation flags.
    pub truncated: Vec<u8>,
    /// Latest success flags.
    pub success: Vec<u8>,
    /// Latest end-of-task flags (last trial finished).
    pub task_end: Vec<u8>,
    /// Task of each latest observation.
    pub task: Vec<u64>,
}

impl EnvRunner {
    /// Builds the env through `plugin` and checks that it matches the request.
    pub fn new(plugin: &Plugin, req: &EnvRequest) -> Result<Self, CallError> {
        let env = plugin.new_env(req)?;
        Self::wrap(&plugin.name, env, req.num_envs)
    }

    /// Wraps an env already built (for example by a meta plugin's request).
    pub fn wrap(plugin: &str, env: EnvBox, num_envs: u32) -> Result<Self, CallError> {
        let spec = check(plugin, "spec", env.spec())?;
        if spec.num_envs != num_envs {
            return Err(CallError {
                plugin: plugin.to_string(),
                call: "spec",
                error: metarl_plugin_api::types::PluginError::failed(format!(
                    "env reports {} envs but {num_envs} were requested",
                    spec.num_envs
                )),
            });
        }
        let n = spec.num_envs as usize;
        Ok(Self {
            plugin: plugin.to_string(),
            obs: ObsBuf::zeros(&spec.obs, n),
            reward: vec![0.0; n],
            terminated: vec![0; n],
            truncated: vec![0; n],
            success: vec![0; n],
            task_end: vec![0; n],
            task: vec![0; n],
            spec,
            env,
        })
    }

    /// Number of envs.
    pub fn num_envs(&self) -> usize {
        self.spec.num_envs as usize
    }

    /// Resets every env with `seed`.
    pub fn reset(&mut self, seed: u64) -> Result<(), CallError> {
        let out = ResetBuffers { obs: self.obs.as_mut(), task: self.task.as_mut_slice().into() };
        check(&self.plugin, "reset", self.env.reset(seed, out))
    }

    /// Steps every env once.
    pub fn step(&mut self, actions: ActionsRef<'_>) -> Result<(), CallError> {
        let out = StepBuffers {
            obs: self.obs.as_mut(),
            reward: self.reward.as_mut_slice().into(),
            terminated: self.terminated.as_mut_slice().into(),
            truncated: self.truncated.as_mut_slice().into(),
            success: self.success.as_mut_slice().into(),
            task_end: self.task_end.as_mut_slice().into(),
            task: self.task.as_mut_slice().into(),
        };
        check(&self.plugin, "step", self.env.step(actions, out))
    }

    /// Episodes finished since the last call.
    pub fn take_episodes(&mut self) -> Result<RVec<EpisodeStat>, CallError> {
        check(&self.plugin, "take_episodes", self.env.take_episodes())
    }
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
