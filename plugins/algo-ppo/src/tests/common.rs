//! Test plumbing: the toy gridworld driven in-process by a PPO agent, with the same
//! act / step / record / reset-memory-at-episode-end loop as `metarl_plugin_api::driver`.

use crate::PpoAgent;
use metarl_env_gridworld::Gridworld;
use metarl_plugin_api::abi_stable::std_types::{RSlice, RSliceMut};
use metarl_plugin_api::prelude::*;

/// Frame side of the test gridworld: 8 pixels per cell on a 4x4 grid keeps the tests fast.
pub const FRAME_PX: u32 = 32;

pub fn env_request(family: &str, n: u32, tasks: &[u64], seed: u64) -> EnvRequest {
    EnvRequest {
        family: family.into(),
        tasks: tasks.to_vec().into(),
        num_envs: n,
        trials: 1,
        seed,
        threads: 1,
        config: format!("size = 4\nframe = {FRAME_PX}").into(),
    }
}

/// A request for the test gridworld's spaces. Tests run two at a time on two cores, so each
/// agent gets one libtorch thread (more would oversubscribe the cores).
pub fn algo_request(n: u32, context_dim: u32, seed: u64, config: &str) -> AlgoRequest {
    AlgoRequest {
        obs: ObsSpace::image(FRAME_PX, FRAME_PX, 3),
        action: ActionSpace::discrete(metarl_env_gridworld::NUM_ACTIONS),
        num_envs: n,
        context_dim,
        seed,
        device: "cpu".into(),
        threads: 1,
        config: config.into(),
    }
}

pub fn agent(n: u32, context_dim: u32, seed: u64, config: &str) -> PpoAgent {
    // As the metarl host does at start; without it large tensors are re-faulted every step.
    metarl_plugin_kit::process::keep_freed_memory();
    PpoAgent::new(&algo_request(n, context_dim, seed, config)).unwrap()
}

/// Who picks the actions.
pub enum Policy<'a> {
    /// The agent under test.
    Ppo(&'a mut PpoAgent),
    /// Uniformly random actions (the baseline), from an LCG state.
    Random(u64),
    /// Replays logged actions (to bring a second env copy into the same state).
    Replay(&'a [i32], usize),
}

pub struct Loop {
    pub env: Gridworld,
    pub n: usize,
    pub obs: Vec<u8>,
    next_obs: Vec<u8>,
    task: Vec<u64>,
    next_task: Vec<u64>,
    actions: Vec<i32>,
    prev_actions: Vec<i32>,
    prev_reward: Vec<f32>,
    first: Vec<u8>,
    pub state: Vec<f32>,
    state_before: Vec<f32>,
    extras: Vec<f32>,
    reward: Vec<f32>,
    terminated: Vec<u8>,
    truncated: Vec<u8>,
    success: Vec<u8>,
    task_end: Vec<u8>,
    pub context: Vec<f32>,
    pub returns: Vec<f32>,
    pub action_log: Vec<i32>,
}

impl Loop {
    pub fn new(req: &EnvRequest, reset_seed: u64, state_dim: usize, context_dim: usize) -> Self {
        let mut env = Gridworld::new(req).unwrap();
        let n = req.num_envs as usize;
        let frame = (FRAME_PX * FRAME_PX * 3) as usize;
        let mut obs = vec![0u8; n * frame];
        let mut task = vec![0u64; n];
        env.reset(reset_seed, ResetBuffers { obs: RSliceMut::from_mut_slice(&mut [ArrayMut::new(obs.as_mut_slice())]), task: task.as_mut_slice().into() })
            .unwrap();
        Loop {
            env,
            n,
            next_obs: obs.clone(),
            obs,
            next_task: task.clone(),
            task,
            actions: vec![0; n],
            prev_actions: vec![0; n],
            prev_reward: vec![0.0; n],
            first: vec![1; n],
            state: vec![0.0; n * state_dim],
            state_before: vec![0.0; n * state_dim],
            extras: vec![0.0; n * 2],
            reward: vec![0.0; n],
            terminated: vec![0; n],
            truncated: vec![0; n],
            success: vec![0; n],
            task_end: vec![0; n],
            context: (0..n * context_dim).map(|i| ((i % 7) as f32 - 3.0) / 3.0).collect(),
            returns: Vec::new(),
            action_log: Vec::new(),
        }
    }

    /// One batched step; records into the agent when it is PPO and `record`.
    pub fn step(&mut self, policy: &mut Policy<'_>, record: bool) {
        self.state_before.copy_from_slice(&self.state);
        match policy {
            Policy::Ppo(agent) => agent
                .act(
                    ActInput {
                        obs: RSlice::from_slice(&[ArrayRef::new(self.obs.as_slice())]),
                        state: self.state.as_mut_slice().into(),
                        prev_action: RSlice::from_slice(&[ArrayRef::new(self.prev_actions.as_slice())]),
                        prev_reward: self.prev_reward.as_slice().into(),
                        first: self.first.as_slice().into(),
                        context: self.context.as_slice().into(),
                        deterministic: false,
                    },
                    ActOutput {
                        actions: RSliceMut::from_mut_slice(&mut [ArrayMut::new(self.actions.as_mut_slice())]),
                        extras: self.extras.as_mut_slice().into(),
                    },
                )
                .unwrap(),
            Policy::Random(s) => {
                for a in &mut self.actions {
                    *s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    *a = ((*s >> 33) % metarl_env_gridworld::NUM_ACTIONS as u64) as i32;
                }
            }
            Policy::Replay(log, at) => {
                self.actions.copy_from_slice(&log[*at..*at + self.n]);
                *at += self.n;
            }
        }
        self.action_log.extend_from_slice(&self.actions);
        self.env
            .step(
                RSlice::from_slice(&[ArrayRef::new(self.actions.as_slice())]),
                StepBuffers {
                    final_obs: Default::default(),
                    obs: RSliceMut::from_mut_slice(&mut [ArrayMut::new(self.next_obs.as_mut_slice())]),
                    reward: self.reward.as_mut_slice().into(),
                    terminated: self.terminated.as_mut_slice().into(),
                    truncated: self.truncated.as_mut_slice().into(),
                    success: self.success.as_mut_slice().into(),
                    task_end: self.task_end.as_mut_slice().into(),
                    task: self.next_task.as_mut_slice().into(),
                },
            )
            .unwrap();
        if let (Policy::Ppo(agent), true) = (policy, record) {
            agent
                .record(Transitions {
                    obs: RSlice::from_slice(&[ArrayRef::new(self.obs.as_slice())]),
                    actions: RSlice::from_slice(&[ArrayRef::new(self.actions.as_slice())]),
                    extras: self.extras.as_slice().into(),
                    rewards: self.reward.as_slice().into(),
                    terminated: self.terminated.as_slice().into(),
                    truncated: self.truncated.as_slice().into(),
                    next_obs: RSlice::from_slice(&[ArrayRef::new(self.next_obs.as_slice())]),
                    state: self.state_before.as_slice().into(),
                    task: self.task.as_slice().into(),
                    ..Default::default()
                })
                .unwrap();
        }
        std::mem::swap(&mut self.obs, &mut self.next_obs);
        std::mem::swap(&mut self.task, &mut self.next_task);
        std::mem::swap(&mut self.prev_actions, &mut self.actions);
        self.prev_reward.copy_from_slice(&self.reward);
        let sd = self.state.len() / self.n;
        for i in 0..self.n {
            let end = self.terminated[i] | self.truncated[i];
            self.first[i] = end;
            if end == 1 {
                self.state[i * sd..(i + 1) * sd].fill(0.0);
                self.prev_reward[i] = 0.0;
                self.prev_actions[i] = 0;
            }
        }
        self.returns.extend(self.env.take_episodes().iter().map(|e| e.ret));
    }

    /// `steps` recorded steps then one update; returns the update's scalars.
    pub fn train_iteration(&mut self, agent: &mut PpoAgent, steps: usize) -> Vec<(String, f64)> {
        for _ in 0..steps {
            self.step(&mut Policy::Ppo(agent), true);
        }
        let stats = agent.update(&plan(agent)).unwrap();
        stats.scalars.iter().map(|s| (s.name.to_string(), s.value)).collect()
    }
}

/// An ordinary update: the agent's configured epochs over the whole rollout.
pub fn plan(agent: &PpoAgent) -> UpdatePlan {
    UpdatePlan::on_policy(agent.info().grad_steps)
}

pub fn mean(xs: &[f32]) -> f64 {
    xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len().max(1) as f64
}
