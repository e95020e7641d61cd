//! `metaworld`: Meta-World 3.1.1 (Yu et al. 2019; MuJoCo) as a metarl env plugin.
//!
//! The simulator runs in a Python server (`python/metaworld_server.py`) behind metarl's
//! simulator bridge (`metarl-sim-bridge`): one server per batched env, driving its `num_envs`
//! copies in lockstep. This crate owns what the host sees: the task family and suites, the
//! spaces, config checks, and the translation between the bridge's arrays and the ABI's
//! buffers. A server that crashes or stops answering fails the call in one line with its last
//! stderr lines; the next `reset` starts a new one.
//!
//! **Tasks** are Meta-World's 50 v3 tasks by name (`metaworld:pick-place`), with the suites
//! `ml10-train`, `ml10-test`, `ml45-train`, `ml45-test` and `mt10` as named sets. Each episode
//! draws one of the task's 50 goal variations (Meta-World's ML1 training variations).
//!
//! **Observations**, as named parts, for each of up to 3 cameras (`corner` by default; none
//! renders nothing, for state-based use): `<cam>_rgb`
//! (u8, size × size × 3), `<cam>_point_cloud` (f32, size × size × 3, world frame, back-projected
//! from MuJoCo's metric depth; `point_clouds = false` leaves it out), `<cam>_intrinsics` (3 × 3:
//! f = ½ size / tan(fovy / 2), principal point at the image centre, pixel centres at +½) and
//! `<cam>_extrinsics` (4 × 4 camera-to-world in MuJoCo's camera convention: x right, y up, looking
//! along −z); then `proprio` (hand xyz, gripper opening, time as step / max_steps) and, with
//! `state = true`, Meta-World's 39-d `state`.
//!
//! **Actions** (`action_mode`):
//! - `native`: Meta-World's own, `delta`, 4 floats in [−1, 1]: Δxyz of the hand (1 cm per unit)
//!   and the grip effort; one physics step each; episodes of up to 500 steps;
//! - `keyframe`: C2F-ARM's analogue of RLBench's `MoveArmThenGripper(EndEffectorPoseViaPlanning(),
//!   Discrete())`: `target`, a hand position within Meta-World's reach ([−0.5, 0.4, 0.05] to
//!   [0.5, 1.0, 0.5]), and `gripper` (0 open, 1 closed). First the arm: the server's PD
//!   controller (gain 50, damping 100, at most 1 cm a step; its set point, Meta-World's mocap,
//!   starting at the hand) drives the hand there with the gripper as it was, until within
//!   2 mm and slower than 1 mm a step, or blocked (still for 3 steps). Then, if
//!   the command changes it, the gripper, with the hand held, until the fingers stop (up to 20
//!   steps kept for it). At most `keyframe_steps` physics steps (50) in all; episodes of
//!   `max_steps` such macro-steps (10 by default). The hand's orientation is fixed in
//!   Meta-World, so a keyframe has no rotation.
//!
//! **Rewards**: sparse success (1 on every step the task is solved, the study's setting) or
//! Meta-World's dense reward (`reward = "dense"`). An episode ends when the task is solved
//! (`terminate_on_success`, terminal) or after `max_steps` (at most Meta-World's 500,
//! truncation, with the true last observation in `final_obs`).
//!
//! **Demonstrations** come from Meta-World's scripted experts (`metaworld.policies`): an expert
//! episode that does not solve the task within `max_steps` is dropped and counted in the log,
//! not returned. In keyframe mode the expert plays natively (without rendering), its keyframes
//! are taken at its waypoint switches (where the branch of its scripted plan it runs changes,
//! and the new branch lasts 3 steps), where its fingers settle after a grasp or release, and at
//! its last state (it plays on up to 5 steps past its first success while the task stays
//! solved), each with the gripper command in force there, and the demo is their replay with
//! the keyframe controller from the same start; a replay that fails is dropped.
//!
//! **Demo augmentation** (keyframe mode; C2F-ARM's, stepjam/ARM's every 10th frame): while a
//! kept demo is replayed, every `demo_augmentation`-th physics step (10; 0: none) is also a
//! start state, whose trajectory goes on through the keyframes still ahead of it. These
//! augmented trajectories come after all the demos of the call, so `demos(task, n, seed)`
//! returns up to `n` demos and then their augmented trajectories.

pub mod tasks;

use std::time::Duration;

use metarl_plugin_api::abi_stable::std_types::RVec;
use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::parse_config;
use metarl_sim_bridge::{find_python, parts, Blob, Launch, Reply, Server};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The server's source, appended to the bridge's Python side.
const SERVER: &str = include_str!("../python/metaworld_server.py");
/// Meta-World's own episode limit.
const MAX_PATH_LENGTH: u32 = 500;
/// Demonstrations, trials, and the true last observation of a truncated episode.
const CAPS: Caps = Caps(Caps::ENV_DEMOS.0 | Caps::ENV_FINAL_OBS.0);
/// The hand's reach in every Meta-World task (`mocap_low`, `mocap_high`): a keyframe's bounds.
const REACH_LOW: [f32; 3] = [-0.5, 0.4, 0.05];
/// See [`REACH_LOW`].
const REACH_HIGH: [f32; 3] = [0.5, 1.0, 0.5];
/// Meta-World's cameras.
pub const CAMERAS: [&str; 7] = ["topview", "corner", "corner2", "corner3", "corner4", "behindGripper", "gripperPOV"];

/// Config keys, all optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Up to 3 of [`CAMERAS`] (none: no rendering, a state-based env).
    pub cameras: Vec<String>,
    /// Image side in pixels.
    pub size: u32,
    /// Include each camera's world-frame point cloud.
    pub point_clouds: bool,
    /// Include Meta-World's 39-d state vector.
    pub state: bool,
    /// `sparse` (success, the study's) or `dense` (Meta-World's shaped reward).
    pub reward: String,
    /// End the episode (terminal) on the step the task is solved.
    pub terminate_on_success: bool,
    /// Steps (macro-steps in keyframe mode) after which an episode is truncated (default: 500
    /// native, Meta-World's own limit; 10 keyframes).
    pub max_steps: Option<u32>,
    /// `native` (Meta-World's 4-d hand delta and grip) or `keyframe` (a target hand position and
    /// a gripper command, reached by a controller).
    pub action_mode: String,
    /// Keyframe mode: physics steps a keyframe may take at most.
    pub keyframe_steps: u32,
    /// Keyframe mode: physics steps between the augmented start states of a demo (0: none).
    pub demo_augmentation: u32,
    /// MuJoCo's OpenGL back-end for headless rendering: `egl` or `osmesa`.
    pub mujoco_gl: String,
    /// The Python to run the server with (default: `$METARL_PYTHON`, else the project venv's).
    pub python: Option<String>,
    /// Seconds to wait for any answer of the server before it is killed.
    pub timeout_s: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cameras: vec!["corner".into()],
            size: 64,
            point_clouds: true,
            state: false,
            reward: "sparse".into(),
            terminate_on_success: true,
            max_steps: None,
            action_mode: "native".into(),
            keyframe_steps: 50,
            demo_augmentation: 10,
            mujoco_gl: "egl".into(),
            python: None,
            timeout_s: 120.0,
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), String> {
        if self.cameras.len() > 3 {
            return Err(format!("metaworld config: cameras must name at most 3 cameras, got {}", self.cameras.len()));
        }
        if let Some(c) = self.cameras.iter().find(|c| !CAMERAS.contains(&c.as_str())) {
            return Err(format!("metaworld config: unknown camera '{c}' (Meta-World's cameras: {})", CAMERAS.join(", ")));
        }
        if !(16..=512).contains(&self.size) {
            return Err(format!("metaworld config: size must be within 16..=512 pixels, got {}", self.size));
        }
        if self.reward != "sparse" && self.reward != "dense" {
            return Err(format!("metaworld config: reward must be 'sparse' or 'dense', got '{}'", self.reward));
        }
        match self.action_mode.as_str() {
            "native" if self.max_steps() > MAX_PATH_LENGTH || self.max_steps() == 0 => {
                return Err(format!("metaworld config: max_steps must be within 1..={MAX_PATH_LENGTH}, got {}", self.max_steps()));
            }
            "keyframe" if self.keyframe_steps == 0 || self.max_steps() == 0 || self.max_steps() * self.keyframe_steps > MAX_PATH_LENGTH => {
                return Err(format!(
                    "metaworld config: max_steps x keyframe_steps must be within 1..={MAX_PATH_LENGTH} (Meta-World's limit of physics steps), got {} x {}",
                    self.max_steps(),
                    self.keyframe_steps
                ));
            }
            "native" | "keyframe" => {}
            other => return Err(format!("metaworld config: action_mode must be 'native' or 'keyframe', got '{other}'")),
        }
        if self.mujoco_gl != "egl" && self.mujoco_gl != "osmesa" {
            return Err(format!("metaworld config: mujoco_gl must be 'egl' or 'osmesa', got '{}'", self.mujoco_gl));
        }
        if !(self.timeout_s > 0.0 && self.timeout_s.is_finite()) {
            return Err("metaworld config: timeout_s must be a positive number of seconds".into());
        }
        Ok(())
    }

    /// Steps (or keyframes) per episode.
    pub fn max_steps(&self) -> u32 {
        self.max_steps.unwrap_or(if self.action_mode == "keyframe" { 10 } else { MAX_PATH_LENGTH })
    }

    /// The observation space of one env.
    pub fn obs_space(&self) -> Space {
        let s = self.size;
        let mut parts = Vec::new();
        for c in &self.cameras {
            parts.push(Part::new(&format!("{c}_rgb"), Role::IMAGE, Dtype::U8, &[s, s, 3]));
            if self.point_clouds {
                parts.push(Part::new(&format!("{c}_point_cloud"), Role::POINT_CLOUD, Dtype::F32, &[s, s, 3]));
            }
            parts.push(Part::new(&format!("{c}_intrinsics"), Role::CAMERA_INTRINSICS, Dtype::F32, &[3, 3]));
            parts.push(Part::new(&format!("{c}_extrinsics"), Role::CAMERA_EXTRINSICS, Dtype::F32, &[4, 4]));
        }
        parts.push(Part::new("proprio", Role::VECTOR, Dtype::F32, &[5]));
        if self.state {
            parts.push(Part::new("state", Role::VECTOR, Dtype::F32, &[39]));
        }
        Space::of(parts)
    }

    /// The action space of one env.
    pub fn action_space(&self) -> Space {
        if self.action_mode == "keyframe" {
            return Space::of(vec![
                Part { low: REACH_LOW.to_vec().into(), high: REACH_HIGH.to_vec().into(), ..Part::new("target", Role::POSE, Dtype::F32, &[3]) },
                Part { choices: 2, ..Part::new("gripper", Role::DISCRETE, Dtype::I32, &[]) },
            ]);
        }
        Space::of(vec![Part { low: vec![-1.0; 4].into(), high: vec![1.0; 4].into(), ..Part::new("delta", Role::CONTINUOUS, Dtype::F32, &[4]) }])
    }

    /// What the server is told.
    fn server_config(&self) -> Value {
        json!({
            "cameras": self.cameras, "size": self.size, "point_clouds": self.point_clouds, "state": self.state,
            "reward": self.reward, "terminate_on_success": self.terminate_on_success, "max_steps": self.max_steps(),
            "action_mode": self.action_mode, "keyframe_steps": self.keyframe_steps,
            "demo_augmentation": if self.action_mode == "keyframe" { self.demo_augmentation } else { 0 },
        })
    }
}

/// A batch of Meta-World envs served by one server process.
pub struct MetaWorld {
    cfg: Config,
    launch: Launch,
    server: Option<Server>,
    tasks: Vec<u64>,
    num_envs: usize,
    obs: Space,
    finished: Vec<EpisodeStat>,
}

fn invalid(msg: impl std::fmt::Display) -> PluginError {
    PluginError::invalid(msg)
}

fn failed(msg: impl std::fmt::Display) -> PluginError {
    PluginError::failed(msg)
}

impl MetaWorld {
    /// The server, started (and every task's env built in it, so bad names fail at once) if
    /// there is none. A dead one stays until `reset` replaces it: its copies' episodes are gone,
    /// so only a reset may go on with a new server.
    fn connect(&mut self) -> Result<&mut Server, PluginError> {
        if self.server.is_some() {
            return Ok(self.server.as_mut().expect("checked"));
        }
        let mut server = Server::start(self.launch.clone()).map_err(failed)?;
        let mut f = Map::new();
        f.insert("config".into(), self.cfg.server_config());
        f.insert("tasks".into(), json!(self.tasks.iter().map(|&t| tasks::TASKS[t as usize]).collect::<Vec<_>>()));
        f.insert("num_envs".into(), json!(self.num_envs));
        server.call("init", f, &[]).map_err(|e| failed(rendering_hint(&e, &self.cfg.mujoco_gl)))?;
        Ok(self.server.insert(server))
    }

    fn call(&mut self, op: &str, fields: Map<String, Value>, arrays: &[Blob]) -> Result<Reply, PluginError> {
        let gl = self.cfg.mujoco_gl.clone();
        self.connect()?.call(op, fields, arrays).map_err(|e| failed(rendering_hint(&e, &gl)))
    }

    /// Copies the reply's `prefix`-named parts into rows `rows` of `out`.
    fn copy_parts(&self, reply: &Reply, prefix: &str, out: &mut [ArrayMut<'_>], rows: &[usize]) -> Result<(), PluginError> {
        parts::fill_parts("metaworld", &self.obs, reply, prefix, out, rows)
    }

    /// The batch's actions as the server takes them: 4 floats per env (the hand delta and grip,
    /// or the keyframe's target and 0/1 gripper).
    fn server_actions(&self, actions: &Arrays<'_>) -> Result<Vec<f32>, PluginError> {
        let n = self.num_envs;
        if self.cfg.action_mode == "keyframe" {
            let (Some(t), Some(g)) = (actions.first().and_then(|a| a.f32()), actions.get(1).and_then(|a| a.i32())) else {
                return Err(invalid("metaworld keyframe actions are two parts: target (3 floats) and gripper (0 or 1) per env"));
            };
            if t.len() != n * 3 || g.len() != n || t.iter().any(|x| !x.is_finite()) || g.iter().any(|&x| x != 0 && x != 1) {
                return Err(invalid(format!("metaworld keyframe actions: expected {n} finite targets of 3 and {n} gripper values of 0 or 1")));
            }
            let mut out = Vec::with_capacity(n * 4);
            for i in 0..n {
                for (j, (lo, hi)) in REACH_LOW.iter().zip(REACH_HIGH).enumerate() {
                    out.push(t[i * 3 + j].clamp(*lo, hi));
                }
                out.push(g[i] as f32);
            }
            return Ok(out);
        }
        let a = actions.first().and_then(|a| a.f32()).ok_or_else(|| invalid("metaworld actions are one part of 4 floats per env"))?;
        if a.len() != n * 4 || a.iter().any(|x| !x.is_finite()) {
            return Err(invalid(format!("metaworld actions: expected {} finite floats ({n} envs x 4), got {}", n * 4, a.len())));
        }
        Ok(a.to_vec())
    }

    fn task_ids(&self, reply: &Reply) -> Result<Vec<u64>, PluginError> {
        let idx = reply.fields.get("tasks").and_then(|t| t.as_array()).ok_or_else(|| failed("metaworld server: no task list"))?;
        idx.iter().map(|i| i.as_u64().and_then(|i| self.tasks.get(i as usize).copied()).ok_or_else(|| failed("metaworld server: bad task index"))).collect()
    }
}

/// A rendering failure's message, with what to install or set.
fn rendering_hint(e: &str, gl: &str) -> String {
    let lower = e.to_lowercase();
    if lower.contains("egl") || lower.contains("osmesa") || lower.contains("opengl") || lower.contains("gl context") {
        format!(
            "{e} (headless rendering with MUJOCO_GL={gl} failed: install Mesa's EGL (apt-get install libegl1 libgl1-mesa-dri) or OSMesa (apt-get install libosmesa6) and set mujoco_gl to match; .ci/setup installs both)"
        )
    } else {
        e.to_string()
    }
}

impl Env for MetaWorld {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            obs: self.obs.clone(),
            action: self.cfg.action_space(),
            num_envs: self.num_envs as u32,
            max_episode_steps: self.cfg.max_steps(),
            caps: CAPS,
        }
    }

    fn reset(&mut self, seed: u64, mut out: ResetBuffers<'_>) -> Result<(), PluginError> {
        // A dead server (crashed, or killed after a timeout) is replaced here.
        if self.server.as_ref().is_some_and(|s| !s.alive()) {
            log::warn!("metaworld: starting a new server after the last one died");
            self.server = None;
        }
        let mut f = Map::new();
        f.insert("seed".into(), json!(seed));
        let reply = self.call("reset", f, &[])?;
        let rows: Vec<usize> = (0..self.num_envs).collect();
        self.copy_parts(&reply, "", out.obs.as_mut_slice(), &rows)?;
        let ids = self.task_ids(&reply)?;
        out.task.copy_from_slice(&ids);
        self.finished.clear();
        Ok(())
    }

    fn step(&mut self, actions: Arrays<'_>, mut out: StepBuffers<'_>) -> Result<(), PluginError> {
        let n = self.num_envs;
        let a = self.server_actions(&actions)?;
        let reply = self.call("step", Map::new(), &[Blob::f32("actions", &[n, 4], &a)])?;
        let rows: Vec<usize> = (0..n).collect();
        self.copy_parts(&reply, "", out.obs.as_mut_slice(), &rows)?;
        let final_rows: Vec<usize> = reply.fields.get("final_rows").and_then(|v| v.as_array()).map_or(Vec::new(), |v| v.iter().filter_map(|x| x.as_u64().map(|x| x as usize)).collect());
        if !final_rows.is_empty() && !out.final_obs.is_empty() {
            self.copy_parts(&reply, "final_", out.final_obs.as_mut_slice(), &final_rows)?;
        }
        let flags = |name: &str| -> Result<Vec<u8>, PluginError> { Ok(reply.array(name).map_err(failed)?.bytes.clone()) };
        out.reward.copy_from_slice(&reply.array("reward").map_err(failed)?.to_f32().ok_or_else(|| failed("bad rewards"))?);
        out.terminated.copy_from_slice(&flags("terminated")?);
        out.truncated.copy_from_slice(&flags("truncated")?);
        let success = flags("success")?;
        out.task_end.copy_from_slice(&vec![0; n]);
        let ended: Vec<u8> = (0..n).map(|i| out.terminated[i] | out.truncated[i]).collect();
        for i in 0..n {
            out.success[i] = success[i] & ended[i];
            out.task_end[i] = ended[i];
        }
        let ids = self.task_ids(&reply)?;
        out.task.copy_from_slice(&ids);
        for e in reply.fields.get("episodes").and_then(|v| v.as_array()).into_iter().flatten() {
            let task = e["task"].as_u64().and_then(|i| self.tasks.get(i as usize).copied()).unwrap_or(0);
            self.finished.push(EpisodeStat {
                env: e["env"].as_u64().unwrap_or(0) as u32,
                task,
                ret: e["ret"].as_f64().unwrap_or(0.0) as f32,
                len: e["len"].as_u64().unwrap_or(0) as u32,
                success: e["success"].as_bool().unwrap_or(false),
            });
        }
        Ok(())
    }

    fn take_episodes(&mut self) -> Vec<EpisodeStat> {
        std::mem::take(&mut self.finished)
    }

    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> Result<Vec<Trajectory>, PluginError> {
        let name = *tasks::TASKS.get(task as usize).ok_or_else(|| invalid(format!("demos: task {task} is out of range")))?;
        if !self.tasks.contains(&task) {
            return Err(invalid(format!("demos: task '{name}' is not one of this env's tasks")));
        }
        let mut f = Map::new();
        f.insert("task".into(), json!(name));
        f.insert("episodes".into(), json!(episodes));
        f.insert("seed".into(), json!(seed));
        let reply = self.call("demos", f, &[])?;
        let lengths: Vec<usize> = reply.fields["lengths"].as_array().into_iter().flatten().filter_map(|l| l.as_u64().map(|l| l as usize)).collect();
        let dropped = reply.fields["dropped"].as_u64().unwrap_or(0);
        let replays = reply.fields.get("replay_failed").and_then(|v| v.as_u64()).unwrap_or(0);
        let augmented = reply.fields.get("augmented").and_then(|v| v.as_u64()).unwrap_or(0);
        if augmented > 0 {
            log::info!(
                "metaworld: {} demos of '{name}' and {augmented} augmented trajectories (a start every {} physics steps)",
                lengths.len() as u64 - augmented,
                self.cfg.demo_augmentation
            );
        }
        if dropped > 0 {
            log::warn!(
                "metaworld: {dropped} of {episodes} expert episodes of '{name}' were dropped ({replays} of them solved natively but not when replayed as keyframes)"
            );
        }
        let mut out = Vec::new();
        for (k, &len) in lengths.iter().enumerate() {
            let obs = parts::demo_obs("metaworld", &self.obs, &reply, k, len)?;
            let actions = reply.array(&format!("d{k}_actions")).map_err(failed)?.to_f32().ok_or_else(|| failed("bad demo actions"))?;
            let rewards = reply.array(&format!("d{k}_rewards")).map_err(failed)?.to_f32().ok_or_else(|| failed("bad demo rewards"))?;
            let actions: RVec<Array> = if self.cfg.action_mode == "keyframe" {
                // Rows of (target xyz, gripper) into the two parts.
                let target: Vec<f32> = actions.chunks_exact(4).flat_map(|r| r[..3].to_vec()).collect();
                let gripper: Vec<i32> = actions.chunks_exact(4).map(|r| r[3].round() as i32).collect();
                vec![Array::from_slice(&target), Array::from_slice(&gripper)].into()
            } else {
                vec![Array::from_slice(&actions)].into()
            };
            out.push(Trajectory { task, obs, actions, rewards: rewards.into(), success: true });
        }
        Ok(out)
    }
}

/// The plugin.
pub struct MetaWorldPlugin;

impl PluginFactory for MetaWorldPlugin {
    const KIND: PluginKind = PluginKind::ENV;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "metaworld".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::ENV,
            description: "Meta-World 3.1.1 on MuJoCo (Python server): camera RGB, point clouds, proprioception, sparse success, expert demos".into(),
            caps: CAPS,
            families: vec![TaskFamily {
                name: tasks::FAMILY.into(),
                description: "Meta-World's 50 v3 manipulation tasks, each with 50 goal variations".into(),
                tasks: TaskSet::named(&tasks::TASKS),
            }]
            .into(),
            requires: Caps::NONE,
        }
    }

    fn task_sets() -> Vec<NamedTaskSet> {
        tasks::suites().into_iter().map(|(s, ids)| NamedTaskSet::new(tasks::FAMILY, s.name, s.description, ids)).collect()
    }

    fn new_env(req: &EnvRequest) -> Result<Box<dyn Env>, PluginError> {
        Ok(Box::new(MetaWorld::open(req)?))
    }
}

impl MetaWorld {
    /// Checks the request and config, starts the server and builds every task's env in it.
    pub fn open(req: &EnvRequest) -> Result<MetaWorld, PluginError> {
        let cfg: Config = parse_config("metaworld", &req.config)?;
        cfg.check().map_err(invalid)?;
        let tasks = parts::request_tasks(req, "metaworld", tasks::FAMILY, tasks::TASKS.len())?;
        let python = find_python(cfg.python.as_deref(), "metaworld").map_err(|e| invalid(format!("metaworld: {e}")))?;
        let launch = Launch {
            name: "metaworld".into(),
            python,
            source: SERVER.into(),
            env: vec![("MUJOCO_GL".into(), cfg.mujoco_gl.clone()), ("PYOPENGL_PLATFORM".into(), cfg.mujoco_gl.clone())],
            timeout: Duration::from_secs_f64(cfg.timeout_s),
        };
        let obs = cfg.obs_space();
        let mut env = MetaWorld { cfg, launch, server: None, tasks, num_envs: req.num_envs.max(1) as usize, obs, finished: Vec::new() };
        env.connect()?;
        Ok(env)
    }

    /// The process id of the server, while one runs.
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().filter(|s| s.alive()).map(Server::pid)
    }
}

metarl_plugin_api::export_plugin!(MetaWorldPlugin);
