//! Hyper-parameters: the TOML the user writes ([`RawConfig`]) and what it resolves to
//! ([`Config`]).
//!
//! `preset` picks a complete set of defaults (`paper`, the default, or `cpu-small`), then every
//! key written explicitly overrides its preset value. Unknown keys are refused.

use metarl_plugin_api::types::PluginError;
use metarl_plugin_kit::parse_config;
use serde::Deserialize;

use crate::learn::{LearnConfig, TargetMean};
use crate::net::NetSize;

/// A named set of defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// stepjam/ARM's C2F-ARM (FACTS): 2 levels of 16³, ±0.15 m crops, 64 kernels, batch 128,
    /// one gradient step per env step (YARR's replay ratio 128 at batch 128), 100k
    /// transitions per task, 200 transitions before training.
    #[default]
    Paper,
    /// For a 2-core CPU: 2 levels of 8³, 16 kernels with zero padding, batch 16, two gradient
    /// steps per env step (replay ratio 32, a quarter of the paper's), 20k transitions per
    /// task, 50 before training.
    CpuSmall,
}

/// `target` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Each level's target from its own heads (stepjam/ARM).
    PerLevel,
    /// One target for all levels, from every level's heads.
    AcrossLevels,
}

/// `adapt_exploration`: the ε schedule when adaptation starts from a pretraining checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AdaptExploration {
    /// Start it again from `epsilon_start`, as a new training run does (the study's
    /// fine-tuning runs are new runs from loaded weights).
    #[default]
    Restart,
    /// Carry on where pretraining left it (usually at `epsilon_end`).
    Continue,
}

/// The config as written: every key optional, unknown keys refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `"paper"` (default) or `"cpu-small"`.
    pub preset: Option<Preset>,
    /// Level 0's box `[xmin, ymin, zmin, xmax, ymax, zmax]` in metres (default: the position
    /// bounds of the env's pose action part).
    pub scene_bounds: Option<[f64; 6]>,
    /// Coarse-to-fine levels.
    pub levels: Option<u32>,
    /// Voxels per side at every level.
    pub grid: Option<u32>,
    /// Half-side of each finer level's box around the coarser level's chosen voxel, metres.
    pub bounds_offset: Option<f64>,
    /// Kernels of the network's first blocks.
    pub kernels: Option<u32>,
    /// Channels inside an inception block's branches.
    pub latent: Option<u32>,
    /// Width of the rotation/gripper MLP.
    pub dense: Option<u32>,
    /// Zero padding instead of ARM's replicate padding.
    pub zero_pad: Option<bool>,
    /// Discount γ.
    pub gamma: Option<f64>,
    /// Adam step size.
    pub learning_rate: Option<f64>,
    /// Adam's ε.
    pub adam_eps: Option<f64>,
    /// L2 weight decay (as PyTorch's Adam adds it).
    pub weight_decay: Option<f64>,
    /// Per-element gradient clip (0: none).
    pub grad_clip: Option<f64>,
    /// Soft target update rate τ.
    pub tau: Option<f64>,
    /// λ of the L1 regularisation of the translation Q-values.
    pub lambda_trans_qreg: Option<f64>,
    /// λ of the L1 regularisation of the rotation and gripper Q-values.
    pub lambda_rot_qreg: Option<f64>,
    /// `"per-level"` (ARM) or `"across-levels"`.
    pub target: Option<Target>,
    /// Exponent α of new priorities.
    pub priority_exponent: Option<f64>,
    /// Importance-sampling exponent β: weights `(N P(i))^-β`, divided by their maximum.
    pub importance_beta: Option<f64>,
    /// Samples per gradient step (a multi-task plan divides them among its tasks).
    pub batch_size: Option<u32>,
    /// Env steps (demo rows included) recorded before the first update.
    pub learning_starts: Option<u64>,
    /// Env steps per env between updates.
    pub steps_per_update: Option<u32>,
    /// Gradient steps per update.
    pub grad_steps: Option<u32>,
    /// Transitions each task's buffer holds.
    pub memory_capacity: Option<u64>,
    /// Exploration: probability of a uniformly random voxel (per level), rotation bin (per
    /// axis) and gripper state at the start of training.
    pub epsilon_start: Option<f64>,
    /// ... and after `explore_steps` env steps.
    pub epsilon_end: Option<f64>,
    /// Env steps over which ε goes linearly from `epsilon_start` to `epsilon_end`.
    pub explore_steps: Option<u64>,
    /// `"restart"` (default): adaptation from a pretraining checkpoint starts the ε schedule
    /// again; `"continue"`: it goes on from pretraining's.
    pub adapt_exploration: Option<AdaptExploration>,
    /// Standard deviation, in voxels, of Gaussian noise on each level's chosen voxel.
    pub voxel_noise: Option<f64>,
    /// Standard deviation, in bins, of Gaussian noise on the chosen rotation bins.
    pub rotation_noise: Option<f64>,
    /// Crop augmentation of demonstrations: each finer level's box is moved by a uniform shift
    /// of up to this fraction of `bounds_offset` per axis (0: none).
    pub crop_augmentation: Option<f64>,
    /// Observation cameras to voxelise (the prefix of `<cam>_point_cloud`; default: all).
    pub cameras: Option<Vec<String>>,
    /// The proprioception part (default: `proprio` or `low_dim`, else the first vector part).
    pub proprio: Option<String>,
    /// Whether `save` includes the replay buffers.
    pub save_replay: Option<bool>,
    /// Refused: libtorch's thread count is the host's (`AlgoRequest::threads`).
    pub threads: Option<u32>,
}

/// Resolved hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The preset the defaults came from.
    pub preset: Preset,
    /// Level 0's box, or `None` for the action's position bounds.
    pub scene_bounds: Option<[f64; 6]>,
    /// Levels.
    pub levels: usize,
    /// Voxels per side.
    pub grid: i64,
    /// Crop half-side.
    pub bounds_offset: f64,
    /// Network widths.
    pub net: NetSize,
    /// The learning step's settings.
    pub learn: LearnConfig,
    /// Importance-sampling exponent β.
    pub importance_beta: f64,
    /// Batch size.
    pub batch_size: u32,
    /// Warm-up env steps.
    pub learning_starts: u64,
    /// Env steps per env per update.
    pub steps_per_update: u32,
    /// Gradient steps per update.
    pub grad_steps: u32,
    /// Per-task buffer capacity.
    pub memory_capacity: u64,
    /// ε at the start.
    pub epsilon_start: f64,
    /// ε at the end of the schedule.
    pub epsilon_end: f64,
    /// ε schedule length in env steps.
    pub explore_steps: u64,
    /// The ε schedule at the start of adaptation.
    pub adapt_exploration: AdaptExploration,
    /// Voxel noise std.
    pub voxel_noise: f64,
    /// Rotation noise std in bins.
    pub rotation_noise: f64,
    /// Crop augmentation, as a fraction of `bounds_offset`.
    pub crop_augmentation: f64,
    /// Cameras to use (`None`: all).
    pub cameras: Option<Vec<String>>,
    /// Proprioception part name (`None`: found by name or role).
    pub proprio: Option<String>,
    /// Replay in checkpoints.
    pub save_replay: bool,
}

impl Config {
    /// The defaults of `preset`.
    pub fn preset(preset: Preset) -> Self {
        let paper = Config {
            preset,
            scene_bounds: None,
            levels: 2,
            grid: 16,
            bounds_offset: 0.15,
            net: NetSize::PAPER,
            learn: LearnConfig::default(),
            // ARM's loss weights: 1 / sqrt(P(i)), divided by the batch maximum.
            importance_beta: 0.5,
            batch_size: 128,
            learning_starts: 200,
            steps_per_update: 1,
            grad_steps: 1,
            memory_capacity: 100_000,
            // ARM acts deterministically; these are this plugin's (see the crate docs).
            epsilon_start: 0.1,
            epsilon_end: 0.01,
            explore_steps: 10_000,
            adapt_exploration: AdaptExploration::Restart,
            voxel_noise: 0.0,
            rotation_noise: 0.0,
            // ARM's: shifts of up to ±0.75 × 0.15 m.
            crop_augmentation: 0.75,
            cameras: None,
            proprio: None,
            save_replay: true,
        };
        match preset {
            Preset::Paper => paper,
            Preset::CpuSmall => Config {
                grid: 8,
                net: NetSize::CPU_SMALL,
                batch_size: 16,
                learning_starts: 50,
                // Measured on button-press-topdown (benches/c2farm-learning.sh): an update
                // every 2 env steps (replay ratio 8) learned on one seed of two; ratio 32
                // learned on both, and faster.
                steps_per_update: 1,
                grad_steps: 2,
                memory_capacity: 20_000,
                epsilon_start: 0.2,
                epsilon_end: 0.02,
                explore_steps: 2_000,
                ..paper
            },
        }
    }

    /// Parses and validates a plugin config (TOML text).
    pub fn from_toml(text: &str) -> Result<Self, PluginError> {
        let raw: RawConfig = parse_config("c2farm", text)?;
        Self::resolve(raw)
    }

    /// Applies `raw` over its preset and validates the result.
    pub fn resolve(raw: RawConfig) -> Result<Self, PluginError> {
        if raw.threads.is_some() {
            return Err(PluginError::invalid(
                "c2farm config: threads is not a c2farm key: the host sets libtorch's thread count once for the process \
                 (the experiment's top-level `threads`)",
            ));
        }
        let mut c = Config::preset(raw.preset.unwrap_or_default());
        macro_rules! take {
            ($($field:ident => $dst:expr, $conv:expr;)*) => {
                $( if let Some(v) = raw.$field { $dst = $conv(v); } )*
            };
        }
        take! {
            levels => c.levels, |v: u32| v as usize;
            grid => c.grid, i64::from;
            bounds_offset => c.bounds_offset, |v| v;
            kernels => c.net.kernels, i64::from;
            latent => c.net.latent, i64::from;
            dense => c.net.dense, i64::from;
            zero_pad => c.net.zero_pad, |v| v;
            gamma => c.learn.gamma, |v| v;
            learning_rate => c.learn.lr, |v| v;
            adam_eps => c.learn.adam_eps, |v| v;
            weight_decay => c.learn.weight_decay, |v| v;
            grad_clip => c.learn.grad_clip, |v| v;
            tau => c.learn.tau, |v| v;
            lambda_trans_qreg => c.learn.lambda_trans_qreg, |v| v;
            lambda_rot_qreg => c.learn.lambda_rot_qreg, |v| v;
            priority_exponent => c.learn.priority_alpha, |v| v;
            importance_beta => c.importance_beta, |v| v;
            batch_size => c.batch_size, |v| v;
            learning_starts => c.learning_starts, |v| v;
            steps_per_update => c.steps_per_update, |v| v;
            grad_steps => c.grad_steps, |v| v;
            memory_capacity => c.memory_capacity, |v| v;
            epsilon_start => c.epsilon_start, |v| v;
            epsilon_end => c.epsilon_end, |v| v;
            explore_steps => c.explore_steps, |v| v;
            adapt_exploration => c.adapt_exploration, |v| v;
            voxel_noise => c.voxel_noise, |v| v;
            rotation_noise => c.rotation_noise, |v| v;
            crop_augmentation => c.crop_augmentation, |v| v;
            save_replay => c.save_replay, |v| v;
        }
        if let Some(t) = raw.target {
            c.learn.target = match t {
                Target::PerLevel => TargetMean::PerLevel,
                Target::AcrossLevels => TargetMean::AcrossLevels,
            };
        }
        c.scene_bounds = raw.scene_bounds.or(c.scene_bounds);
        c.cameras = raw.cameras.or(c.cameras);
        c.proprio = raw.proprio.or(c.proprio);
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), PluginError> {
        let bad = |msg: String| Err(PluginError::invalid(format!("c2farm config: {msg}")));
        if !(1..=4).contains(&self.levels) {
            return bad(format!("levels must be within 1..=4, got {}", self.levels));
        }
        for (name, v) in [
            ("batch_size", self.batch_size as u64),
            ("steps_per_update", self.steps_per_update as u64),
            ("grad_steps", self.grad_steps as u64),
            ("memory_capacity", self.memory_capacity),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        if self.memory_capacity > u32::MAX as u64 {
            return bad(format!("memory_capacity = {} is too large", self.memory_capacity));
        }
        if let Some(b) = self.scene_bounds {
            if b.iter().any(|x| !x.is_finite()) || (0..3).any(|a| b[a] >= b[a + 3]) {
                return bad(format!("scene_bounds must be finite [xmin, ymin, zmin, xmax, ymax, zmax] with min < max, got {b:?}"));
            }
        }
        for (name, v) in [("gamma", self.learn.gamma), ("tau", self.learn.tau), ("epsilon_start", self.epsilon_start), ("epsilon_end", self.epsilon_end), ("crop_augmentation", self.crop_augmentation)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must be in [0, 1], got {v}"));
            }
        }
        for (name, v) in [
            ("bounds_offset", self.bounds_offset),
            ("learning_rate", self.learn.lr),
            ("adam_eps", self.learn.adam_eps),
            ("weight_decay", self.learn.weight_decay),
            ("grad_clip", self.learn.grad_clip),
            ("lambda_trans_qreg", self.learn.lambda_trans_qreg),
            ("lambda_rot_qreg", self.learn.lambda_rot_qreg),
            ("priority_exponent", self.learn.priority_alpha),
            ("importance_beta", self.importance_beta),
            ("voxel_noise", self.voxel_noise),
            ("rotation_noise", self.rotation_noise),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(format!("{name} must be a finite non-negative number, got {v}"));
            }
        }
        if self.levels > 1 && self.bounds_offset <= 0.0 {
            return bad("bounds_offset must be positive with more than one level".into());
        }
        Ok(())
    }

    /// ε after `steps` env steps of training.
    pub fn epsilon(&self, steps: u64) -> f64 {
        let f = (steps as f64 / self.explore_steps.max(1) as f64).min(1.0);
        self.epsilon_start + (self.epsilon_end - self.epsilon_start) * f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_carry_the_paper_and_the_cpu_settings() {
        let p = Config::from_toml("").unwrap();
        assert_eq!((p.levels, p.grid, p.bounds_offset, p.net, p.batch_size), (2, 16, 0.15, NetSize::PAPER, 128));
        assert_eq!((p.learn.lr, p.learn.weight_decay, p.learn.tau, p.learn.grad_clip), (5e-4, 1e-6, 0.0025, 0.01));
        assert_eq!((p.learning_starts, p.memory_capacity, p.steps_per_update, p.learn.priority_alpha), (200, 100_000, 1, 0.7));
        let s = Config::from_toml("preset = \"cpu-small\"\ngrid = 16\ntarget = \"across-levels\"").unwrap();
        assert_eq!((s.grid, s.net, s.batch_size, s.learn.target), (16, NetSize::CPU_SMALL, 16, TargetMean::AcrossLevels));
        let b = Config::from_toml("scene_bounds = [-0.5, 0.3, 0.0, 0.5, 1.0, 0.5]").unwrap();
        assert_eq!(b.scene_bounds, Some([-0.5, 0.3, 0.0, 0.5, 1.0, 0.5]));
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            ("learning_rat = 1.0", "learning_rat"),
            ("gamma = 1.5", "gamma"),
            ("threads = 2", "threads"),
            ("levels = 0", "levels"),
            ("scene_bounds = [0, 0, 0, 0, 1, 1]", "scene_bounds"),
            ("voxel_noise = -1", "voxel_noise"),
        ] {
            let e = Config::from_toml(text).unwrap_err();
            assert!(e.message.contains(key) && !e.message.contains('\n'), "{text}: {}", e.message);
        }
    }

    #[test]
    fn epsilon_decays_linearly_then_stays() {
        let c = Config::from_toml("epsilon_start = 0.5\nepsilon_end = 0.1\nexplore_steps = 100").unwrap();
        assert_eq!(c.epsilon(0), 0.5);
        assert!((c.epsilon(50) - 0.3).abs() < 1e-12);
        assert!((c.epsilon(100) - 0.1).abs() < 1e-12 && (c.epsilon(10_000) - 0.1).abs() < 1e-12);
    }
}
