//! PEARL's config: presets from the study's Atari code and from the original PEARL, and the
//! keys that override them.

use serde::Deserialize;

/// When the acting agent's z is drawn again from its task's posterior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Infer {
    /// At every episode start (PEARL's posterior sampling: one z per episode).
    Episode,
    /// Before every step, from the context as it is then.
    Step,
}

/// Config keys as written (all optional); [`Settings`] is what they resolve to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `study` (default: the study's Atari code) or `pearl` (Rakelly et al.'s latent 5 and
    /// KL weight 0.1).
    pub preset: Option<String>,
    /// Width of z.
    pub latent_dim: Option<u32>,
    /// Weight of KL(q(z|c) ‖ N(0, I)) in the encoder's loss.
    pub kl_weight: Option<f64>,
    /// Hidden units of the encoder's MLP.
    pub hidden: Option<u32>,
    /// Transitions per context (drawn with replacement from the task's window).
    pub context_size: Option<u32>,
    /// The task's most recent transitions kept to draw contexts from (a FIFO).
    pub context_window: Option<u32>,
    /// The encoder's Adam step size.
    pub lr: Option<f64>,
    /// Pretraining: tasks per update, each with its own z (the study's 2 games x 16 samples).
    pub tasks_per_update: Option<u32>,
    /// Pretraining: samples per task per gradient step (default: the algo's batch divided
    /// among the tasks).
    pub samples_per_task: Option<u32>,
    /// `step` or `episode`: when the acting agent's z is re-inferred (preset `study`: step, as
    /// the study's code samples a context for every action; preset `pearl`: episode).
    pub infer: Option<Infer>,
    /// Adaptation also fine-tunes the algo with the task's inferred z (Xiong et al. 2021);
    /// off by default, as in the study: adaptation only collects context.
    pub finetune: Option<bool>,
}

/// Resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Width of z.
    pub latent_dim: u32,
    /// KL weight.
    pub kl_weight: f64,
    /// Encoder MLP width.
    pub hidden: u32,
    /// Transitions per context.
    pub context_size: u32,
    /// Transitions kept per task.
    pub context_window: u32,
    /// Encoder learning rate.
    pub lr: f64,
    /// Tasks per pretraining update.
    pub tasks_per_update: u32,
    /// Samples per task per gradient step (`None`: the algo's batch divided among tasks).
    pub samples_per_task: Option<u32>,
    /// When acting z is re-inferred.
    pub infer: Infer,
    /// Fine-tune during adaptation.
    pub finetune: bool,
}

impl Settings {
    /// The study's Atari code (`agent_pearl.py`, `model.py`): latent 32, KL weight 1, MLP
    /// 512, contexts of 10 transitions from the task's last 100, MT's 2 tasks per update,
    /// DER's Adam (1e-4) and a fresh context for every action.
    pub fn study() -> Self {
        Settings {
            latent_dim: 32,
            kl_weight: 1.0,
            hidden: 512,
            context_size: 10,
            context_window: 100,
            lr: 1e-4,
            tasks_per_update: 2,
            samples_per_task: None,
            infer: Infer::Step,
            finetune: false,
        }
    }

    /// The original PEARL's latent width, KL weight and posterior sampling (one z per
    /// episode); the rest as [`Settings::study`].
    pub fn pearl() -> Self {
        Settings { latent_dim: 5, kl_weight: 0.1, infer: Infer::Episode, ..Self::study() }
    }

    /// Resolves a config: its preset, then its keys. Errors name the key.
    pub fn from_config(c: &Config) -> Result<Self, String> {
        let mut s = match c.preset.as_deref() {
            None | Some("study") => Self::study(),
            Some("pearl") => Self::pearl(),
            Some(other) => return Err(format!("pearl config: preset '{other}' is not one of study, pearl")),
        };
        macro_rules! set {
            ($($key:ident),*) => { $(if let Some(v) = c.$key { s.$key = v; })* };
        }
        set!(latent_dim, kl_weight, hidden, context_size, context_window, lr, tasks_per_update, infer, finetune);
        s.samples_per_task = c.samples_per_task.or(s.samples_per_task);
        for (key, v) in [
            ("latent_dim", s.latent_dim),
            ("hidden", s.hidden),
            ("context_size", s.context_size),
            ("context_window", s.context_window),
            ("tasks_per_update", s.tasks_per_update),
            ("samples_per_task", s.samples_per_task.unwrap_or(1)),
        ] {
            if v == 0 {
                return Err(format!("pearl config: {key} must be at least 1"));
            }
        }
        if !(s.kl_weight.is_finite() && s.kl_weight >= 0.0) {
            return Err(format!("pearl config: kl_weight must be a finite number >= 0, got {}", s.kl_weight));
        }
        if !(s.lr.is_finite() && s.lr > 0.0) {
            return Err(format!("pearl config: lr must be a finite number > 0, got {}", s.lr));
        }
        Ok(s)
    }
}
