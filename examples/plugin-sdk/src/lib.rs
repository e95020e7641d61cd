//! Example third-party env plugin: Bernoulli bandits.
//!
//! Each task is a `k`-armed bandit whose best arm pays with probability `high` and the others
//! with `low`. The observation is the previous reward only, so the task must be inferred from
//! reward across pulls: the classic RL² benchmark. Copy this crate to start a plugin of your
//! own: implement [`Env`] for your env and [`PluginFactory`] for a unit struct, then
//! `export_plugin!` it and add an entry to `registry.toml`.
//!
//! It depends on `metarl-plugin-api` alone (plus serde and toml for its config): the ABI
//! crate is all a third-party plugin needs. `metarl-plugin-kit` (the driver, seeds, config
//! helpers) is optional.

use metarl_plugin_api::prelude::*;
use serde::Deserialize;

const ARMS: u32 = 5;
/// Task repeats for RL², and the true last observation of each episode.
const CAPS: Caps = Caps(Caps::ENV_TRIALS.0 | Caps::ENV_FINAL_OBS.0);

/// Config keys, all optional. Unknown keys are refused with their name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Pulls per episode.
    horizon: u32,
    /// Payout probability of the best arm.
    high: f32,
    /// Payout probability of every other arm.
    low: f32,
}

impl Default for Config {
    fn default() -> Self {
        Self { horizon: 10, high: 0.9, low: 0.1 }
    }
}

struct Bandits {
    cfg: Config,
    tasks: Vec<u64>,
    trials: u32,
    rng: u64,
    best: Vec<u64>,
    pulls: Vec<u32>,
    trial: Vec<u32>,
    ret: Vec<f32>,
    finished: Vec<EpisodeStat>,
}

impl Bandits {
    fn uniform(&mut self) -> f32 {
        // xorshift64*: plenty for an example.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
    }

    fn new_task(&mut self, i: usize) {
        let k = (self.uniform() * self.tasks.len() as f32) as usize;
        self.best[i] = self.tasks[k.min(self.tasks.len() - 1)];
        self.trial[i] = 0;
    }
}

impl Env for Bandits {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            obs: ObsSpace::vector(1),
            action: ActionSpace::discrete(ARMS),
            num_envs: self.best.len() as u32,
            max_episode_steps: self.cfg.horizon,
            caps: CAPS,
        }
    }

    fn reset(&mut self, seed: u64, mut out: ResetBuffers<'_>) -> Result<(), PluginError> {
        self.rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for i in 0..self.best.len() {
            self.new_task(i);
            (self.pulls[i], self.ret[i]) = (0, 0.0);
            out.task[i] = self.best[i];
        }
        // One observation part (the `vector` of `ObsSpace::vector`), as f32.
        match out.obs.as_mut_slice() {
            [part] => part.f32().ok_or_else(|| PluginError::invalid("bandit observations are f32"))?.fill(0.0),
            _ => return Err(PluginError::invalid("bandit observations have one part")),
        }
        Ok(())
    }

    fn step(&mut self, actions: Arrays<'_>, mut out: StepBuffers<'_>) -> Result<(), PluginError> {
        // One action part of i32 arm indices; one observation part of f32.
        let Some(arms) = actions.first().and_then(|a| a.i32()) else {
            return Err(PluginError::invalid("bandit actions are one part of discrete (i32) arm indices"));
        };
        let [obs] = out.obs.as_mut_slice() else {
            return Err(PluginError::invalid("bandit observations have one part"));
        };
        let Some(obs) = obs.f32() else {
            return Err(PluginError::invalid("bandit observations are f32 vectors"));
        };
        // With ENV_FINAL_OBS the caller lends a buffer for the last observation of an episode.
        let mut final_obs = out.final_obs.as_mut_slice().first_mut().and_then(|p| p.f32());
        if arms.len() != self.best.len() || obs.len() != self.best.len() {
            return Err(PluginError::invalid(format!("expected {} envs", self.best.len())));
        }
        for i in 0..self.best.len() {
            let p = if arms[i] as u64 == self.best[i] { self.cfg.high } else { self.cfg.low };
            let r = (self.uniform() < p) as u8 as f32;
            self.pulls[i] += 1;
            self.ret[i] += r;
            let done = self.pulls[i] >= self.cfg.horizon;
            (out.reward[i], out.terminated[i], out.truncated[i], out.success[i], out.task_end[i]) = (r, 0, done as u8, 0, 0);
            obs[i] = r;
            if done {
                if let Some(f) = final_obs.as_deref_mut() {
                    f[i] = r;
                }
                self.finished.push(EpisodeStat { env: i as u32, task: self.best[i], ret: self.ret[i], len: self.pulls[i], success: false });
                (self.pulls[i], self.ret[i]) = (0, 0.0);
                self.trial[i] += 1;
                if self.trial[i] >= self.trials {
                    out.task_end[i] = 1;
                    self.new_task(i);
                }
                obs[i] = 0.0;
            }
            out.task[i] = self.best[i];
        }
        Ok(())
    }

    fn take_episodes(&mut self) -> Vec<EpisodeStat> {
        std::mem::take(&mut self.finished)
    }
}

/// The plugin: one unit struct whose associated functions the exported root module calls.
pub struct BanditPlugin;

impl PluginFactory for BanditPlugin {
    const KIND: PluginKind = PluginKind::ENV;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "bandit".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::ENV,
            description: "example plugin: 5-armed Bernoulli bandits, task = best arm".into(),
            caps: CAPS,
            families: vec![TaskFamily { name: "bandit5".into(), description: "the best of 5 arms".into(), tasks: TaskSet::indexed(ARMS as u64) }].into(),
            requires: Caps::NONE,
        }
    }

    fn new_env(req: &EnvRequest) -> Result<Box<dyn Env>, PluginError> {
        let cfg: Config =
            toml::from_str(&req.config).map_err(|e| PluginError::invalid(format!("bandit config: {}", e.message().trim())))?;
        if req.family.as_str() != "bandit5" {
            return Err(PluginError::invalid(format!("unknown task family '{}' (valid: bandit5)", req.family)));
        }
        if req.num_envs == 0 || req.trials == 0 || cfg.horizon == 0 {
            return Err(PluginError::invalid("num_envs, trials and horizon must be at least 1"));
        }
        if let Some(t) = req.tasks.iter().find(|&&t| t >= ARMS as u64) {
            return Err(PluginError::invalid(format!("task {t} out of range 0..{ARMS}")));
        }
        let tasks = if req.tasks.is_empty() { (0..ARMS as u64).collect() } else { req.tasks.to_vec() };
        let n = req.num_envs as usize;
        Ok(Box::new(Bandits {
            cfg,
            tasks,
            trials: req.trials,
            rng: req.seed | 1,
            best: vec![0; n],
            pulls: vec![0; n],
            trial: vec![0; n],
            ret: vec![0.0; n],
            finished: Vec::new(),
        }))
    }
}

metarl_plugin_api::export_plugin!(BanditPlugin);
