//! The batched Atari env: DER's preprocessing (the author's `env_mt.py`, after Kaixhin's
//! Rainbow) over one emulator per env and game.
//!
//! One agent step repeats the action for `frame_skip` frames and observes the pixel-wise
//! maximum of the last two, in grey, resized to `screen_size` square; the observation is the
//! last `frame_stack` of those frames. A game starts with up to `noop_max - 1` no-ops (Python's
//! `randrange(30)`). A lost life ends the training episode (`terminated`) without restarting
//! the game: the next episode begins after one no-op frame, with the frame stack kept. The
//! game is drawn anew from the request's tasks after each game over (`trials` games per draw).
//! Rewards are clipped to `±reward_clip`; the episodes reported by `take_episodes` are whole
//! games with their raw (unclipped) scores, which is what evaluation reports.

use std::collections::BTreeMap;
use std::path::PathBuf;

use metarl_plugin_api::env::EpisodeStat;
use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::seeds::{hash_name, mix, SeedStream};
use serde::Deserialize;

use crate::ale::{Ale, Settings, FULL_ACTIONS, NOOP};
use crate::games::GAMES;
use crate::resize::Resizer;
use crate::roms;

const MAX_ENVS: u32 = 4096;
/// Finished games kept for `take_episodes` before the oldest are dropped.
const MAX_PENDING_EPISODES: usize = 1 << 20;

/// Which actions the agent chooses among.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ActionSet {
    /// 18 actions for every game: index `i` is the game's `minimalActionSet[i]`, and indices
    /// past the game's set are NOOP (the study's padding, so one network serves every game).
    Padded,
    /// The game's own minimal set (every task of the env must have one size).
    Minimal,
}

/// The plugin config (`EnvRequest::config`). Defaults are DER's and the author's.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `padded` (18 actions) or `minimal` (the game's own set).
    pub actions: ActionSet,
    /// ALE's `repeat_action_probability`: sticky actions (0 = off, as in DER; 0.25 as in
    /// Machado et al.).
    pub sticky_actions: f32,
    /// Emulator frames per agent step (the action repeat).
    pub frame_skip: u32,
    /// Frames in an observation.
    pub frame_stack: u32,
    /// Side of the square grey frames.
    pub screen_size: u32,
    /// A game starts with `0..noop_max` no-op frames, uniformly (0 or 1: none).
    pub noop_max: u32,
    /// Emulator frames after which a game is truncated (0 = never).
    pub max_frames: u32,
    /// Rewards are clipped to `[-reward_clip, reward_clip]` (0 = not clipped).
    pub reward_clip: f32,
    /// A lost life ends the (training) episode.
    pub terminal_on_life_loss: bool,
    /// Directory of `<game>.bin` ROMs; found in the project venv when absent.
    pub rom_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            actions: ActionSet::Padded,
            sticky_actions: 0.0,
            frame_skip: 4,
            frame_stack: 4,
            screen_size: 84,
            noop_max: 30,
            max_frames: 108_000,
            reward_clip: 1.0,
            terminal_on_life_loss: true,
            rom_dir: None,
        }
    }
}

impl Config {
    fn validate(&self) -> Result<(), PluginError> {
        let bad = |key: &str, why: &str| Err(PluginError::invalid(format!("ale config: {key} {why}")));
        if !(0.0..1.0).contains(&self.sticky_actions) {
            return bad("sticky_actions", &format!("= {} is not a probability in [0, 1)", self.sticky_actions));
        }
        if !(1..=64).contains(&self.frame_skip) {
            return bad("frame_skip", &format!("= {} must be in 1..=64", self.frame_skip));
        }
        if !(1..=16).contains(&self.frame_stack) {
            return bad("frame_stack", &format!("= {} must be in 1..=16", self.frame_stack));
        }
        if !(8..=210).contains(&self.screen_size) {
            return bad("screen_size", &format!("= {} must be in 8..=210", self.screen_size));
        }
        if self.noop_max > 10_000 {
            return bad("noop_max", &format!("= {} is larger than 10000", self.noop_max));
        }
        if self.max_frames > i32::MAX as u32 {
            return bad("max_frames", "does not fit ALE's int");
        }
        if !self.reward_clip.is_finite() || self.reward_clip < 0.0 {
            return bad("reward_clip", &format!("= {} must be finite and at least 0", self.reward_clip));
        }
        Ok(())
    }
}

/// A game's ROM and action set.
#[derive(Debug, Clone)]
struct Game {
    rom: PathBuf,
    minimal: Vec<i32>,
}

/// One env of the batch.
struct Slot {
    rng: SeedStream,
    /// Current game (task id).
    task: u64,
    /// One emulator per game this env has played since the last reset.
    emus: BTreeMap<u64, Ale>,
    /// `frame_stack` frames; `head` is the oldest.
    frames: Vec<u8>,
    head: usize,
    lives: i32,
    /// Raw score and agent steps of the current game.
    score: f64,
    steps: u32,
    /// Games finished on the current task.
    trial: u32,
}

/// A batch of Atari games.
pub struct AleEnv {
    cfg: Config,
    tasks: Vec<u64>,
    games: BTreeMap<u64, Game>,
    num_actions: u32,
    trials: u32,
    seed: u64,
    pixels: usize,
    resizer: Resizer,
    screen: Vec<u8>,
    pair: [Vec<u8>; 2],
    slots: Vec<Slot>,
    episodes: Vec<EpisodeStat>,
    dropped_warned: bool,
}

impl AleEnv {
    /// Validates `req`, finds the ROMs and loads each game once (to read its action set).
    pub fn new(req: &EnvRequest) -> Result<Self, PluginError> {
        if req.family.as_str() != crate::games::FAMILY {
            return Err(PluginError::invalid(format!(
                "ale: unknown task family '{}' (valid: {})",
                req.family,
                crate::games::FAMILY
            )));
        }
        if req.num_envs == 0 || req.num_envs > MAX_ENVS {
            return Err(PluginError::invalid(format!("ale: num_envs = {} must be in 1..={MAX_ENVS}", req.num_envs)));
        }
        if req.trials == 0 {
            return Err(PluginError::invalid("ale: trials must be at least 1"));
        }
        let cfg: Config = metarl_plugin_kit::parse_config("ale", req.config.as_str())?;
        cfg.validate()?;
        let tasks: Vec<u64> = if req.tasks.is_empty() { (0..GAMES.len() as u64).collect() } else { req.tasks.to_vec() };
        if let Some(&t) = tasks.iter().find(|&&t| t >= GAMES.len() as u64) {
            return Err(PluginError::invalid(format!(
                "ale: task {t} is out of range: the atari family has {} games",
                GAMES.len()
            )));
        }
        let dir = roms::find(cfg.rom_dir.as_deref())?;
        let mut games = BTreeMap::new();
        for &t in &tasks {
            if games.contains_key(&t) {
                continue;
            }
            let name = GAMES[t as usize];
            let rom = roms::rom(&dir, name)?;
            let probe = Ale::new(&rom, settings(&cfg, 0))?;
            games.insert(t, Game { rom, minimal: probe.minimal_actions().to_vec() });
        }
        let num_actions = match cfg.actions {
            ActionSet::Padded => FULL_ACTIONS as u32,
            ActionSet::Minimal => {
                let mut sizes: Vec<(usize, &str)> =
                    games.iter().map(|(&t, g)| (g.minimal.len(), GAMES[t as usize])).collect();
                sizes.sort();
                sizes.dedup_by_key(|s| s.0);
                if sizes.len() > 1 {
                    let listed: Vec<String> = sizes.iter().map(|(n, g)| format!("{g} has {n}")).collect();
                    return Err(PluginError::invalid(format!(
                        "ale: actions = \"minimal\" needs games with one action-set size, but {}; use actions = \"padded\"",
                        listed.join(", ")
                    )));
                }
                sizes[0].0 as u32
            }
        };
        let side = cfg.screen_size as usize;
        let pixels = side * side;
        let stack = cfg.frame_stack as usize;
        let slots = (0..req.num_envs)
            .map(|_| Slot {
                rng: SeedStream::new(0),
                task: tasks[0],
                emus: BTreeMap::new(),
                frames: vec![0; stack * pixels],
                head: 0,
                lives: 0,
                score: 0.0,
                steps: 0,
                trial: 0,
            })
            .collect();
        Ok(Self {
            resizer: Resizer::new(210, 160, side, side),
            screen: vec![0; 210 * 160],
            pair: [vec![0; pixels], vec![0; pixels]],
            cfg,
            tasks,
            games,
            num_actions,
            trials: req.trials,
            seed: req.seed,
            pixels,
            slots,
            episodes: Vec::new(),
            dropped_warned: false,
        })
    }

    /// ALE action of agent action `a` in the current game of env `i`.
    fn ale_action(&self, i: usize, a: i32) -> Result<i32, PluginError> {
        if a < 0 || a as u32 >= self.num_actions {
            return Err(PluginError::invalid(format!("ale: action {a} of env {i} is outside 0..{}", self.num_actions)));
        }
        let minimal = &self.games[&self.slots[i].task].minimal;
        Ok(minimal.get(a as usize).copied().unwrap_or(NOOP))
    }

    /// The grey, resized current screen of env `i`'s emulator into `pair[k]`.
    fn grab(&mut self, i: usize, k: usize) {
        let slot = &self.slots[i];
        let emu = &slot.emus[&slot.task];
        emu.grayscale(&mut self.screen);
        self.resizer.resize(&self.screen, &mut self.pair[k]);
    }

    /// Appends `pair[k]` to env `i`'s frame stack, dropping the oldest.
    fn push(&mut self, i: usize, k: usize) {
        let p = self.pixels;
        let slot = &mut self.slots[i];
        let at = slot.head * p;
        slot.frames[at..at + p].copy_from_slice(&self.pair[k]);
        slot.head = (slot.head + 1) % self.cfg.frame_stack as usize;
    }

    /// Writes env `i`'s frame stack as an HWC image (channel `k` = the `k`-th oldest frame).
    fn write_obs(&self, i: usize, out: &mut [u8]) {
        let (p, stack) = (self.pixels, self.cfg.frame_stack as usize);
        let slot = &self.slots[i];
        for k in 0..stack {
            let frame = &slot.frames[((slot.head + k) % stack) * p..][..p];
            for (px, &v) in frame.iter().enumerate() {
                out[px * stack + k] = v;
            }
        }
    }

    /// Starts a new game in env `i`: draws the game when its trials are used up, restarts the
    /// emulator, plays the random no-ops and observes.
    fn new_game(&mut self, i: usize, draw: bool) -> Result<(), PluginError> {
        let slot = &mut self.slots[i];
        if draw {
            slot.task = self.tasks[slot.rng.below(self.tasks.len())];
            slot.trial = 0;
        }
        let task = slot.task;
        if !slot.emus.contains_key(&task) {
            let seed = mix(slot.rng.next(), hash_name(GAMES[task as usize])) as u32 & 0x7fff_ffff;
            slot.emus.insert(task, Ale::new(&self.games[&task].rom, settings(&self.cfg, seed as i32))?);
        }
        let noop_max = self.cfg.noop_max as usize;
        let noops = if noop_max > 1 { slot.rng.below(noop_max) } else { 0 };
        let emu = slot.emus.get_mut(&task).expect("inserted above");
        emu.reset_game();
        for _ in 0..noops {
            emu.act(NOOP);
            if emu.game_over() {
                emu.reset_game();
            }
        }
        slot.lives = emu.lives();
        slot.frames.iter_mut().for_each(|v| *v = 0);
        slot.head = 0;
        slot.score = 0.0;
        slot.steps = 0;
        self.grab(i, 0);
        self.push(i, 0);
        Ok(())
    }

    /// One agent step of env `i`; returns (raw reward, game over, truncated, life lost).
    fn act(&mut self, i: usize, action: i32) -> (f32, bool, bool, bool) {
        let skip = self.cfg.frame_skip as usize;
        self.pair[0].iter_mut().for_each(|v| *v = 0);
        self.pair[1].iter_mut().for_each(|v| *v = 0);
        let mut reward = 0i64;
        for t in 0..skip {
            let slot = &mut self.slots[i];
            let emu = slot.emus.get_mut(&slot.task).expect("the current game's emulator exists");
            reward += emu.act(action) as i64;
            if t + 2 == skip {
                self.grab(i, 0);
            } else if t + 1 == skip {
                self.grab(i, 1);
            }
            let slot = &self.slots[i];
            if slot.emus[&slot.task].game_over() {
                break;
            }
        }
        // Pixel-wise max of the last two frames (a frame not reached stays black, as in the
        // author's code when the game ends early).
        let (a, b) = self.pair.split_at_mut(1);
        a[0].iter_mut().zip(b[0].iter()).for_each(|(x, &y)| *x = (*x).max(y));
        self.push(i, 0);
        let slot = &mut self.slots[i];
        let emu = &slot.emus[&slot.task];
        let over = emu.game_over();
        let truncated = over && emu.game_truncated();
        let mut life_lost = false;
        if self.cfg.terminal_on_life_loss {
            let lives = emu.lives();
            // lives > 0: Q*bert reports 0 lives on its last one.
            life_lost = !over && lives < slot.lives && lives > 0;
            slot.lives = lives;
        }
        slot.score += reward as f64;
        slot.steps += 1;
        (reward as f32, over, truncated, life_lost)
    }

    /// After a lost life: one no-op frame, then the next observation (the stack is kept).
    /// Returns false if that frame ended the game instead.
    fn after_life_loss(&mut self, i: usize) -> bool {
        let slot = &mut self.slots[i];
        let emu = slot.emus.get_mut(&slot.task).expect("the current game's emulator exists");
        emu.act(NOOP);
        if emu.game_over() {
            return false;
        }
        slot.lives = emu.lives();
        self.grab(i, 0);
        self.push(i, 0);
        true
    }

    /// Reports env `i`'s game as an episode.
    fn finish_game(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if self.episodes.len() >= MAX_PENDING_EPISODES {
            self.episodes.remove(0);
            if !self.dropped_warned {
                log::warn!("ale: more than {MAX_PENDING_EPISODES} games were not collected by take_episodes; dropping the oldest");
                self.dropped_warned = true;
            }
        }
        self.episodes.push(EpisodeStat {
            env: i as u32,
            task: slot.task,
            ret: slot.score as f32,
            len: slot.steps,
            success: false,
        });
        slot.trial += 1;
    }

    fn clip(&self, r: f32) -> f32 {
        if self.cfg.reward_clip > 0.0 {
            r.clamp(-self.cfg.reward_clip, self.cfg.reward_clip)
        } else {
            r
        }
    }
}

fn settings(cfg: &Config, seed: i32) -> Settings {
    Settings { seed, repeat_action_probability: cfg.sticky_actions, max_frames: cfg.max_frames as i32 }
}

impl Env for AleEnv {
    fn spec(&self) -> EnvSpec {
        let side = self.cfg.screen_size;
        let mut action = Space::discrete(self.num_actions);
        action.parts[0].padded = self.cfg.actions == ActionSet::Padded;
        let max_episode_steps =
            if self.cfg.max_frames > 0 { self.cfg.max_frames.div_ceil(self.cfg.frame_skip) } else { 0 };
        EnvSpec {
            obs: Space::image(side, side, self.cfg.frame_stack),
            action,
            num_envs: self.slots.len() as u32,
            max_episode_steps,
            caps: crate::CAPS,
        }
    }

    fn reset(&mut self, seed: u64, out: ResetBuffers<'_>) -> Result<(), PluginError> {
        let n = self.slots.len();
        let per = self.pixels * self.cfg.frame_stack as usize;
        let ResetBuffers { mut obs, mut task } = out;
        check_out(&obs, n * per, task.len(), n)?;
        let obs = obs.get_mut(0).expect("checked").u8().expect("checked");
        for i in 0..n {
            let slot = &mut self.slots[i];
            slot.rng = SeedStream::new(mix(mix(self.seed, seed), i as u64));
            slot.emus.clear();
            self.new_game(i, true)?;
            self.write_obs(i, &mut obs[i * per..(i + 1) * per]);
            task[i] = self.slots[i].task;
        }
        Ok(())
    }

    fn step(&mut self, actions: Arrays<'_>, out: StepBuffers<'_>) -> Result<(), PluginError> {
        let n = self.slots.len();
        let per = self.pixels * self.cfg.frame_stack as usize;
        if self.slots.iter().any(|s| s.emus.is_empty()) {
            return Err(PluginError::invalid("ale: step before reset"));
        }
        let acts =
            actions.first().and_then(|a| a.i32()).filter(|a| a.len() == n).ok_or_else(|| {
                PluginError::invalid(format!("ale: step needs one i32 action array with {n} entries"))
            })?;
        let StepBuffers {
            mut obs,
            mut final_obs,
            mut reward,
            mut terminated,
            mut truncated,
            mut success,
            mut task_end,
            mut task,
        } = out;
        check_out(&obs, n * per, task.len(), n)?;
        if reward.len() != n
            || terminated.len() != n
            || truncated.len() != n
            || success.len() != n
            || task_end.len() != n
        {
            return Err(PluginError::invalid(format!("ale: step buffers must have {n} rows")));
        }
        let obs = obs.get_mut(0).expect("checked").u8().expect("checked");
        let mut final_obs = final_obs.get_mut(0).and_then(|a| a.u8()).filter(|f| f.len() == n * per);
        for i in 0..n {
            let a = self.ale_action(i, acts[i])?;
            let (r, over, cut, life_lost) = self.act(i, a);
            reward[i] = self.clip(r);
            terminated[i] = (over && !cut || life_lost) as u8;
            truncated[i] = cut as u8;
            success[i] = 0;
            task_end[i] = 0;
            if over || life_lost {
                if let Some(f) = final_obs.as_deref_mut() {
                    self.write_obs(i, &mut f[i * per..(i + 1) * per]);
                }
            }
            // A game also ends when the no-op frame after a lost life ends it; either way the
            // next game starts as at a game over (trials counted, task drawn when used up).
            if over || (life_lost && !self.after_life_loss(i)) {
                self.finish_game(i);
                let draw = self.slots[i].trial >= self.trials;
                task_end[i] = draw as u8;
                self.new_game(i, draw)?;
            }
            self.write_obs(i, &mut obs[i * per..(i + 1) * per]);
            task[i] = self.slots[i].task;
        }
        Ok(())
    }

    fn take_episodes(&mut self) -> Vec<EpisodeStat> {
        std::mem::take(&mut self.episodes)
    }
}

fn check_out(obs: &ArraysMut<'_>, len: usize, tasks: usize, n: usize) -> Result<(), PluginError> {
    let ok = obs.len() == 1 && obs.first().is_some_and(|a| a.dtype() == Dtype::U8 && a.len() == len) && tasks == n;
    if ok {
        Ok(())
    } else {
        Err(PluginError::invalid(format!(
            "ale: observation buffers must be one u8 array of {len} elements and {n} task rows"
        )))
    }
}
