//! `gridworld`: a fast multi-task pixel gridworld, for tests and learning checks only.
//!
//! An agent (white) walks on a `size x size` grid rendered as a 64x64x3 `u8` image and must
//! reach its task's goal cell, for a sparse reward of 1. Two task families are registered
//! (through `inventory`, see [`FamilyDef`]):
//!
//! - `gridworld`: the goal is drawn in the task's own colour at the task's own cell, so a single
//!   frame identifies the task.
//! - `gridworld-hidden`: the goal is invisible; the task can only be inferred from reward,
//!   which is what RL²-style methods need (play several trials per task).
//!
//! Everything is deterministic given the request seed and the reset seed. Frames are kept per
//! env and patched incrementally (only the two cells that change), then copied once into the
//! caller's buffer, which keeps it well above 100k steps/s on one core.

use metarl_plugin_api::abi_stable::std_types::RVec;
use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::parse_config;
use serde::Deserialize;

/// Default frame side in pixels.
pub const FRAME: usize = 64;
/// Tasks per family.
pub const NUM_TASKS: u64 = 16;
/// Actions: no-op, up, down, left, right.
pub const NUM_ACTIONS: u32 = 5;
/// Demonstrations, trials, and the true last frame of every episode.
pub const CAPS: Caps = Caps(Caps::ENV_DEMOS.0 | Caps::ENV_TRIALS.0 | Caps::ENV_FINAL_OBS.0);

/// A task family of this plugin, registered with `inventory`.
pub struct FamilyDef {
    /// Family name.
    pub name: &'static str,
    /// One line for `plugins list`.
    pub description: &'static str,
    /// Whether the goal is hidden from the observation.
    pub hidden: bool,
}

inventory::collect!(FamilyDef);

inventory::submit! {
    FamilyDef { name: "gridworld", description: "reach the coloured goal; the task is visible in every frame", hidden: false }
}
inventory::submit! {
    FamilyDef { name: "gridworld-hidden", description: "reach an invisible goal; infer the task from reward", hidden: true }
}

fn families() -> Vec<&'static FamilyDef> {
    let mut f: Vec<&FamilyDef> = inventory::iter::<FamilyDef>.into_iter().collect();
    f.sort_by_key(|d| d.name);
    f
}

/// Distinct, saturated goal colours, one per task.
const PALETTE: [[u8; 3]; NUM_TASKS as usize] = [
    [230, 25, 75],
    [60, 180, 75],
    [255, 225, 25],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
    [210, 245, 60],
    [250, 150, 190],
    [0, 128, 128],
    [170, 110, 40],
    [128, 0, 0],
    [170, 255, 195],
    [128, 128, 0],
    [0, 0, 128],
];
const BACKGROUND: [u8; 3] = [24, 24, 24];
const AGENT: [u8; 3] = [255, 255, 255];

/// Plugin config (`[plugin.config]` in the registry, or the experiment's env config).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Grid side in cells: 4, 8 or 16 (64 must be divisible by it).
    pub size: u32,
    /// Steps before an episode is truncated (0 = 4 x size).
    pub max_steps: u32,
    /// Frame side in pixels (a multiple of `size`, at least 3 pixels per cell). Smaller frames
    /// make learning tests fast; 64 matches Procgen.
    pub frame: u32,
    /// Draw every goal in one colour, so tasks differ only in where the goal is and held-out
    /// tasks use the same visual vocabulary as training ones (as Procgen levels do).
    pub shared_goal_colour: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self { size: 8, max_steps: 0, frame: FRAME as u32, shared_goal_colour: false }
    }
}

/// The cell of task `task`'s goal on a `size` grid: a fixed scatter of distinct cells.
pub fn goal_cell(task: u64, size: u32) -> (u32, u32) {
    let cells = size * size;
    // 37 is coprime with every power of two, so tasks map to distinct cells.
    let k = ((task as u32) * 37 + 11) % cells;
    (k / size, k % size)
}

/// SplitMix64 (the kit's): tiny, fast and good enough for task sampling and start positions.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut r = Rng(seed ^ 0x6A09_E667_F3BC_C909);
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        metarl_plugin_kit::seeds::splitmix64(&mut self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Debug)]
struct Slot {
    rng: Rng,
    task: u64,
    colour: usize,
    trial: u32,
    pos: (u32, u32),
    goal: (u32, u32),
    steps: u32,
    ret: f32,
    frame: Vec<u8>,
}

/// Fills cell `(r, c)` of a frame, leaving a one-pixel border so adjacent objects stay apart.
fn paint(frame: &mut [u8], cell: usize, (r, c): (u32, u32), rgb: [u8; 3]) {
    let (r, c) = (r as usize, c as usize);
    let width = ((frame.len() / 3) as f64).sqrt() as usize;
    for y in r * cell + 1..(r + 1) * cell - 1 {
        let row = &mut frame[(y * width + c * cell + 1) * 3..(y * width + (c + 1) * cell - 1) * 3];
        for px in row.chunks_exact_mut(3) {
            px.copy_from_slice(&rgb);
        }
    }
}

impl Slot {
    fn colour_at(&self, at: (u32, u32), hidden: bool) -> [u8; 3] {
        if at == self.pos {
            AGENT
        } else if at == self.goal && !hidden {
            PALETTE[self.colour]
        } else {
            BACKGROUND
        }
    }

    /// Moves the agent to `new`, repainting only the two cells that change.
    fn move_to(&mut self, new: (u32, u32), cell: usize, hidden: bool) {
        let old = self.pos;
        if new != old {
            self.pos = new;
            let colour = self.colour_at(old, hidden);
            paint(&mut self.frame, cell, old, colour);
            paint(&mut self.frame, cell, new, AGENT);
        }
    }
}

/// A batch of gridworlds.
pub struct Gridworld {
    family: &'static FamilyDef,
    tasks: Vec<u64>,
    trials: u32,
    seed: u64,
    size: u32,
    cell: usize,
    frame: usize,
    max_steps: u32,
    slots: Vec<Slot>,
    finished: Vec<EpisodeStat>,
    ready: bool,
    shared_colour: bool,
}

impl Gridworld {
    /// Builds a batch from a request (validates everything first).
    pub fn new(req: &EnvRequest) -> Result<Self, PluginError> {
        let cfg: Config = parse_config("gridworld", &req.config)?;
        if !(2..=32).contains(&cfg.size) {
            return Err(PluginError::invalid(format!("gridworld config: size must be within 2..=32, got {}", cfg.size)));
        }
        if cfg.frame % cfg.size != 0 || cfg.frame / cfg.size < 3 {
            return Err(PluginError::invalid(format!(
                "gridworld config: frame ({}) must be a multiple of size ({}) with at least 3 pixels per cell",
                cfg.frame, cfg.size
            )));
        }
        let family = families().into_iter().find(|f| f.name == req.family.as_str()).ok_or_else(|| {
            let names: Vec<&str> = families().iter().map(|f| f.name).collect();
            PluginError::invalid(format!("unknown task family '{}' (valid: {})", req.family, names.join(", ")))
        })?;
        if req.num_envs == 0 {
            return Err(PluginError::invalid("num_envs must be at least 1"));
        }
        if req.trials == 0 {
            return Err(PluginError::invalid("trials must be at least 1"));
        }
        if let Some(t) = req.tasks.iter().find(|&&t| t >= NUM_TASKS) {
            return Err(PluginError::invalid(format!("task {t} out of range: '{}' has tasks 0..{NUM_TASKS}", family.name)));
        }
        let tasks: Vec<u64> = if req.tasks.is_empty() { (0..NUM_TASKS).collect() } else { req.tasks.to_vec() };
        let max_steps = if cfg.max_steps == 0 { 4 * cfg.size } else { cfg.max_steps };
        let slot = Slot {
            rng: Rng::new(0),
            task: 0,
            colour: 0,
            trial: 0,
            pos: (0, 0),
            goal: (0, 0),
            steps: 0,
            ret: 0.0,
            frame: vec![0; (cfg.frame * cfg.frame * 3) as usize],
        };
        Ok(Self {
            family,
            tasks,
            trials: req.trials,
            seed: req.seed,
            size: cfg.size,
            cell: (cfg.frame / cfg.size) as usize,
            frame: cfg.frame as usize,
            max_steps,
            slots: vec![slot; req.num_envs as usize],
            finished: Vec::new(),
            ready: false,
            shared_colour: cfg.shared_goal_colour,
        })
    }

    /// Starts an episode in slot `i`: samples a task unless trials remain, then a start cell.
    fn begin_episode(&mut self, i: usize, new_task: bool) {
        let (size, cell, hidden, shared) = (self.size, self.cell, self.family.hidden, self.shared_colour);
        let tasks = &self.tasks;
        let slot = &mut self.slots[i];
        if new_task {
            slot.task = tasks[slot.rng.below(tasks.len() as u64) as usize];
            slot.colour = if shared { 0 } else { slot.task as usize };
            slot.goal = goal_cell(slot.task, size);
            slot.trial = 0;
        }
        slot.trial += 1;
        slot.pos = loop {
            let k = slot.rng.below((size * size) as u64) as u32;
            let p = (k / size, k % size);
            if p != slot.goal {
                break p;
            }
        };
        slot.steps = 0;
        slot.ret = 0.0;
        slot.frame.fill(0);
        for r in 0..size {
            for c in 0..size {
                let rgb = slot.colour_at((r, c), hidden);
                paint(&mut slot.frame, cell, (r, c), rgb);
            }
        }
    }

    fn write_obs(&self, obs: &mut [ArrayMut<'_>]) -> Result<(), PluginError> {
        let [part] = obs else {
            return Err(PluginError::invalid(format!("gridworld observations have one part, got {}", obs.len())));
        };
        let Some(buf) = part.u8() else {
            return Err(PluginError::invalid("gridworld observations are u8 images"));
        };
        let n = self.frame * self.frame * 3;
        if buf.len() != n * self.slots.len() {
            return Err(PluginError::invalid(format!(
                "observation buffer holds {} bytes, expected {}",
                buf.len(),
                n * self.slots.len()
            )));
        }
        for (dst, slot) in buf.chunks_exact_mut(n).zip(&self.slots) {
            dst.copy_from_slice(&slot.frame);
        }
        Ok(())
    }

    fn move_agent(&self, pos: (u32, u32), action: i32) -> (u32, u32) {
        let (r, c) = pos;
        let last = self.size - 1;
        match action {
            1 => (r.saturating_sub(1), c),
            2 => ((r + 1).min(last), c),
            3 => (r, c.saturating_sub(1)),
            4 => (r, (c + 1).min(last)),
            _ => (r, c),
        }
    }

    fn expert_action(pos: (u32, u32), goal: (u32, u32)) -> i32 {
        if pos.0 > goal.0 {
            1
        } else if pos.0 < goal.0 {
            2
        } else if pos.1 > goal.1 {
            3
        } else if pos.1 < goal.1 {
            4
        } else {
            0
        }
    }
}

fn check_len(name: &str, len: usize, want: usize) -> Result<(), PluginError> {
    if len != want {
        return Err(PluginError::invalid(format!("{name} buffer has {len} entries, expected {want}")));
    }
    Ok(())
}

impl Env for Gridworld {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            obs: ObsSpace::image(self.frame as u32, self.frame as u32, 3),
            action: ActionSpace::discrete(NUM_ACTIONS),
            num_envs: self.slots.len() as u32,
            max_episode_steps: self.max_steps,
            caps: CAPS,
        }
    }

    fn reset(&mut self, seed: u64, mut out: ResetBuffers<'_>) -> Result<(), PluginError> {
        check_len("task", out.task.len(), self.slots.len())?;
        for i in 0..self.slots.len() {
            let s = self.seed.wrapping_mul(0x100_0000_01B3) ^ seed.rotate_left(17) ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
            self.slots[i].rng = Rng::new(s);
            self.begin_episode(i, true);
            out.task[i] = self.slots[i].task;
        }
        self.finished.clear();
        self.ready = true;
        self.write_obs(out.obs.as_mut_slice())
    }

    fn step(&mut self, actions: Arrays<'_>, mut out: StepBuffers<'_>) -> Result<(), PluginError> {
        if !self.ready {
            return Err(PluginError::invalid("step called before reset"));
        }
        let n = self.slots.len();
        let Some(actions) = actions.first().filter(|_| actions.len() == 1).and_then(|a| a.i32()) else {
            return Err(PluginError::invalid("gridworld takes one part of discrete (i32) actions"));
        };
        check_len("action", actions.len(), n)?;
        let frame_len = self.frame * self.frame * 3;
        let mut final_obs = match out.final_obs.as_mut_slice() {
            [] => None,
            [part] => match part.u8() {
                Some(b) if b.len() == n * frame_len => Some(b),
                _ => return Err(PluginError::invalid("final_obs buffer does not fit the observation space")),
            },
            _ => return Err(PluginError::invalid("final_obs has more parts than the observation space")),
        };
        for (name, len) in [
            ("reward", out.reward.len()),
            ("terminated", out.terminated.len()),
            ("truncated", out.truncated.len()),
            ("success", out.success.len()),
            ("task_end", out.task_end.len()),
            ("task", out.task.len()),
        ] {
            check_len(name, len, n)?;
        }
        for i in 0..n {
            let a = actions[i];
            if !(0..NUM_ACTIONS as i32).contains(&a) {
                return Err(PluginError::invalid(format!("action {a} out of range 0..{NUM_ACTIONS} (env {i})")));
            }
            let new = self.move_agent(self.slots[i].pos, a);
            let (cell, hidden) = (self.cell, self.family.hidden);
            let s = &mut self.slots[i];
            s.move_to(new, cell, hidden);
            s.steps += 1;
            let reached = new == s.goal;
            let timeout = !reached && s.steps >= self.max_steps;
            let reward = if reached { 1.0 } else { 0.0 };
            self.slots[i].ret += reward;
            out.reward[i] = reward;
            out.terminated[i] = reached as u8;
            out.truncated[i] = timeout as u8;
            out.success[i] = reached as u8;
            out.task_end[i] = 0;
            if reached || timeout {
                let s = &self.slots[i];
                if let Some(f) = final_obs.as_deref_mut() {
                    f[i * frame_len..(i + 1) * frame_len].copy_from_slice(&s.frame);
                }
                self.finished.push(EpisodeStat { env: i as u32, task: s.task, ret: s.ret, len: s.steps, success: reached });
                let last_trial = s.trial >= self.trials;
                out.task_end[i] = last_trial as u8;
                self.begin_episode(i, last_trial);
            }
            out.task[i] = self.slots[i].task;
        }
        self.write_obs(out.obs.as_mut_slice())
    }

    fn take_episodes(&mut self) -> Vec<EpisodeStat> {
        std::mem::take(&mut self.finished)
    }

    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> Result<Vec<Trajectory>, PluginError> {
        if !self.tasks.contains(&task) {
            return Err(PluginError::invalid(format!("task {task} is not one of this env's tasks")));
        }
        let mut demo_env = Gridworld {
            family: self.family,
            tasks: vec![task],
            trials: 1,
            seed,
            size: self.size,
            cell: self.cell,
            frame: self.frame,
            max_steps: self.max_steps,
            slots: self.slots[..1].to_vec(),
            finished: Vec::new(),
            ready: false,
            shared_colour: self.shared_colour,
        };
        let n = self.frame * self.frame * 3;
        let mut out = Vec::new();
        for e in 0..episodes as u64 {
            demo_env.slots[0].rng = Rng::new(seed ^ e.wrapping_mul(0x9E37_79B9));
            demo_env.begin_episode(0, true);
            let mut obs = demo_env.slots[0].frame.clone();
            let (mut actions, mut rewards) = (Vec::new(), Vec::new());
            let mut pos = demo_env.slots[0].pos;
            let goal = demo_env.slots[0].goal;
            while pos != goal && actions.len() < demo_env.max_steps as usize {
                let a = Self::expert_action(pos, goal);
                let new = demo_env.move_agent(pos, a);
                demo_env.slots[0].move_to(new, demo_env.cell, demo_env.family.hidden);
                pos = new;
                actions.push(a);
                rewards.push(if pos == goal { 1.0 } else { 0.0 });
                obs.extend_from_slice(&demo_env.slots[0].frame);
            }
            debug_assert_eq!(obs.len(), n * (actions.len() + 1));
            out.push(Trajectory {
                task,
                obs: vec![Array::from_slice(&obs)].into(),
                actions: vec![Array::from_slice(&actions)].into(),
                rewards: RVec::from(rewards),
                success: pos == goal,
            });
        }
        Ok(out)
    }
}

/// The plugin's factory.
pub struct GridworldPlugin;

impl PluginFactory for GridworldPlugin {
    const KIND: PluginKind = PluginKind::ENV;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "gridworld".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::ENV,
            description: "multi-task pixel gridworld (64x64x3 by default, 5 actions, sparse reward); for tests".into(),
            caps: CAPS,
            families: families()
                .into_iter()
                .map(|f| TaskFamily {
                    name: f.name.into(),
                    description: f.description.into(),
                    tasks: TaskSet::indexed(NUM_TASKS),
                })
                .collect(),
            requires: Caps::NONE,
        }
    }

    fn new_env(req: &EnvRequest) -> Result<Box<dyn Env>, PluginError> {
        log::debug!("gridworld: {} envs over {} tasks of '{}'", req.num_envs, req.tasks.len(), req.family);
        Ok(Box::new(Gridworld::new(req)?))
    }
}

metarl_plugin_api::export_plugin!(GridworldPlugin);
