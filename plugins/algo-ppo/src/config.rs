//! Hyper-parameters: the TOML the user writes ([`RawConfig`]) and what it resolves to
//! ([`Config`]).
//!
//! Resolution is two layers, as for the host's own settings: `preset` picks a complete set of
//! defaults, then every key written explicitly overrides its preset value.

use metarl_plugin_kit::parse_config;
use metarl_plugin_api::types::PluginError;
use serde::Deserialize;

/// A named set of defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// The Procgen paper (Cobbe et al. 2020) and CleanRL's `ppo_procgen.py`: IMPALA CNN
    /// 16-32-32, 256 steps x 8 minibatches x 3 epochs.
    #[default]
    Paper,
    /// Small enough to learn on a 2-core CPU: IMPALA 8-16-16, latent 128, 128 steps,
    /// 4 minibatches.
    CpuSmall,
}

/// Arithmetic used for forward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Plain float32.
    #[default]
    Fp32,
    /// bfloat16 autocast (weights, gradients and optimizer state stay float32).
    Bf16,
    /// bf16 on a CPU that computes bf16 dot products natively (x86 `avx512_bf16`), fp32 everywhere else (older CPUs, where libtorch emulates bf16 about ten
    /// times slower than fp32, and CUDA, where bf16 support depends on the GPU). Resolved when
    /// the agent is built ([`Precision::resolve`]); the same machine always resolves the same.
    Auto,
}

impl Precision {
    /// What `self` means on `device` of this machine: `Auto` becomes `Bf16` or `Fp32`.
    pub fn resolve(self, device: tch::Device) -> Precision {
        match self {
            Precision::Auto if device == tch::Device::Cpu && cpu_has_native_bf16() => Precision::Bf16,
            Precision::Auto => Precision::Fp32,
            p => p,
        }
    }
}

/// Whether this CPU has bf16 dot-product instructions, which oneDNN's bf16 kernels need to
/// be faster than fp32. Without them (AMD Zen 2/3, Intel before Cooper Lake) oneDNN falls
/// back to emulation: measured on the project's 2-core machine with oneDNN limited to AVX2
/// (`ONEDNN_MAX_CPU_ISA=AVX2`), a small CoinRun experiment took over 300 s in bf16 against
/// 40 s in fp32, where the native bf16 run takes 31 s.
pub fn cpu_has_native_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // AMX CPUs (Sapphire Rapids and later) have avx512_bf16 as well.
        std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The config as written: every key optional, unknown keys refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Defaults to start from (`"paper"` or `"cpu-small"`; default `"paper"`).
    pub preset: Option<Preset>,
    /// Output channels of the IMPALA stages (image observations).
    pub channels: Option<Vec<u32>>,
    /// Width of the encoder's output (the linear layer after the CNN).
    pub latent: Option<u32>,
    /// Hidden width of the two-layer MLP encoder (vector observations).
    pub mlp_hidden: Option<u32>,
    /// Adds an LSTM core fed with RL² inputs (previous action, reward, first flag).
    pub recurrent: Option<bool>,
    /// LSTM hidden size (recurrent only).
    pub lstm_hidden: Option<u32>,
    /// If set, refuse requests whose `num_envs` differs (the host chooses the env count).
    pub num_envs: Option<u32>,
    /// Steps per env in one rollout; `record` refuses more before `update`.
    pub num_steps: Option<u32>,
    /// Minibatches per epoch (recurrent: at most one per env).
    pub num_minibatches: Option<u32>,
    /// Epochs over the rollout per update (`UpdatePlan::grad_steps` overrides).
    pub update_epochs: Option<u32>,
    /// Discount.
    pub gamma: Option<f64>,
    /// GAE lambda.
    pub gae_lambda: Option<f64>,
    /// PPO ratio clip (and value clip).
    pub clip_coef: Option<f64>,
    /// Clip the value loss around the rollout's values.
    pub clip_vloss: Option<bool>,
    /// Entropy bonus coefficient.
    pub ent_coef: Option<f64>,
    /// Value loss coefficient.
    pub vf_coef: Option<f64>,
    /// Adam step size.
    pub learning_rate: Option<f64>,
    /// Adam epsilon.
    pub adam_eps: Option<f64>,
    /// Global gradient-norm clip.
    pub max_grad_norm: Option<f64>,
    /// Normalise advantages per minibatch.
    pub norm_adv: Option<bool>,
    /// Scale rewards by a running std of the discounted return and clip to [-10, 10]
    /// (gym's `NormalizeReward` + `TransformReward(clip)`, as CleanRL's ppo_procgen).
    pub normalize_reward: Option<bool>,
    /// Refused: libtorch's thread count is the host's to set, once per process
    /// (`AlgoRequest::threads`, the experiment's `threads`).
    pub threads: Option<u32>,
    /// `"fp32"`, `"bf16"` or `"auto"` (bf16 where the CPU has native bf16, else fp32).
    pub precision: Option<Precision>,
}

/// Resolved hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The preset the defaults came from.
    pub preset: Preset,
    /// IMPALA stage channels.
    pub channels: Vec<i64>,
    /// Encoder output width.
    pub latent: i64,
    /// MLP encoder hidden width.
    pub mlp_hidden: i64,
    /// LSTM core on/off.
    pub recurrent: bool,
    /// LSTM hidden size.
    pub lstm_hidden: i64,
    /// Required env count, if pinned.
    pub num_envs: Option<u32>,
    /// Rollout length per env.
    pub num_steps: usize,
    /// Minibatches per epoch.
    pub num_minibatches: usize,
    /// Epochs per update.
    pub update_epochs: usize,
    /// Discount.
    pub gamma: f64,
    /// GAE lambda.
    pub gae_lambda: f64,
    /// Ratio and value clip.
    pub clip_coef: f64,
    /// Clipped value loss.
    pub clip_vloss: bool,
    /// Entropy coefficient.
    pub ent_coef: f64,
    /// Value coefficient.
    pub vf_coef: f64,
    /// Adam step size.
    pub learning_rate: f64,
    /// Adam epsilon.
    pub adam_eps: f64,
    /// Gradient-norm clip.
    pub max_grad_norm: f64,
    /// Per-minibatch advantage normalisation.
    pub norm_adv: bool,
    /// Running reward scaling.
    pub normalize_reward: bool,
    /// Forward-pass arithmetic.
    pub precision: Precision,
}

impl Config {
    /// The defaults of `preset`.
    pub fn preset(preset: Preset) -> Self {
        let paper = Config {
            preset,
            channels: vec![16, 32, 32],
            latent: 256,
            mlp_hidden: 64,
            recurrent: false,
            lstm_hidden: 256,
            num_envs: None,
            num_steps: 256,
            num_minibatches: 8,
            update_epochs: 3,
            gamma: 0.999,
            gae_lambda: 0.95,
            clip_coef: 0.2,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            learning_rate: 5e-4,
            adam_eps: 1e-5,
            max_grad_norm: 0.5,
            norm_adv: true,
            normalize_reward: true,
            precision: Precision::Fp32,
        };
        match preset {
            Preset::Paper => paper,
            Preset::CpuSmall => Config {
                channels: vec![8, 16, 16],
                latent: 128,
                lstm_hidden: 128,
                num_steps: 128,
                num_minibatches: 4,
                ..paper
            },
        }
    }

    /// Parses and validates a plugin config (TOML text).
    pub fn from_toml(text: &str) -> Result<Self, PluginError> {
        let raw: RawConfig = parse_config("ppo", text)?;
        Self::resolve(raw)
    }

    /// Applies `raw` over its preset and validates the result.
    pub fn resolve(raw: RawConfig) -> Result<Self, PluginError> {
        let mut c = Config::preset(raw.preset.unwrap_or_default());
        if let Some(v) = raw.channels {
            c.channels = v.into_iter().map(i64::from).collect();
        }
        macro_rules! take {
            ($($field:ident => $conv:expr),* $(,)?) => {
                $( if let Some(v) = raw.$field { c.$field = $conv(v); } )*
            };
        }
        take! {
            latent => i64::from,
            mlp_hidden => i64::from,
            recurrent => |v| v,
            lstm_hidden => i64::from,
            num_steps => |v: u32| v as usize,
            num_minibatches => |v: u32| v as usize,
            update_epochs => |v: u32| v as usize,
            gamma => |v| v,
            gae_lambda => |v| v,
            clip_coef => |v| v,
            clip_vloss => |v| v,
            ent_coef => |v| v,
            vf_coef => |v| v,
            learning_rate => |v| v,
            adam_eps => |v| v,
            max_grad_norm => |v| v,
            norm_adv => |v| v,
            normalize_reward => |v| v,
            precision => |v| v,
        }
        c.num_envs = raw.num_envs;
        if raw.threads.is_some() {
            return Err(PluginError::invalid(
                "ppo config: threads is no longer a PPO key: the host sets libtorch's thread count once for the process \
                 (the experiment's top-level `threads`)",
            ));
        }
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), PluginError> {
        let bad = |msg: String| Err(PluginError::invalid(format!("ppo config: {msg}")));
        if self.channels.is_empty() || self.channels.contains(&0) {
            return bad(format!("channels must be a non-empty list of positive numbers, got {:?}", self.channels));
        }
        for (name, v) in [("latent", self.latent), ("mlp_hidden", self.mlp_hidden), ("lstm_hidden", self.lstm_hidden)] {
            if v == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        for (name, v) in [
            ("num_steps", self.num_steps),
            ("num_minibatches", self.num_minibatches),
            ("update_epochs", self.update_epochs),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        for (name, v) in [("gamma", self.gamma), ("gae_lambda", self.gae_lambda)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must be in [0, 1], got {v}"));
            }
        }
        for (name, v) in [
            ("clip_coef", self.clip_coef),
            ("ent_coef", self.ent_coef),
            ("vf_coef", self.vf_coef),
            ("learning_rate", self.learning_rate),
            ("adam_eps", self.adam_eps),
            ("max_grad_norm", self.max_grad_norm),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(format!("{name} must be a finite non-negative number, got {v}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_keys_override_the_preset() {
        let c = Config::from_toml("preset = \"cpu-small\"\nnum_steps = 32\nprecision = \"bf16\"").unwrap();
        assert_eq!(c.channels, vec![8, 16, 16]);
        assert_eq!(c.num_steps, 32);
        assert_eq!(c.precision, Precision::Bf16);
        let p = Config::from_toml("").unwrap();
        assert_eq!((p.channels.clone(), p.latent, p.num_steps, p.num_minibatches), (vec![16, 32, 32], 256, 256, 8));
        assert_eq!((p.gamma, p.gae_lambda, p.learning_rate, p.adam_eps), (0.999, 0.95, 5e-4, 1e-5));
    }

    #[test]
    fn auto_precision_is_bf16_only_on_cpus_with_native_bf16() {
        let c = Config::from_toml("precision = \"auto\"").unwrap();
        assert_eq!(c.precision, Precision::Auto);
        let want = if cpu_has_native_bf16() { Precision::Bf16 } else { Precision::Fp32 };
        assert_eq!(Precision::Auto.resolve(tch::Device::Cpu), want);
        assert_eq!(Precision::Auto.resolve(tch::Device::Cuda(0)), Precision::Fp32);
        for p in [Precision::Fp32, Precision::Bf16] {
            assert_eq!(p.resolve(tch::Device::Cpu), p, "explicit precisions are kept");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml("learning_rat = 1.0").unwrap_err();
        assert!(e.message.contains("learning_rat"), "{}", e.message);
        let e = Config::from_toml("preset = \"huge\"").unwrap_err();
        assert!(e.message.contains("huge") || e.message.contains("variant"), "{}", e.message);
        let e = Config::from_toml("gamma = 1.5").unwrap_err();
        assert!(e.message.contains("gamma") && !e.message.contains('\n'), "{}", e.message);
    }
}
