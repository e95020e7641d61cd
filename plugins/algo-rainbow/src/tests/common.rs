//! Test plumbing: the toy gridworld driven in-process by a Rainbow agent, with the kit
//! driver's act / step / record loop (and the env's true final observations).

use crate::RainbowAgent;
use metarl_env_gridworld::Gridworld;
use metarl_plugin_api::abi_stable::std_types::{RSlice, RSliceMut};
use metarl_plugin_api::prelude::*;

/// Gridworld frame side used by the tests: DER's two 5x5 stride-5 convolutions see 75 of its
/// 76 pixels (3x3x64 features), so every cell of a 4x4 grid (19 pixels each) is in view (at
/// 64 pixels they would drop the last 14 rows and columns).
pub const FRAME_PX: u32 = 76;

pub fn env_request(n: u32, tasks: &[u64], seed: u64) -> EnvRequest {
    EnvRequest {
        family: "gridworld".into(),
        tasks: tasks.to_vec().into(),
        num_envs: n,
        trials: 1,
        seed,
        threads: 1,
        config: format!("size = 4\nframe = {FRAME_PX}").into(),
    }
}

/// A request for the test gridworld's spaces; one libtorch thread (tests run two at a time
/// on two cores).
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

pub fn agent(n: u32, context_dim: u32, seed: u64, config: &str) -> RainbowAgent {
    RainbowAgent::new(&algo_request(n, context_dim, seed, config)).unwrap()
}

/// A small but complete configuration for fast tests: 51 atoms and every Rainbow part, with
/// a narrower hidden layer, shorter n, target period and warm-up.
pub const SMALL: &str = "hidden = 64\nmulti_step = 3\ntarget_update = 100\nlearning_starts = 200\nmemory_capacity = 5000\nbeta_updates = 2000";

/// Who picks the actions.
pub enum Policy<'a> {
    /// The agent under test.
    Agent,
    /// Uniformly random actions from an LCG state.
    Random(&'a mut u64),
    /// Given actions (one per env).
    Fixed(&'a [i32]),
    /// The agent under test, greedy with the noise off (evaluation).
    Greedy,
}

pub struct Loop {
    pub env: Gridworld,
    pub n: usize,
    pub obs: Vec<u8>,
    next_obs: Vec<u8>,
    final_obs: Vec<u8>,
    task: Vec<u64>,
    next_task: Vec<u64>,
    pub actions: Vec<i32>,
    reward: Vec<f32>,
    terminated: Vec<u8>,
    truncated: Vec<u8>,
    success: Vec<u8>,
    task_end: Vec<u8>,
    pub context: Vec<f32>,
    pub returns: Vec<f32>,
    /// Every action taken, in order.
    pub action_log: Vec<i32>,
}

impl Loop {
    pub fn new(req: &EnvRequest, reset_seed: u64, context_dim: usize) -> Self {
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
            final_obs: obs.clone(),
            obs,
            next_task: task.clone(),
            task,
            actions: vec![0; n],
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

    /// One batched step: the agent acts (or a random policy from `random`), the env steps,
    /// and the agent records when `record`.
    pub fn step(&mut self, agent: &mut RainbowAgent, random: Option<&mut u64>, record: bool) {
        match random {
            Some(s) => self.play(agent, Policy::Random(s), record),
            None => self.play(agent, Policy::Agent, record),
        }
    }

    /// One batched step with the given policy.
    pub fn play(&mut self, agent: &mut RainbowAgent, policy: Policy<'_>, record: bool) {
        match policy {
            Policy::Random(s) => {
                for a in &mut self.actions {
                    *s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    *a = ((*s >> 33) % metarl_env_gridworld::NUM_ACTIONS as u64) as i32;
                }
            }
            Policy::Fixed(log) => self.actions.copy_from_slice(&log[..self.n]),
            Policy::Agent | Policy::Greedy => agent
                .act(
                    ActInput {
                        context: self.context.as_slice().into(),
                        ..ActInput::observations(RSlice::from_slice(&[ArrayRef::new(self.obs.as_slice())]), matches!(policy, Policy::Greedy))
                    },
                    ActOutput {
                        actions: RSliceMut::from_mut_slice(&mut [ArrayMut::new(self.actions.as_mut_slice())]),
                        extras: RSliceMut::from_mut_slice(&mut []),
                    },
                )
                .unwrap(),
        }
        self.action_log.extend_from_slice(&self.actions);
        self.env
            .step(
                RSlice::from_slice(&[ArrayRef::new(self.actions.as_slice())]),
                StepBuffers {
                    final_obs: RSliceMut::from_mut_slice(&mut [ArrayMut::new(self.final_obs.as_mut_slice())]),
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
        if record {
            agent
                .record(Transitions {
                    obs: RSlice::from_slice(&[ArrayRef::new(self.obs.as_slice())]),
                    actions: RSlice::from_slice(&[ArrayRef::new(self.actions.as_slice())]),
                    rewards: self.reward.as_slice().into(),
                    terminated: self.terminated.as_slice().into(),
                    truncated: self.truncated.as_slice().into(),
                    next_obs: RSlice::from_slice(&[ArrayRef::new(self.next_obs.as_slice())]),
                    final_obs: RSlice::from_slice(&[ArrayRef::new(self.final_obs.as_slice())]),
                    task: self.task.as_slice().into(),
                    context: self.context.as_slice().into(),
                    ..Default::default()
                })
                .unwrap();
        }
        std::mem::swap(&mut self.obs, &mut self.next_obs);
        std::mem::swap(&mut self.task, &mut self.next_task);
        self.returns.extend(self.env.take_episodes().iter().map(|e| e.ret));
    }

    /// `steps` steps of off-policy training as the kit's loop does it: record every step,
    /// update after each once `learning_starts` steps are in. Returns the update losses.
    pub fn train(&mut self, agent: &mut RainbowAgent, steps: usize, recorded: &mut u64, tasks: &[u64]) -> Vec<f64> {
        let mut losses = Vec::new();
        for _ in 0..steps {
            self.step(agent, None, true);
            *recorded += self.n as u64;
            if *recorded >= agent.info().learning_starts {
                let stats = agent.update(&plan(agent, tasks)).unwrap();
                losses.push(stats.scalars.iter().find(|s| s.name.as_str() == "loss").map_or(f64::NAN, |s| s.value));
            }
        }
        losses
    }
}

/// The kit's default off-policy plan: the batch divided evenly among `tasks`.
pub fn plan(agent: &RainbowAgent, tasks: &[u64]) -> UpdatePlan {
    let info = agent.info();
    UpdatePlan::off_policy(tasks.to_vec(), (info.batch_size / tasks.len() as u32).max(1), info.grad_steps)
}

pub fn mean(xs: &[f32]) -> f64 {
    xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len().max(1) as f64
}
