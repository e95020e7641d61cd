//! Hyper-parameters: the TOML the user writes ([`RawConfig`]) and what it resolves to
//! ([`Config`]).
//!
//! `preset` picks a complete set of defaults, then every key written explicitly overrides its
//! preset value. Unknown keys are refused.

use metarl_plugin_api::types::PluginError;
use metarl_plugin_kit::parse_config;
use serde::Deserialize;

/// A named set of defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Data-efficient Rainbow (van Hasselt et al. 2019; Kaixhin `--architecture
    /// data-efficient`): hidden 256, n = 20, 100k-transition replay, 1600 steps of warm-up.
    #[default]
    Der,
    /// The study's multi-task pretraining (MandiZhao/Rainbow `main_mt.py`, 5-task set): hidden
    /// 512, a 1M-transition memory split over the 5 games (200k per game buffer), 9000 steps
    /// of warm-up in all, β annealed over the 1M steps; adaptation starts fine-tuning as the
    /// study's `--model ... --reset_sigmas` runs do (see [`OnLoad::Finetune`]).
    StudyPretrain,
}

/// What `load_pretrained` (the start of adaptation) does with a pretraining checkpoint. A unit
/// continued from its own mid-phase checkpoint is always restored exactly, by `load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnLoad {
    /// Restore everything `save` wrote and carry on (weights, target net, Adam, replay with
    /// priorities, RNGs, noise, update counter).
    #[default]
    Resume,
    /// Start fine-tuning from a pretrained checkpoint, as the study's fine-tuning runs do: take
    /// the online network's weights only; the target net copies them; Adam, the replay (empty),
    /// the update counter and the β schedule start afresh; NoisyNet σ are reset when
    /// `reset_sigmas`; from then on `finetune_learning_starts`, `finetune_memory_capacity` and
    /// `finetune_beta_updates` apply.
    Finetune,
}

/// How a `truncated` row (time limit) ends an n-step return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Truncation {
    /// Bootstrap from the row's `final_obs` (the true last observation) when the env gives
    /// one; rows without it are treated as terminal.
    #[default]
    Bootstrap,
    /// Treat the time cap as terminal, as DER (Kaixhin's code) does.
    Terminal,
}

/// The config as written: every key optional, unknown keys refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Defaults to start from (`"der"` or `"study-pretrain"`; default `"der"`).
    pub preset: Option<Preset>,
    /// Hidden units of each dueling stream (value and advantage).
    pub hidden: Option<u32>,
    /// Atoms of the return distribution (C51).
    pub atoms: Option<u32>,
    /// Lowest atom.
    pub v_min: Option<f64>,
    /// Highest atom.
    pub v_max: Option<f64>,
    /// NoisyNet σ₀ (factorised noise).
    pub noisy_std: Option<f64>,
    /// n of the n-step return.
    pub multi_step: Option<u32>,
    /// Discount γ.
    pub gamma: Option<f64>,
    /// Gradient steps between two copies of the online net into the target net.
    pub target_update: Option<u32>,
    /// Adam step size.
    pub learning_rate: Option<f64>,
    /// Adam epsilon.
    pub adam_eps: Option<f64>,
    /// Samples per gradient step (a multi-task plan divides them among its tasks).
    pub batch_size: Option<u32>,
    /// Global gradient-norm clip.
    pub max_grad_norm: Option<f64>,
    /// Env steps recorded before the first update (DER's "min replay history").
    pub learning_starts: Option<u64>,
    /// Env steps per env between updates (replay period).
    pub steps_per_update: Option<u32>,
    /// Gradient steps per ordinary update.
    pub grad_steps: Option<u32>,
    /// Capacity of each task's replay buffer, in transitions (per task, not split).
    pub memory_capacity: Option<u64>,
    /// PER priority exponent ω.
    pub priority_exponent: Option<f64>,
    /// PER importance-sampling exponent β at the start of training.
    pub priority_weight: Option<f64>,
    /// Gradient steps over which β rises linearly from `priority_weight` to 1.
    pub beta_updates: Option<u64>,
    /// Frames per observation (a stack of frames, oldest first, along the channels). Default:
    /// 4 for 4-channel images (DER's Atari stack), 1 otherwise.
    pub frame_stack: Option<u32>,
    /// The study author's ReLU on the final value and advantage outputs (default off, as DER
    /// and Kaixhin).
    pub head_relu: Option<bool>,
    /// `"bootstrap"` (default) or `"terminal"`.
    pub truncation: Option<Truncation>,
    /// `"resume"` or `"finetune"`.
    pub on_load: Option<OnLoad>,
    /// Reset NoisyNet σ to σ₀/sqrt(fan) when a `load` starts fine-tuning.
    pub reset_sigmas: Option<bool>,
    /// After a fine-tuning `load`: warm-up steps.
    pub finetune_learning_starts: Option<u64>,
    /// After a fine-tuning `load`: capacity of each task's buffer.
    pub finetune_memory_capacity: Option<u64>,
    /// After a fine-tuning `load`: β annealing span in gradient steps.
    pub finetune_beta_updates: Option<u64>,
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
    /// Dueling stream width.
    pub hidden: i64,
    /// Number of atoms.
    pub atoms: i64,
    /// Support's lowest value.
    pub v_min: f64,
    /// Support's highest value.
    pub v_max: f64,
    /// NoisyNet σ₀.
    pub noisy_std: f64,
    /// n-step.
    pub multi_step: usize,
    /// Discount.
    pub gamma: f64,
    /// Target copy period in gradient steps.
    pub target_update: u64,
    /// Adam step size.
    pub learning_rate: f64,
    /// Adam epsilon.
    pub adam_eps: f64,
    /// Batch size.
    pub batch_size: u32,
    /// Gradient-norm clip.
    pub max_grad_norm: f64,
    /// Warm-up env steps.
    pub learning_starts: u64,
    /// Env steps per env per update.
    pub steps_per_update: u32,
    /// Gradient steps per update.
    pub grad_steps: u32,
    /// Per-task buffer capacity.
    pub memory_capacity: u64,
    /// PER ω.
    pub priority_exponent: f64,
    /// PER β₀.
    pub priority_weight: f64,
    /// β annealing span.
    pub beta_updates: u64,
    /// Frames per observation; `None` = decided from the observation's channels.
    pub frame_stack: Option<u32>,
    /// ReLU on the final dueling outputs.
    pub head_relu: bool,
    /// Truncation handling.
    pub truncation: Truncation,
    /// `load` semantics.
    pub on_load: OnLoad,
    /// σ reset at a fine-tuning load.
    pub reset_sigmas: bool,
    /// Warm-up after a fine-tuning load.
    pub finetune_learning_starts: u64,
    /// Buffer capacity after a fine-tuning load.
    pub finetune_memory_capacity: u64,
    /// β span after a fine-tuning load.
    pub finetune_beta_updates: u64,
    /// Replay in checkpoints.
    pub save_replay: bool,
}

impl Config {
    /// The defaults of `preset`.
    pub fn preset(preset: Preset) -> Self {
        let der = Config {
            preset,
            hidden: 256,
            atoms: 51,
            v_min: -10.0,
            v_max: 10.0,
            noisy_std: 0.1,
            multi_step: 20,
            gamma: 0.99,
            target_update: 2000,
            learning_rate: 1e-4,
            adam_eps: 1.5e-4,
            batch_size: 32,
            max_grad_norm: 10.0,
            learning_starts: 1600,
            steps_per_update: 1,
            grad_steps: 1,
            memory_capacity: 100_000,
            priority_exponent: 0.5,
            priority_weight: 0.4,
            // Kaixhin: β rises over T_max - learn_start = 100k - 1600 steps.
            beta_updates: 98_400,
            frame_stack: None,
            head_relu: false,
            truncation: Truncation::Bootstrap,
            on_load: OnLoad::Resume,
            reset_sigmas: false,
            finetune_learning_starts: 1600,
            finetune_memory_capacity: 100_000,
            finetune_beta_updates: 98_400,
            save_replay: true,
        };
        match preset {
            Preset::Der => der,
            Preset::StudyPretrain => Config {
                hidden: 512,
                // --memory-capacity 1_000_000 split over the 5 games (--separate_buffer); the
                // 10-task set splits it into 100_000 per game.
                memory_capacity: 200_000,
                // --learn_start 9000 for the 5-task set (16000 for 10 tasks).
                learning_starts: 9000,
                beta_updates: 1_000_000 - 9000,
                on_load: OnLoad::Finetune,
                reset_sigmas: true,
                // A pretraining checkpoint only seeds fine-tuning, which starts with an empty
                // memory: 1M frames (7 GB) in it would be dead weight.
                save_replay: false,
                ..der
            },
        }
    }

    /// Parses and validates a plugin config (TOML text).
    pub fn from_toml(text: &str) -> Result<Self, PluginError> {
        let raw: RawConfig = parse_config("rainbow", text)?;
        Self::resolve(raw)
    }

    /// Applies `raw` over its preset and validates the result.
    pub fn resolve(raw: RawConfig) -> Result<Self, PluginError> {
        if raw.threads.is_some() {
            return Err(PluginError::invalid(
                "rainbow config: threads is not a rainbow key: the host sets libtorch's thread count once for the process \
                 (the experiment's top-level `threads`)",
            ));
        }
        let mut c = Config::preset(raw.preset.unwrap_or_default());
        macro_rules! take {
            ($($field:ident => $conv:expr),* $(,)?) => {
                $( if let Some(v) = raw.$field { c.$field = $conv(v); } )*
            };
        }
        take! {
            hidden => i64::from,
            atoms => i64::from,
            v_min => |v| v,
            v_max => |v| v,
            noisy_std => |v| v,
            multi_step => |v: u32| v as usize,
            gamma => |v| v,
            target_update => u64::from,
            learning_rate => |v| v,
            adam_eps => |v| v,
            batch_size => |v| v,
            max_grad_norm => |v| v,
            learning_starts => |v| v,
            steps_per_update => |v| v,
            grad_steps => |v| v,
            memory_capacity => |v| v,
            priority_exponent => |v| v,
            priority_weight => |v| v,
            beta_updates => |v| v,
            head_relu => |v| v,
            truncation => |v| v,
            on_load => |v| v,
            reset_sigmas => |v| v,
            finetune_learning_starts => |v| v,
            finetune_memory_capacity => |v| v,
            finetune_beta_updates => |v| v,
            save_replay => |v| v,
        }
        if raw.frame_stack.is_some() {
            c.frame_stack = raw.frame_stack;
        }
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), PluginError> {
        let bad = |msg: String| Err(PluginError::invalid(format!("rainbow config: {msg}")));
        for (name, v) in [("hidden", self.hidden), ("atoms", self.atoms)] {
            if v < 2 {
                return bad(format!("{name} must be at least 2"));
            }
        }
        for (name, v) in [
            ("multi_step", self.multi_step as u64),
            ("target_update", self.target_update),
            ("batch_size", self.batch_size as u64),
            ("steps_per_update", self.steps_per_update as u64),
            ("grad_steps", self.grad_steps as u64),
            ("beta_updates", self.beta_updates),
            ("finetune_beta_updates", self.finetune_beta_updates),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        for (name, cap) in [("memory_capacity", self.memory_capacity), ("finetune_memory_capacity", self.finetune_memory_capacity)] {
            if cap < self.multi_step as u64 + 1 || cap > u32::MAX as u64 / 2 {
                return bad(format!("{name} = {cap} must be in {}..={}", self.multi_step + 1, u32::MAX / 2));
            }
        }
        if !(self.v_min.is_finite() && self.v_max.is_finite() && self.v_min < self.v_max) {
            return bad(format!("need finite v_min < v_max, got {} and {}", self.v_min, self.v_max));
        }
        for (name, v) in [("gamma", self.gamma), ("priority_weight", self.priority_weight)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must be in [0, 1], got {v}"));
            }
        }
        for (name, v) in [
            ("noisy_std", self.noisy_std),
            ("learning_rate", self.learning_rate),
            ("adam_eps", self.adam_eps),
            ("max_grad_norm", self.max_grad_norm),
            ("priority_exponent", self.priority_exponent),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(format!("{name} must be a finite non-negative number, got {v}"));
            }
        }
        if let Some(k) = self.frame_stack {
            if !(1..=16).contains(&k) {
                return bad(format!("frame_stack = {k} must be in 1..=16"));
            }
        }
        Ok(())
    }

    /// β after `updates` gradient steps, annealed linearly over `span` steps to 1.
    pub fn beta(&self, updates: u64, span: u64) -> f64 {
        (self.priority_weight + (1.0 - self.priority_weight) * updates as f64 / span.max(1) as f64).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_carry_der_and_the_study_settings() {
        let d = Config::from_toml("").unwrap();
        assert_eq!((d.hidden, d.atoms, d.multi_step, d.target_update, d.batch_size), (256, 51, 20, 2000, 32));
        assert_eq!((d.learning_rate, d.adam_eps, d.gamma, d.max_grad_norm, d.noisy_std), (1e-4, 1.5e-4, 0.99, 10.0, 0.1));
        assert_eq!((d.learning_starts, d.memory_capacity, d.priority_exponent, d.priority_weight), (1600, 100_000, 0.5, 0.4));
        assert_eq!((d.on_load, d.head_relu, d.truncation), (OnLoad::Resume, false, Truncation::Bootstrap));
        let s = Config::from_toml("preset = \"study-pretrain\"\nlearning_starts = 16000\nmemory_capacity = 100000").unwrap();
        assert_eq!((s.hidden, s.learning_starts, s.memory_capacity, s.on_load, s.reset_sigmas), (512, 16000, 100_000, OnLoad::Finetune, true));
        assert_eq!((s.finetune_learning_starts, s.finetune_memory_capacity), (1600, 100_000));
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml("learning_rat = 1.0").unwrap_err();
        assert!(e.message.contains("learning_rat"), "{}", e.message);
        let e = Config::from_toml("gamma = 1.5").unwrap_err();
        assert!(e.message.contains("gamma") && !e.message.contains('\n'), "{}", e.message);
        let e = Config::from_toml("threads = 2").unwrap_err();
        assert!(e.message.contains("threads"), "{}", e.message);
        let e = Config::from_toml("frame_stack = 0").unwrap_err();
        assert!(e.message.contains("frame_stack"), "{}", e.message);
    }

    #[test]
    fn beta_anneals_linearly_to_one() {
        let c = Config::from_toml("beta_updates = 100").unwrap();
        assert_eq!(c.beta(0, 100), 0.4);
        assert!((c.beta(50, 100) - 0.7).abs() < 1e-12);
        assert_eq!(c.beta(100, 100), 1.0);
        assert_eq!(c.beta(1000, 100), 1.0);
    }
}
