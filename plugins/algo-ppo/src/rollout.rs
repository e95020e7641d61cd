//! Rollout storage for one on-policy update, and the running reward scale.
//!
//! Rows are time-major: row `t * num_envs + e` is env `e` at step `t`. Image observations stay
//! `u8` (a quarter of CleanRL's float32 `obs` storage) and are turned into float32 one
//! minibatch at a time; during an update the whole rollout is viewed as one tensor without a
//! copy ([`Rollout::obs_tensor`]): the rows live in a libtorch tensor from the start, so the
//! view shares its reference-counted storage instead of aliasing a Rust `Vec`.

use tch::{Kind, Tensor};

use crate::net::ObsKind;

/// Observations, in the element type the env produces, appended row by row into a flat
/// CPU tensor allocated once at full capacity.
#[derive(Debug)]
pub struct ObsStore {
    kind: ObsKind,
    data: Tensor,
    len: usize,
    capacity: usize,
}

impl ObsStore {
    fn new(kind: ObsKind, capacity: usize) -> Self {
        let dtype = match kind {
            ObsKind::ImageU8 => Kind::Uint8,
            ObsKind::VectorF32 => Kind::Float,
        };
        // Uninitialised: pages are touched only as rows arrive, as a Vec's capacity would be.
        Self { kind, data: Tensor::empty([capacity as i64], (dtype, tch::Device::Cpu)), len: 0, capacity }
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `u8` rows (image stores only).
    pub fn push_u8(&mut self, rows: &[u8]) {
        debug_assert_eq!(self.kind, ObsKind::ImageU8);
        self.push(&Tensor::from_slice(rows), rows.len());
    }

    /// Appends `f32` rows (vector stores only).
    pub fn push_f32(&mut self, rows: &[f32]) {
        debug_assert_eq!(self.kind, ObsKind::VectorF32);
        self.push(&Tensor::from_slice(rows), rows.len());
    }

    /// Replaces the contents with `rows` (the next observations after the last step).
    pub fn set_u8(&mut self, rows: &[u8]) {
        self.len = 0;
        self.push_u8(rows);
    }

    /// Replaces the contents with `rows`.
    pub fn set_f32(&mut self, rows: &[f32]) {
        self.len = 0;
        self.push_f32(rows);
    }

    fn push(&mut self, rows: &Tensor, n: usize) {
        if self.len + n > self.capacity {
            // Only the next-observation store is ever released and refilled.
            let grown = Tensor::empty([(self.len + n) as i64], (self.data.kind(), tch::Device::Cpu));
            if self.len > 0 {
                grown.narrow(0, 0, self.len as i64).copy_(&self.data.narrow(0, 0, self.len as i64));
            }
            self.data = grown;
            self.capacity = self.len + n;
        }
        self.data.narrow(0, self.len as i64, n as i64).copy_(rows);
        self.len += n;
    }

    /// The elements recorded so far, as a tensor sharing the store's storage.
    pub fn tensor(&self) -> Tensor {
        self.data.narrow(0, 0, self.len as i64)
    }

    /// Bytes held (for the memory check).
    pub fn bytes(&self) -> usize {
        match self.kind {
            ObsKind::ImageU8 => self.len,
            ObsKind::VectorF32 => self.len * 4,
        }
    }

    /// Frees the storage; later pushes allocate what they need.
    fn release(&mut self) {
        *self = Self::new(self.kind, 0);
    }
}

/// What `act` saw and produced, kept until the matching `record` (recurrent and context modes):
/// `Transitions` carries neither the RL² inputs nor the context.
#[derive(Debug, Clone, Default)]
pub struct ActMemo {
    /// Previous actions given to `act`.
    pub prev_action: Vec<i64>,
    /// Previous rewards given to `act`.
    pub prev_reward: Vec<f32>,
    /// First flags given to `act` (0 or 1).
    pub first: Vec<f32>,
    /// Context rows given to `act`.
    pub context: Vec<f32>,
    /// 1 where the state row passed in is not the one the previous `act` wrote (the caller reset
    /// or replaced it): training restarts the recurrence from the stored row there.
    pub restart: Vec<f32>,
    /// The state `act` wrote back.
    pub state_out: Vec<f32>,
}

/// One rollout: `steps` rows of `n` envs.
pub struct Rollout {
    /// Envs per step.
    pub n: usize,
    /// Elements per observation.
    pub obs_numel: usize,
    /// Steps recorded.
    pub steps: usize,
    /// Observations the actions were taken in.
    pub obs: ObsStore,
    /// Actions taken.
    pub actions: Vec<i64>,
    /// `V(s_t)` when acting.
    pub values: Vec<f32>,
    /// `log pi_old(a_t | s_t)`.
    pub logprobs: Vec<f32>,
    /// Rewards, after the running scale if enabled.
    pub rewards: Vec<f32>,
    /// 1 where the episode ended at this step (terminated or truncated).
    pub dones: Vec<u8>,
    /// Task of each row.
    pub tasks: Vec<u64>,
    /// Recurrent state before the step (recurrent only).
    pub states: Vec<f32>,
    /// See [`ActMemo::restart`] (recurrent only).
    pub restarts: Vec<f32>,
    /// RL² inputs seen by `act` (recurrent only).
    pub prev_actions: Vec<i64>,
    /// RL² inputs seen by `act` (recurrent only).
    pub prev_rewards: Vec<f32>,
    /// RL² inputs seen by `act` (recurrent only).
    pub firsts: Vec<f32>,
    /// Context rows seen by `act` (context only).
    pub contexts: Vec<f32>,
    /// Observations after the last step, for the bootstrap value (released once
    /// [`Rollout::next_values`] is computed).
    pub next_obs: ObsStore,
    /// `V(s_T)`, computed when the rollout filled up, with the parameters that acted.
    pub next_values: Option<Vec<f32>>,
    /// Raw rewards of the last step (the next RL² `prev_reward`).
    pub last_raw_rewards: Vec<f32>,
    /// State `act` wrote at the last step (recurrent only).
    pub next_state: Vec<f32>,
    /// Context of the last step, reused for the bootstrap value.
    pub next_context: Vec<f32>,
}

impl Rollout {
    /// An empty rollout with room for `steps` steps.
    pub fn new(kind: ObsKind, obs_numel: usize, n: usize, steps: usize) -> Self {
        Rollout {
            n,
            obs_numel,
            steps: 0,
            obs: ObsStore::new(kind, steps * n * obs_numel),
            actions: Vec::with_capacity(steps * n),
            values: Vec::with_capacity(steps * n),
            logprobs: Vec::with_capacity(steps * n),
            rewards: Vec::with_capacity(steps * n),
            dones: Vec::with_capacity(steps * n),
            tasks: Vec::with_capacity(steps * n),
            states: Vec::new(),
            restarts: Vec::new(),
            prev_actions: Vec::new(),
            prev_rewards: Vec::new(),
            firsts: Vec::new(),
            contexts: Vec::new(),
            next_obs: ObsStore::new(kind, n * obs_numel),
            next_values: None,
            last_raw_rewards: Vec::new(),
            next_state: Vec::new(),
            next_context: Vec::new(),
        }
    }

    /// Drops everything recorded (keeps the allocations).
    pub fn clear(&mut self) {
        self.steps = 0;
        self.obs.clear();
        self.next_obs.clear();
        self.next_values = None;
        for v in [&mut self.values, &mut self.logprobs, &mut self.rewards, &mut self.states, &mut self.restarts] {
            v.clear();
        }
        for v in [&mut self.prev_rewards, &mut self.firsts, &mut self.contexts, &mut self.last_raw_rewards] {
            v.clear();
        }
        self.next_state.clear();
        self.next_context.clear();
        self.actions.clear();
        self.prev_actions.clear();
        self.dones.clear();
        self.tasks.clear();
    }

    /// Rows recorded.
    pub fn rows(&self) -> usize {
        self.steps * self.n
    }

    /// Bytes held by the rollout's arrays.
    pub fn bytes(&self) -> usize {
        self.obs.bytes()
            + self.next_obs.bytes()
            + 8 * (self.actions.len() + self.prev_actions.len() + self.tasks.len())
            + 4 * (self.values.len() + self.logprobs.len() + self.rewards.len() + self.states.len())
            + 4 * (self.restarts.len() + self.prev_rewards.len() + self.firsts.len() + self.contexts.len())
            + self.dones.len()
            + 4 * self.next_values.as_ref().map_or(0, Vec::len)
    }

    /// Frees the last step's observations (after [`Rollout::next_values`] is set); the next
    /// rollout allocates them again.
    pub fn release_next_obs(&mut self) {
        self.next_obs.release();
    }

    /// The rollout's observations as one `[rows, ...obs_shape]` tensor on the CPU, sharing
    /// the store's storage (no copy). Safe to keep: later records write other rows, or new
    /// values into rows a rollout no longer uses, never freed memory.
    pub fn obs_tensor(&self, obs_shape: &[i64]) -> Tensor {
        let mut shape = vec![self.rows() as i64];
        shape.extend_from_slice(obs_shape);
        self.obs.tensor().view(shape.as_slice())
    }

    /// The observations after the last step, `[n, ...obs_shape]`.
    pub fn next_obs_tensor(&self, obs_shape: &[i64]) -> Tensor {
        let mut shape = vec![self.n as i64];
        shape.extend_from_slice(obs_shape);
        self.next_obs.tensor().view(shape.as_slice())
    }
}

/// gym's `NormalizeReward` (as CleanRL's ppo_procgen uses it): rewards are divided by the
/// running standard deviation of each env's discounted return, then clipped to ±10.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardScale {
    /// Discount of the tracked return.
    pub gamma: f64,
    /// Running mean of the return (tracked for the variance; not subtracted).
    pub mean: f64,
    /// Running variance of the return.
    pub var: f64,
    /// Samples seen (starts at 1e-4, as gym's `RunningMeanStd`).
    pub count: f64,
    /// Each env's discounted return so far.
    pub returns: Vec<f64>,
}

impl RewardScale {
    /// Fresh statistics for `n` envs.
    pub fn new(gamma: f64, n: usize) -> Self {
        RewardScale { gamma, mean: 0.0, var: 1.0, count: 1e-4, returns: vec![0.0; n] }
    }

    /// Scales one step of rewards; `dones` restart the tracked returns.
    pub fn apply(&mut self, rewards: &[f32], dones: &[u8]) -> Vec<f32> {
        for (ret, &r) in self.returns.iter_mut().zip(rewards) {
            *ret = *ret * self.gamma + r as f64;
        }
        // Parallel-variance update with this batch (population variance), as RunningMeanStd.
        let n = self.returns.len() as f64;
        let batch_mean = self.returns.iter().sum::<f64>() / n;
        let batch_var = self.returns.iter().map(|x| (x - batch_mean).powi(2)).sum::<f64>() / n;
        let delta = batch_mean - self.mean;
        let total = self.count + n;
        let m2 = self.var * self.count + batch_var * n + delta * delta * self.count * n / total;
        self.mean += delta * n / total;
        self.var = m2 / total;
        self.count = total;
        let scale = 1.0 / (self.var + 1e-8).sqrt();
        for (ret, &d) in self.returns.iter_mut().zip(dones) {
            if d != 0 {
                *ret = 0.0;
            }
        }
        rewards.iter().map(|&r| ((r as f64) * scale).clamp(-10.0, 10.0) as f32).collect()
    }
}
