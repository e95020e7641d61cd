//! The batched Procgen env: request validation, level choice, trials and episode bookkeeping.

use std::path::PathBuf;

use metarl_plugin_api::env::EpisodeStat;
use metarl_plugin_api::prelude::*;
use serde::Deserialize;

use crate::games::{self, DistributionMode, Game};
use crate::libenv::{self, Libenv, Opt, VecEnv, OBS_BYTES};
use crate::state;

/// Number of levels of every game: Procgen draws seeds from `[0, INT32_MAX)`.
pub const LEVELS: u64 = (1 << 31) - 1;
/// Procgen's 15 discrete actions (env.py's `get_combos`).
pub const NUM_ACTIONS: u32 = 15;
const MAX_ENVS: u32 = 1 << 16;
/// Finished episodes kept for `take_episodes` before the oldest are dropped.
const MAX_PENDING_EPISODES: usize = 1 << 20;

/// The plugin config (`EnvRequest::config`). Defaults follow `ProcgenGym3Env`, except
/// `distribution_mode`, which defaults to the Procgen paper's easy mode.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// easy, hard, extreme, memory or exploration.
    pub distribution_mode: DistributionMode,
    /// After a completed level, continue in level seed + 997 within the same episode.
    pub use_sequential_levels: bool,
    /// Pins Procgen's own `rand_seed` (as in Python) for every reset; by default it is derived
    /// from the request seed and the reset seed.
    pub rand_seed: Option<u32>,
    /// libenv's stepping threads (Python's default is 4; 0 steps in the calling thread).
    pub num_threads: u32,
    /// The `procgen` package directory; found automatically when absent.
    pub procgen_dir: Option<PathBuf>,
    /// Keep the agent in the centre of the view.
    pub center_agent: bool,
    /// Draw background images.
    pub use_backgrounds: bool,
    /// One theme per game only.
    pub restrict_themes: bool,
    /// Monochrome rectangles instead of sprites.
    pub use_monochrome_assets: bool,
    /// Paint the agent's velocity in the top-left corner.
    pub paint_vel_info: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            distribution_mode: DistributionMode::Easy,
            use_sequential_levels: false,
            rand_seed: None,
            num_threads: 4,
            procgen_dir: None,
            center_agent: true,
            use_backgrounds: true,
            restrict_themes: false,
            use_monochrome_assets: false,
            paint_vel_info: false,
        }
    }
}

/// How each episode's level is chosen.
#[derive(Debug, Clone, PartialEq)]
enum Levels {
    /// Procgen draws from `[start, start + num)` itself (`num == 0`: every level). Used
    /// whenever it gives the requested behaviour: it costs nothing per step.
    Native { start: i32, num: i32 },
    /// We draw from `list` (empty: every level) and steer each game to its next level by
    /// patching the level bounds in its state (see `state`), once per task.
    Steered { list: Vec<u64> },
}

/// Per-env bookkeeping.
#[derive(Debug, Clone, Default)]
struct Slot {
    /// Task sampler (SplitMix64 state).
    rng: u64,
    /// Level the current episode started on.
    level: u64,
    ret: f64,
    len: u32,
    /// Steps since the current level started (Procgen's `cur_time`).
    level_time: u32,
    /// Episodes finished on the current task.
    trial: u32,
    /// `[low, high)` of the game's next level draw, as last written (steered mode).
    bounds: (i32, i32),
}

/// A batch of Procgen games.
pub struct ProcgenEnv {
    game: &'static Game,
    cfg: Config,
    lib: &'static Libenv,
    resource_root: String,
    num: usize,
    trials: u32,
    seed: u64,
    levels: Levels,
    /// Procgen's per-level step limit.
    timeout: u32,
    venv: Option<VecEnv>,
    slots: Vec<Slot>,
    steer: Vec<usize>,
    episodes: Vec<EpisodeStat>,
    dropped_warned: bool,
}

use metarl_plugin_kit::seeds::splitmix64;

fn mix(a: u64, b: u64) -> u64 {
    let mut s = a;
    let x = splitmix64(&mut s);
    let mut s = x ^ b.rotate_left(23);
    splitmix64(&mut s)
}

impl ProcgenEnv {
    /// Validates `req` and loads libenv; the games are created by `reset`.
    pub fn new(req: &EnvRequest) -> Result<Self, PluginError> {
        let game = games::find(req.family.as_str()).ok_or_else(|| {
            PluginError::invalid(format!("unknown Procgen game '{}' (valid: {})", req.family, games::names()))
        })?;
        if req.num_envs == 0 {
            return Err(PluginError::invalid("procgen: num_envs must be at least 1"));
        }
        if req.num_envs > MAX_ENVS {
            return Err(PluginError::invalid(format!(
                "procgen: num_envs {} is too large (at most {MAX_ENVS})",
                req.num_envs
            )));
        }
        if req.trials == 0 {
            return Err(PluginError::invalid("procgen: trials must be at least 1"));
        }
        let cfg: Config = metarl_plugin_kit::parse_config("procgen", req.config.as_str())?;
        let mode = cfg.distribution_mode;
        if !game.supports(mode) {
            return Err(PluginError::invalid(format!(
                "procgen: '{}' has no {} distribution mode (games with it: {})",
                game.name,
                mode.name(),
                Game::supporting(mode)
            )));
        }
        if cfg.rand_seed.is_some_and(|s| s > i32::MAX as u32) {
            return Err(PluginError::invalid(format!(
                "procgen config: rand_seed must be below 2^31 (got {})",
                cfg.rand_seed.unwrap()
            )));
        }
        if cfg.num_threads > 1024 {
            return Err(PluginError::invalid(format!("procgen config: num_threads {} is too large", cfg.num_threads)));
        }
        let tasks: Vec<u64> = req.tasks.to_vec();
        if let Some(bad) = tasks.iter().find(|&&t| t >= LEVELS) {
            return Err(PluginError::invalid(format!("procgen: level {bad} is out of range (levels are 0..{LEVELS})")));
        }
        let levels = if mode == DistributionMode::Exploration {
            let level = game.exploration_level.expect("checked by supports") as u64;
            if tasks.iter().any(|&t| t != level) {
                return Err(PluginError::invalid(format!(
                    "procgen: exploration mode of '{}' plays only level {level}; request no tasks or exactly that one",
                    game.name
                )));
            }
            Levels::Native { start: level as i32, num: 1 }
        } else {
            choose_levels(&tasks, req.trials)
        };
        if cfg.use_sequential_levels && (!tasks.is_empty() || req.trials > 1) {
            return Err(PluginError::invalid(
                "procgen: use_sequential_levels moves on to level seed + 997, outside any task list, and has no trials; \
                 use it with the whole family and trials = 1",
            ));
        }

        let procgen = crate::locate::find(cfg.procgen_dir.as_deref())?;
        if let Some(v) = procgen.version().filter(|v| v != "0.10.7") {
            log::warn!("procgen at {} is version {v}; this adapter was written for 0.10.7", procgen.dir.display());
        }
        let lib = libenv::load(&procgen.libenv())?;
        log::debug!("procgen {}: {:?}, {} envs, trials {}", game.name, levels, req.num_envs, req.trials);
        Ok(Self {
            game,
            timeout: game.timeout(mode),
            cfg,
            lib,
            resource_root: procgen.resource_root(),
            num: req.num_envs as usize,
            trials: req.trials,
            seed: req.seed,
            levels,
            venv: None,
            slots: Vec::new(),
            steer: Vec::new(),
            episodes: Vec::new(),
            dropped_warned: false,
        })
    }

    fn options(&self, rand_seed: i32, start: i32, num: i32) -> Vec<(&'static str, Opt)> {
        let c = &self.cfg;
        // The option set ProcgenGym3Env passes, so that equal options give Python's frames.
        vec![
            ("center_agent", Opt::Bool(c.center_agent)),
            ("use_generated_assets", Opt::Bool(false)),
            ("use_monochrome_assets", Opt::Bool(c.use_monochrome_assets)),
            ("restrict_themes", Opt::Bool(c.restrict_themes)),
            ("use_backgrounds", Opt::Bool(c.use_backgrounds)),
            ("paint_vel_info", Opt::Bool(c.paint_vel_info)),
            ("distribution_mode", Opt::Int(c.distribution_mode.libenv_value())),
            ("env_name", Opt::Str(self.game.name.to_string())),
            ("num_levels", Opt::Int(num)),
            ("start_level", Opt::Int(start)),
            ("num_actions", Opt::Int(NUM_ACTIONS as i32)),
            ("use_sequential_levels", Opt::Bool(c.use_sequential_levels)),
            ("debug_mode", Opt::Int(0)),
            ("rand_seed", Opt::Int(rand_seed)),
            ("num_threads", Opt::Int(c.num_threads as i32)),
            ("render_human", Opt::Bool(false)),
            ("resource_root", Opt::Str(self.resource_root.clone())),
        ]
    }

    /// Draws the next task of env `i` (steered mode).
    fn sample(&mut self, i: usize) -> i32 {
        let Levels::Steered { list } = &self.levels else { unreachable!() };
        let n = if list.is_empty() { LEVELS } else { list.len() as u64 };
        let k = ((splitmix64(&mut self.slots[i].rng) as u128 * n as u128) >> 64) as u64;
        (if list.is_empty() { k } else { list[k as usize] }) as i32
    }

    /// Called when env `i` starts an episode: in steered mode, the last trial of a task is
    /// when the game must learn the level of the task after it.
    fn queue_steer(&mut self, i: usize) {
        if matches!(self.levels, Levels::Steered { .. }) && self.slots[i].trial == self.trials - 1 {
            self.steer.push(i);
        }
    }

    /// Draws the next task of every queued env and steers the games whose level changes.
    fn apply_steers(&mut self) -> Result<(), PluginError> {
        let mut queued = std::mem::take(&mut self.steer);
        let mut targets = Vec::with_capacity(queued.len());
        queued.retain(|&i| {
            let level = self.sample(i);
            let keep = self.slots[i].bounds != (level, level + 1);
            if keep {
                targets.push((self.slots[i].bounds, level));
            }
            keep
        });
        let result = self.steer_to(&queued, &targets);
        queued.clear();
        self.steer = queued; // keeps the allocation
        result
    }

    /// Makes the next episode of env `envs[k]` play `targets[k].1`; `targets[k].0` is the
    /// game's current `[low, high)` (steered mode).
    fn steer_to(&mut self, envs: &[usize], targets: &[((i32, i32), i32)]) -> Result<(), PluginError> {
        if envs.is_empty() {
            return Ok(());
        }
        let game = self.game.name;
        let venv = self.venv.as_mut().expect("reset before steering");
        venv.edit_states(envs, |k, s| {
            let (expect, level) = targets[k];
            state::set_next_level(s, game, expect, level).map(|()| true)
        })?;
        for (&i, &(_, level)) in envs.iter().zip(targets) {
            self.slots[i].bounds = (level, level + 1);
        }
        Ok(())
    }

    fn start_episode(&mut self, i: usize, level: u64) {
        let s = &mut self.slots[i];
        s.level = level;
        s.ret = 0.0;
        s.len = 0;
        s.level_time = 0;
    }
}

/// Native level bounds where Procgen's own sampling gives the requested behaviour.
fn choose_levels(tasks: &[u64], trials: u32) -> Levels {
    if tasks.is_empty() {
        return if trials == 1 { Levels::Native { start: 0, num: 0 } } else { Levels::Steered { list: Vec::new() } };
    }
    let mut sorted = tasks.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
    // Duplicates weight a level, which Procgen's uniform draw would not.
    let contiguous = sorted.len() == tasks.len() && hi - lo + 1 == tasks.len() as u64;
    if contiguous && (trials == 1 || tasks.len() == 1) {
        Levels::Native { start: lo as i32, num: tasks.len() as i32 }
    } else {
        Levels::Steered { list: tasks.to_vec() }
    }
}

/// The one observation part, as bytes.
fn image_part<'a>(parts: &'a mut [ArrayMut<'_>]) -> Result<&'a mut [u8], PluginError> {
    match parts {
        [part] => part.u8().ok_or_else(|| PluginError::invalid("procgen: observations are u8 images")),
        _ => Err(PluginError::invalid(format!("procgen: observations have one part, got {}", parts.len()))),
    }
}

fn check_len(what: &str, got: usize, want: usize) -> Result<(), PluginError> {
    if got != want {
        return Err(PluginError::invalid(format!("procgen: {what} buffer has {got} elements, expected {want}")));
    }
    Ok(())
}

impl Env for ProcgenEnv {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            obs: ObsSpace::image(64, 64, 3),
            action: ActionSpace::discrete(NUM_ACTIONS),
            num_envs: self.num as u32,
            // With sequential levels an episode spans levels, each with its own limit.
            max_episode_steps: if self.cfg.use_sequential_levels { 0 } else { self.timeout },
            // libenv resets a game inside its step, so the last frame of an episode is never
            // seen: no ENV_FINAL_OBS.
            caps: crate::CAPS,
        }
    }

    fn reset(&mut self, seed: u64, out: ResetBuffers<'_>) -> Result<(), PluginError> {
        let n = self.num;
        let ResetBuffers { mut obs, mut task } = out;
        let obs = image_part(obs.as_mut_slice())?;
        check_len("observation", obs.len(), n * OBS_BYTES)?;
        check_len("task", task.len(), n)?;

        // Procgen has no seeded reset: a fresh VecGame whose rand_seed (which drives every
        // level draw) comes from the request seed and this reset's seed.
        let base = match self.cfg.rand_seed {
            Some(s) => mix(s as u64, 0x5EED),
            None => mix(self.seed, seed),
        };
        let rand_seed = match self.cfg.rand_seed {
            Some(s) => s as i32,
            None => (mix(base, 0xC0FFEE) >> 33) as i32,
        };
        self.venv = None; // join the old games' threads before starting new ones
        self.slots = (0..n).map(|i| Slot { rng: mix(base, i as u64 + 1), ..Slot::default() }).collect();
        self.steer.clear();
        let (start, num) = match self.levels {
            Levels::Native { start, num } => (start, num),
            Levels::Steered { .. } => (0, 0),
        };
        let options = self.options(rand_seed, start, num);
        self.venv = Some(VecEnv::new(self.lib, n, &options)?);

        if let Levels::Steered { .. } = self.levels {
            // Steer every game to its first level, then end the episodes Procgen started on
            // levels of its own choosing (action -1 makes a game reset).
            for s in &mut self.slots {
                s.bounds = (0, i32::MAX); // num_levels = 0
            }
            let envs: Vec<usize> = (0..n).collect();
            let targets: Vec<_> = envs.iter().map(|&i| (self.slots[i].bounds, self.sample(i))).collect();
            self.steer_to(&envs, &targets)?;
            let venv = self.venv.as_mut().unwrap();
            venv.actions_mut().fill(-1);
            venv.step();
            for i in 0..n {
                let (got, want) = (venv.level_seed()[i], self.slots[i].bounds.0);
                if got != want {
                    return Err(PluginError::failed(format!("procgen: env {i} started level {got}, expected {want}")));
                }
            }
        }
        for i in 0..n {
            let level = self.venv.as_ref().unwrap().level_seed()[i] as u64;
            self.start_episode(i, level);
            self.queue_steer(i);
        }
        self.apply_steers()?;

        let venv = self.venv.as_ref().unwrap();
        obs.copy_from_slice(venv.obs());
        for (t, &l) in task.as_mut_slice().iter_mut().zip(venv.level_seed()) {
            *t = l as u64;
        }
        Ok(())
    }

    fn step(&mut self, actions: Arrays<'_>, out: StepBuffers<'_>) -> Result<(), PluginError> {
        let n = self.num;
        let Some(actions) = actions.first().filter(|_| actions.len() == 1).and_then(|a| a.i32()) else {
            return Err(PluginError::invalid("procgen: actions are one part of discrete (i32) indices"));
        };
        check_len("action", actions.len(), n)?;
        if let Some(a) = actions.iter().find(|&&a| !(0..NUM_ACTIONS as i32).contains(&a)) {
            return Err(PluginError::invalid(format!("procgen: action {a} is out of range 0..{NUM_ACTIONS}")));
        }
        let StepBuffers { mut obs, mut reward, mut terminated, mut truncated, mut success, mut task_end, mut task, .. } = out;
        let obs = image_part(obs.as_mut_slice())?;
        check_len("observation", obs.len(), n * OBS_BYTES)?;
        for (what, len) in [
            ("reward", reward.len()),
            ("terminated", terminated.len()),
            ("truncated", truncated.len()),
            ("success", success.len()),
            ("task_end", task_end.len()),
            ("task", task.len()),
        ] {
            check_len(what, len, n)?;
        }
        let Some(venv) = self.venv.as_mut() else {
            return Err(PluginError::invalid("procgen: step called before reset"));
        };

        venv.actions_mut().copy_from_slice(actions);
        venv.step();

        // libenv renders into buffers it was given once, at creation (libenv_set_buffers may
        // not be called again), while the caller lends new buffers on every call: one copy.
        obs.copy_from_slice(venv.obs());

        let (reward, terminated, truncated) =
            (reward.as_mut_slice(), terminated.as_mut_slice(), truncated.as_mut_slice());
        let (success, task_end, task) = (success.as_mut_slice(), task_end.as_mut_slice(), task.as_mut_slice());
        let steered = matches!(self.levels, Levels::Steered { .. });
        for i in 0..n {
            let venv = self.venv.as_ref().unwrap();
            let (r, done) = (venv.rew()[i], venv.first()[i] != 0);
            let complete = venv.prev_level_complete()[i] != 0;
            let level = venv.level_seed()[i];
            let s = &mut self.slots[i];
            s.ret += r as f64;
            s.len += 1;
            s.level_time += 1;
            reward[i] = r;
            task[i] = level as u64;
            // Procgen reports timeouts as plain episode ends; a step limit reached without
            // completing the level is a truncation (a death on that very step would be too).
            let cut = done && !complete && s.level_time >= self.timeout;
            terminated[i] = (done && !cut) as u8;
            truncated[i] = cut as u8;
            success[i] = (done && complete) as u8;
            task_end[i] = 0;
            if !done {
                if complete {
                    s.level_time = 0; // sequential levels: a new level within the episode
                }
                continue;
            }
            let stat = EpisodeStat { env: i as u32, task: s.level, ret: s.ret as _, len: s.len, success: complete };
            s.trial += 1;
            if s.trial >= self.trials {
                s.trial = 0;
                task_end[i] = 1;
            }
            if steered && level != s.bounds.0 {
                return Err(PluginError::failed(format!(
                    "procgen: env {i} started level {level}, expected {}",
                    s.bounds.0
                )));
            }
            if self.episodes.len() >= MAX_PENDING_EPISODES {
                self.episodes.drain(..MAX_PENDING_EPISODES / 2);
                if !self.dropped_warned {
                    log::warn!("procgen: take_episodes is not being called; dropping the oldest finished episodes");
                    self.dropped_warned = true;
                }
            }
            self.episodes.push(stat);
            self.start_episode(i, level as u64);
            self.queue_steer(i);
        }
        self.apply_steers()
    }

    fn take_episodes(&mut self) -> Vec<EpisodeStat> {
        std::mem::take(&mut self.episodes)
    }
}
