//! `rlbench`: RLBench (James et al. 2020; CoppeliaSim through PyRep) as a metarl env plugin,
//! faithful to RLBench's public API, for machines that have CoppeliaSim.
//!
//! **Never run against real RLBench here.** RLBench, PyRep and CoppeliaSim cannot be installed on
//! the machines this was written on. The server's mapping of RLBench's API was tested against a
//! stand-in package with RLBench's shapes (`tests/standin/`), placed on `PYTHONPATH` by the tests
//! only; the README's RLBench section says how to install the real thing.
//!
//! The simulator runs in Python servers (`python/rlbench_server.py`) behind metarl's simulator
//! bridge (`metarl-sim-bridge`). RLBench runs one CoppeliaSim per process, so each env copy has
//! its own server, and a batch of N copies is N servers stepped one after the other; demos come
//! from one more server, started when first asked, so that they never disturb a copy's episode.
//! Before anything is built, the first server answers a cheap `probe`: where RLBench cannot run
//! (no `rlbench` or `pyrep` package, `COPPELIASIM_ROOT` unset, no X server), construction fails
//! in one line naming what is missing.
//!
//! **Tasks** are RLBench task files by name (`rlbench:push_button`): the study's 11 (ids 0..=10)
//! and the rest of RLBench's tasks ([`tasks`]), with the named set `study-11`. An episode plays
//! one task drawn from the request's list and one of its variations
//! (`task.sample_variation()`), both from a generator of (reset seed, copy).
//!
//! **Observations**, as named parts, for each camera of `cameras` (front, left_shoulder,
//! right_shoulder, overhead, wrist; all by default): `<cam>_rgb` (u8, size × size × 3),
//! `<cam>_point_cloud` (f32, size × size × 3, RLBench's world-frame point cloud),
//! `<cam>_intrinsics` (3 × 3) and `<cam>_extrinsics` (4 × 4, camera to world), from
//! `obs.misc['<cam>_camera_intrinsics' / '_extrinsics']`; then `low_dim`, C2F-ARM's 11-d
//! proprioception: gripper open, gripper pose (xyz, quaternion xyzw), the two finger joints
//! (clipped to [0, 0.04] as C2F-ARM does) and the time, (1 − t / (max_steps − 1)) · 2 − 1 after t
//! steps.
//!
//! **Actions**: `MoveArmThenGripper(EndEffectorPoseViaPlanning(), Discrete())`, as the parts
//! `pose` (7 floats: target xyz and quaternion xyzw, normalised by the server; bounds are
//! C2F-ARM's scene bounds, informative only) and `gripper` (discrete 2: 1 opens, 0 closes),
//! concatenated into RLBench's 8-d action (RLBench 1.2's action-mode API). An IK or
//! path-planning failure (`InvalidActionError`, or PyRep's `ConfigurationPathError`/`IKError`,
//! the three C2F-ARM's env catches) ends the episode, terminal, with reward 0.
//!
//! **Episodes** end when RLBench says `terminate`, or are truncated after `max_steps` (10, the
//! study's) with the true last observation in `final_obs`; success is a reward ≥ 1 on the last
//! step (RLBench's reward is sparse: `float(task.success())`).
//!
//! **Demonstrations**: `task.get_demos(n, live_demos=True)`, or stored ones from `dataset_root`
//! (RLBench's layout), as C2F-ARM's keyframe transitions (see `keyframes` in the server).

pub mod tasks;

use std::time::Duration;

use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::parse_config;
use metarl_sim_bridge::{find_python, parts, Blob, Launch, Reply, Server};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The server's source, appended to the bridge's Python side.
const SERVER: &str = include_str!("../python/rlbench_server.py");
/// Demonstrations and the true last observation of an episode.
const CAPS: Caps = Caps(Caps::ENV_DEMOS.0 | Caps::ENV_FINAL_OBS.0);
/// RLBench's cameras, in the default order.
pub const CAMERAS: [&str; 5] = ["front", "left_shoulder", "right_shoulder", "overhead", "wrist"];
/// `low_dim`: gripper open 1, gripper pose 7, finger joints 2, time 1.
pub const LOW_DIM: u32 = 11;
/// C2F-ARM's scene bounds (x, y, z min then max), the `pose` part's position bounds.
pub const SCENE_BOUNDS: [f32; 6] = [-0.3, -0.5, 0.6, 0.7, 0.5, 1.6];
/// Where the README explains the install.
const INSTALL: &str = "the README's RLBench section explains the install (CoppeliaSim 4.1 with COPPELIASIM_ROOT, PyRep, RLBench, and an X server or Xvfb)";

/// Config keys, all optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Some of [`CAMERAS`], in the order their parts come.
    pub cameras: Vec<String>,
    /// Image side in pixels.
    pub size: u32,
    /// Macro-steps (planned arm moves) after which an episode is truncated.
    pub max_steps: u32,
    /// Stored demonstrations in RLBench's layout; empty: live demonstrations.
    pub dataset_root: String,
    /// The Python with RLBench (default: `$METARL_PYTHON`, else the project venv's).
    pub python: Option<String>,
    /// CoppeliaSim 4.1's directory (default: `$COPPELIASIM_ROOT`); also put on the servers'
    /// `LD_LIBRARY_PATH` and `QT_QPA_PLATFORM_PLUGIN_PATH`, as PyRep's install asks.
    pub coppeliasim_root: Option<String>,
    /// The X display CoppeliaSim renders on (default: `$DISPLAY`).
    pub display: Option<String>,
    /// Seconds to wait for any answer of a server before it is killed (launching CoppeliaSim,
    /// planning, and live demos take a while).
    pub timeout_s: f64,
    /// C2F-ARM's demo augmentation: every this many steps of a demo (before its last
    /// keyframe) is also a start state, leading through the keyframes after it (0: none).
    pub demo_augmentation: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cameras: CAMERAS.iter().map(|c| c.to_string()).collect(),
            size: 128,
            max_steps: 10,
            dataset_root: String::new(),
            python: None,
            coppeliasim_root: None,
            display: None,
            timeout_s: 600.0,
            demo_augmentation: 10,
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), String> {
        if let Some(c) = self.cameras.iter().find(|c| !CAMERAS.contains(&c.as_str())) {
            return Err(format!("rlbench config: unknown camera '{c}' (RLBench's cameras: {})", CAMERAS.join(", ")));
        }
        if let Some((i, c)) = self.cameras.iter().enumerate().find(|(i, c)| self.cameras[..*i].contains(c)) {
            return Err(format!("rlbench config: camera '{c}' is listed twice (at {i})"));
        }
        if !(16..=1024).contains(&self.size) {
            return Err(format!("rlbench config: size must be within 16..=1024 pixels, got {}", self.size));
        }
        if self.max_steps < 2 {
            return Err(format!("rlbench config: max_steps must be at least 2 (the time feature divides by max_steps - 1), got {}", self.max_steps));
        }
        if !(self.timeout_s > 0.0 && self.timeout_s.is_finite()) {
            return Err("rlbench config: timeout_s must be a positive number of seconds".into());
        }
        Ok(())
    }

    /// The observation space of one env.
    pub fn obs_space(&self) -> Space {
        let s = self.size;
        let mut parts = Vec::new();
        for c in &self.cameras {
            parts.push(Part::new(&format!("{c}_rgb"), Role::IMAGE, Dtype::U8, &[s, s, 3]));
            parts.push(Part::new(&format!("{c}_point_cloud"), Role::POINT_CLOUD, Dtype::F32, &[s, s, 3]));
            parts.push(Part::new(&format!("{c}_intrinsics"), Role::CAMERA_INTRINSICS, Dtype::F32, &[3, 3]));
            parts.push(Part::new(&format!("{c}_extrinsics"), Role::CAMERA_EXTRINSICS, Dtype::F32, &[4, 4]));
        }
        parts.push(Part::new("low_dim", Role::VECTOR, Dtype::F32, &[LOW_DIM]));
        Space::of(parts)
    }

    /// The action space of one env: `pose` then `gripper`.
    pub fn action_space(&self) -> Space {
        let b = SCENE_BOUNDS;
        let pose = Part {
            low: vec![b[0], b[1], b[2], -1.0, -1.0, -1.0, -1.0].into(),
            high: vec![b[3], b[4], b[5], 1.0, 1.0, 1.0, 1.0].into(),
            ..Part::new("pose", Role::POSE, Dtype::F32, &[7])
        };
        let gripper = Part { choices: 2, ..Part::new("gripper", Role::DISCRETE, Dtype::I32, &[]) };
        Space::of(vec![pose, gripper])
    }

    /// What a server is told.
    fn server_config(&self) -> Value {
        json!({
            "cameras": self.cameras, "size": self.size, "max_steps": self.max_steps, "dataset_root": self.dataset_root,
            "demo_augmentation": self.demo_augmentation,
        })
    }

    /// The servers' extra environment variables.
    fn server_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        let root = self.coppeliasim_root.clone().or_else(|| std::env::var("COPPELIASIM_ROOT").ok()).filter(|r| !r.is_empty());
        if let Some(root) = root {
            let lib = match std::env::var("LD_LIBRARY_PATH") {
                Ok(p) if !p.is_empty() => format!("{root}:{p}"),
                _ => root.clone(),
            };
            env.push(("COPPELIASIM_ROOT".into(), root.clone()));
            env.push(("LD_LIBRARY_PATH".into(), lib));
            env.push(("QT_QPA_PLATFORM_PLUGIN_PATH".into(), root));
        }
        if let Some(d) = &self.display {
            env.push(("DISPLAY".into(), d.clone()));
        }
        env
    }
}

/// A batch of RLBench envs, one server per copy.
pub struct RlBench {
    cfg: Config,
    launch: Launch,
    /// One per copy, then the demo server; `None` until started.
    servers: Vec<Option<Server>>,
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

impl RlBench {
    /// Server `slot` (a copy, or the demo server at `num_envs`), started, probed and set up
    /// (RLBench launched) if the slot is empty. A dead copy server stays until `reset`
    /// replaces it (its episode is gone), a dead demo server until the next `demos`.
    fn connect(&mut self, slot: usize) -> Result<&mut Server, PluginError> {
        if self.servers[slot].is_some() {
            return Ok(self.servers[slot].as_mut().expect("checked"));
        }
        let mut server = Server::start(self.launch.clone()).map_err(failed)?;
        let probe = server.call("probe", Map::new(), &[]).map_err(failed)?;
        if let Some(missing) = probe.fields.get("missing").and_then(Value::as_str) {
            return Err(failed(format!("rlbench: cannot run RLBench with {}: {missing}; {INSTALL}", self.launch.python.display())));
        }
        let mut f = Map::new();
        f.insert("config".into(), self.cfg.server_config());
        f.insert("tasks".into(), json!(self.tasks.iter().map(|&t| tasks::TASKS[t as usize]).collect::<Vec<_>>()));
        f.insert("copy".into(), json!(slot));
        let reply = server.call("init", f, &[]).map_err(failed)?;
        if slot == 0 {
            log::info!("rlbench: RLBench {} launched", reply.fields.get("version").and_then(Value::as_str).unwrap_or("(unknown version)"));
        }
        Ok(self.servers[slot].insert(server))
    }

    fn call(&mut self, slot: usize, op: &str, fields: Map<String, Value>, arrays: &[Blob]) -> Result<Reply, PluginError> {
        self.connect(slot)?.call(op, fields, arrays).map_err(failed)
    }

    /// Copies the reply's `prefix`-named parts into row `row` of `out`.
    fn copy_parts(&self, reply: &Reply, prefix: &str, out: &mut [ArrayMut<'_>], row: usize) -> Result<(), PluginError> {
        parts::fill_parts("rlbench", &self.obs, reply, prefix, out, &[row])
    }

    /// The family id of the task a reply names (an index into the request's list).
    fn task_id(&self, v: Option<&Value>) -> Result<u64, PluginError> {
        v.and_then(Value::as_u64).and_then(|i| self.tasks.get(i as usize).copied()).ok_or_else(|| failed("rlbench server: bad task index"))
    }

    /// The process ids of the servers that run (copies, then the demo server), for tests.
    pub fn server_pids(&self) -> Vec<Option<u32>> {
        self.servers.iter().map(|s| s.as_ref().filter(|s| s.alive()).map(Server::pid)).collect()
    }
}

impl Env for RlBench {
    fn spec(&self) -> EnvSpec {
        EnvSpec { obs: self.obs.clone(), action: self.cfg.action_space(), num_envs: self.num_envs as u32, max_episode_steps: self.cfg.max_steps, caps: CAPS }
    }

    fn reset(&mut self, seed: u64, mut out: ResetBuffers<'_>) -> Result<(), PluginError> {
        if out.task.len() != self.num_envs {
            return Err(invalid(format!("reset buffers: tasks must hold {} values, got {}", self.num_envs, out.task.len())));
        }
        for slot in 0..self.num_envs {
            // A dead server (crashed, or killed after a timeout) is replaced here.
            if self.servers[slot].as_ref().is_some_and(|s| !s.alive()) {
                log::warn!("rlbench: starting a new server for copy {slot} after the last one died");
                self.servers[slot] = None;
            }
            let mut f = Map::new();
            f.insert("seed".into(), json!(seed));
            let reply = self.call(slot, "reset", f, &[])?;
            self.copy_parts(&reply, "", out.obs.as_mut_slice(), slot)?;
            out.task[slot] = self.task_id(reply.fields.get("task"))?;
        }
        self.finished.clear();
        Ok(())
    }

    fn step(&mut self, actions: Arrays<'_>, mut out: StepBuffers<'_>) -> Result<(), PluginError> {
        let n = self.num_envs;
        let shape = "rlbench actions are two parts: pose (7 floats per env) and gripper (one i32 per env, 0 or 1)";
        let (pose, grip) = match actions.as_slice() {
            [p, g] => (p.f32().ok_or_else(|| invalid(shape))?, g.i32().ok_or_else(|| invalid(shape))?),
            _ => return Err(invalid(shape)),
        };
        if pose.len() != n * 7 || grip.len() != n {
            return Err(invalid(format!("{shape}; got {} and {} values for {n} envs", pose.len(), grip.len())));
        }
        let flags = [out.reward.len(), out.terminated.len(), out.truncated.len(), out.success.len(), out.task_end.len(), out.task.len()];
        if flags.iter().any(|&l| l != n) {
            return Err(invalid(format!("step buffers: rewards, flags and tasks must hold {n} values each, got {flags:?}")));
        }
        if pose.iter().any(|x| !x.is_finite()) {
            return Err(invalid("rlbench actions: the pose holds a value that is not finite"));
        }
        if let Some(g) = grip.iter().find(|&&g| g != 0 && g != 1) {
            return Err(invalid(format!("rlbench actions: gripper must be 0 (close) or 1 (open), got {g}")));
        }
        for i in 0..n {
            let arrays = [Blob::f32("pose", &[7], &pose[i * 7..(i + 1) * 7]), Blob::i32("gripper", &[1], &grip[i..i + 1])];
            let reply = self.call(i, "step", Map::new(), &arrays)?;
            self.copy_parts(&reply, "", out.obs.as_mut_slice(), i)?;
            let flag = |name: &str| -> Result<u8, PluginError> {
                reply.array(name).map_err(failed)?.bytes.first().copied().ok_or_else(|| failed(format!("rlbench server: empty '{name}'")))
            };
            out.reward[i] =
                reply.array("reward").map_err(failed)?.to_f32().and_then(|r| r.first().copied()).ok_or_else(|| failed("rlbench server: bad reward"))?;
            out.terminated[i] = flag("terminated")?;
            out.truncated[i] = flag("truncated")?;
            let ended = out.terminated[i] | out.truncated[i];
            out.success[i] = flag("success")? & ended;
            out.task_end[i] = ended;
            if ended == 1 && !out.final_obs.is_empty() {
                self.copy_parts(&reply, "final_", out.final_obs.as_mut_slice(), i)?;
            }
            out.task[i] = self.task_id(reply.fields.get("task"))?;
            if let Some(why) = reply.fields.get("failure").and_then(Value::as_str) {
                log::debug!("rlbench: copy {i}: the action could not be carried out, episode over with reward 0 ({why})");
            }
            if let Some(e) = reply.fields.get("episode").filter(|e| e.is_object()) {
                self.finished.push(EpisodeStat {
                    env: i as u32,
                    task: self.task_id(e.get("task"))?,
                    ret: e["ret"].as_f64().unwrap_or(0.0) as f32,
                    len: e["len"].as_u64().unwrap_or(0) as u32,
                    success: e["success"].as_bool().unwrap_or(false),
                });
            }
        }
        Ok(())
    }

    fn take_episodes(&mut self) -> Vec<EpisodeStat> {
        std::mem::take(&mut self.finished)
    }

    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> Result<Vec<Trajectory>, PluginError> {
        let name = *tasks::TASKS.get(task as usize).ok_or_else(|| invalid(format!("demos: task {task} is out of range")))?;
        let k = self.tasks.iter().position(|&t| t == task).ok_or_else(|| invalid(format!("demos: task '{name}' is not one of this env's tasks")))?;
        let slot = self.num_envs;
        if self.servers[slot].as_ref().is_some_and(|s| !s.alive()) {
            self.servers[slot] = None;
        }
        let mut f = Map::new();
        f.insert("task".into(), json!(k));
        f.insert("episodes".into(), json!(episodes));
        f.insert("seed".into(), json!(seed));
        let reply = self.call(slot, "demos", f, &[])?;
        let lengths: Vec<usize> =
            reply.fields.get("lengths").and_then(Value::as_array).into_iter().flatten().filter_map(|l| l.as_u64().map(|l| l as usize)).collect();
        let dropped = reply.fields.get("dropped").and_then(Value::as_u64).unwrap_or(0);
        if dropped > 0 {
            log::warn!("rlbench: {dropped} of {episodes} demonstrations of '{name}' had no keyframe and were dropped");
        }
        log::debug!("rlbench: demonstrations of '{name}': steps {:?}, keyframes {:?}", reply.fields.get("steps"), reply.fields.get("keyframes"));
        let augmented = reply.fields.get("augmented").and_then(Value::as_u64).unwrap_or(0);
        if augmented > 0 {
            log::info!("rlbench: {} demos of '{name}' and {augmented} augmented trajectories", lengths.len() as u64 - augmented);
        }
        let mut out = Vec::new();
        for (d, &len) in lengths.iter().enumerate() {
            let obs = parts::demo_obs("rlbench", &self.obs, &reply, d, len)?;
            let pose = reply.array(&format!("d{d}_pose")).map_err(failed)?.to_f32().ok_or_else(|| failed("rlbench server: bad demo poses"))?;
            let grip = reply.array(&format!("d{d}_gripper")).map_err(failed)?.to_i32().ok_or_else(|| failed("rlbench server: bad demo gripper actions"))?;
            let rewards = reply.array(&format!("d{d}_rewards")).map_err(failed)?.to_f32().ok_or_else(|| failed("rlbench server: bad demo rewards"))?;
            if pose.len() != len * 7 || grip.len() != len || rewards.len() != len {
                return Err(failed("rlbench server: a demo's actions or rewards have the wrong size"));
            }
            out.push(Trajectory {
                task,
                obs,
                actions: vec![Array::from_slice(&pose), Array::from_slice(&grip)].into(),
                rewards: rewards.into(),
                success: true,
            });
        }
        Ok(out)
    }
}

/// The plugin.
pub struct RlBenchPlugin;

impl PluginFactory for RlBenchPlugin {
    const KIND: PluginKind = PluginKind::ENV;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "rlbench".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::ENV,
            description: "RLBench on CoppeliaSim (Python servers, one per env; needs CoppeliaSim 4.1, PyRep, RLBench and an X server): cameras with RGB, point clouds and matrices, C2F-ARM's proprioception, planned end-effector poses, sparse success, keyframe demos".into(),
            caps: CAPS,
            families: vec![TaskFamily {
                name: tasks::FAMILY.into(),
                description: "RLBench's tasks by file name: the study's 11 first, then the other 95".into(),
                tasks: TaskSet::named(&tasks::TASKS),
            }]
            .into(),
            requires: Caps::NONE,
        }
    }

    fn task_sets() -> Vec<NamedTaskSet> {
        tasks::sets().into_iter().map(|(name, description, ids)| NamedTaskSet::new(tasks::FAMILY, name, description, ids)).collect()
    }

    fn new_env(req: &EnvRequest) -> Result<Box<dyn Env>, PluginError> {
        Ok(Box::new(RlBench::open(req)?))
    }
}

impl RlBench {
    /// Checks the request and config, then starts the first copy's server: it probes for
    /// RLBench before launching it.
    pub fn open(req: &EnvRequest) -> Result<RlBench, PluginError> {
        let cfg: Config = parse_config("rlbench", &req.config)?;
        cfg.check().map_err(invalid)?;
        let tasks = parts::request_tasks(req, "rlbench", tasks::FAMILY, tasks::TASKS.len())?;
        let python = find_python(cfg.python.as_deref(), "rlbench")
            .map_err(|_| failed(format!("rlbench: cannot run RLBench: no Python with the 'rlbench' package found (no `python` key, no METARL_PYTHON, and the project venv has none); {INSTALL}")))?;
        let launch = Launch { name: "rlbench".into(), python, source: SERVER.into(), env: cfg.server_env(), timeout: Duration::from_secs_f64(cfg.timeout_s) };
        let num_envs = req.num_envs.max(1) as usize;
        let obs = cfg.obs_space();
        let mut env = RlBench { cfg, launch, servers: (0..=num_envs).map(|_| None).collect(), tasks, num_envs, obs, finished: Vec::new() };
        env.connect(0)?;
        Ok(env)
    }
}

metarl_plugin_api::export_plugin!(RlBenchPlugin);
