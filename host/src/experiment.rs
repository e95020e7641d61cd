//! Experiment files: what to pretrain, on which tasks, with which budgets and seeds.
//!
//! Parsed in two layers: [`RawExperiment`] mirrors the TOML (with spans, so every error names
//! the file, line and key), then [`Plan::resolve`] checks it against the registry and the
//! plugins themselves (names, task selectors, capabilities, budgets) before any training
//! starts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use metarl_plugin_api::algo::{AlgoInfo, AlgoRequest};
use metarl_plugin_api::env::{EnvRequest, EnvSpec};
use metarl_plugin_api::meta::{MetaInfo, MetaRequest};
use metarl_plugin_api::types::{Caps, Dtype, PluginKind, TaskFamily};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::loader::{check, merge_tables, toml_text, Plugin};
use crate::registry::{line_col, Registry};
use crate::tasks::{self, TaskSelection};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExperiment {
    name: Option<String>,
    seeds: Spanned<Vec<u64>>,
    #[serde(default = "default_num_envs")]
    num_envs: Spanned<u32>,
    #[serde(default = "default_device")]
    device: Spanned<String>,
    #[serde(default = "default_threads")]
    threads: Spanned<u32>,
    env: RawEnv,
    algo: RawPlugin,
    /// Required when there are methods; a scratch-only experiment needs none.
    pretrain: Option<RawPretrain>,
    adapt: RawAdapt,
    #[serde(default)]
    method: Vec<Spanned<RawMethod>>,
    #[serde(default)]
    report: RawReport,
    /// `[slurm]`: job resources for `--executor slurm` (see [`crate::slurm::SlurmOptions`]).
    #[serde(default)]
    slurm: crate::slurm::SlurmOptions,
}

/// A normalisation of held-out returns by reference scores, as reports name it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    /// What the normalised score is called (`human-normalised score`).
    pub name: String,
    /// Where the references come from, in words.
    pub source: String,
}

/// `[report]`: how results are summarised beyond raw returns.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReport {
    /// Per held-out task `[low, high]` reference scores (Atari: random and human), for scores
    /// normalised as (score − low) / (high − low).
    #[serde(default)]
    reference_scores: Option<Spanned<std::collections::BTreeMap<String, [f64; 2]>>>,
    /// Stratified-bootstrap resamples behind every interval of `aggregates.md`.
    #[serde(default)]
    bootstrap_resamples: Option<Spanned<i64>>,
}

fn default_num_envs() -> Spanned<u32> {
    Spanned::new(0..0, 16)
}

fn default_device() -> Spanned<String> {
    Spanned::new(0..0, "cpu".to_string())
}

/// Two intra-op threads: this project's machines have two cores.
fn default_threads() -> Spanned<u32> {
    Spanned::new(0..0, 2)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    plugin: Spanned<String>,
    train: Option<Spanned<String>>,
    #[serde(default)]
    panel: Vec<RawPanel>,
    /// The held-out tasks (absent with `splits`, whose held-out tasks are the splits').
    test: Option<Spanned<String>>,
    /// Leave-one-out cross-validation over a task pool.
    splits: Option<Spanned<RawSplits>>,
    #[serde(default)]
    config: toml::Table,
    #[serde(default = "default_leakage")]
    leakage: Spanned<String>,
}

fn default_leakage() -> Spanned<String> {
    Spanned::new(0..0, "warn".to_string())
}

/// `[env.splits]`: one split per held-out task, each pretraining on the rest of the pool (the
/// manipulation study's 5 leave-one-out splits over its 11 tasks).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSplits {
    /// The task pool.
    pool: Spanned<String>,
    /// The tasks held out in turn (default: every task of the pool), each within the pool.
    held_out: Option<Spanned<String>>,
    /// The panel the splits' curves are reported under, averaged over the splits.
    #[serde(default = "default_splits_label")]
    label: String,
}

fn default_splits_label() -> String {
    "leave-one-out".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPanel {
    label: String,
    train: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    plugin: Spanned<String>,
    #[serde(default)]
    config: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPretrain {
    env_steps: Spanned<u64>,
    /// Expert demonstrations per training task, recorded before pretraining starts.
    demos: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdapt {
    env_steps: Spanned<u64>,
    eval_every: Spanned<u64>,
    #[serde(default = "default_eval_episodes")]
    eval_episodes: Spanned<u32>,
    eval_envs: Option<Spanned<u32>>,
    #[serde(default = "default_eval_policy")]
    eval_policy: Spanned<String>,
    #[serde(default = "default_eval_epsilon")]
    eval_epsilon: Spanned<f32>,
    #[serde(default)]
    reset_heads: bool,
    #[serde(default = "yes")]
    scratch: bool,
    /// Env config for the scratch baseline, merged over `[env] config` (the study's Atari
    /// scratch runs use each game's own action set).
    scratch_env_config: Option<Spanned<toml::Table>>,
    /// Test-time demonstration counts: every count is its own set of adaptation units.
    demos: Option<Spanned<Vec<i64>>>,
}

fn default_eval_episodes() -> Spanned<u32> {
    Spanned::new(0..0, 10)
}

fn default_eval_epsilon() -> Spanned<f32> {
    Spanned::new(0..0, 0.0)
}

fn default_eval_policy() -> Spanned<String> {
    Spanned::new(0..0, "sample".to_string())
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMethod {
    label: Option<String>,
    meta: Spanned<String>,
    #[serde(default)]
    config: toml::Table,
    #[serde(default)]
    algo_config: toml::Table,
    /// The label of an earlier method whose pretraining this method adapts from.
    pretrained_as: Option<Spanned<String>>,
}

/// What to do when test tasks look like training tasks (identical first frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Leakage {
    /// Refuse to run.
    Refuse,
    /// Print a warning and run.
    Warn,
    /// Do not check.
    Off,
}

/// One set of training tasks (a panel of the result figure).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Panel {
    /// Label in tables and plots, e.g. "200 levels".
    pub label: String,
    /// The selector as written.
    pub selector: String,
    /// Training task indices (empty = the whole family).
    pub tasks: Vec<u64>,
    /// Indices into `Plan::test_tasks` of the held-out tasks this panel adapts to (a split's
    /// one task); empty = all of them. Left out of `config.toml` when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<usize>,
    /// The panel its curves are reported under (a split's: the splits' label, so the report
    /// averages over splits); absent = its own label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_as: Option<String>,
}

impl Panel {
    /// The label its curves are reported under.
    pub fn report_label(&self) -> &str {
        self.report_as.as_deref().unwrap_or(&self.label)
    }
    /// Whether it adapts to held-out task `task` (an index into `Plan::test_tasks`).
    pub fn adapts_to(&self, task: usize) -> bool {
        self.test.is_empty() || self.test.contains(&task)
    }
}

/// One pretraining method.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Method {
    /// Label in tables and plots.
    pub label: String,
    /// Registry name of the meta plugin.
    pub meta: String,
    /// The meta plugin's config (TOML text).
    pub config: String,
    /// The algo's config for this method (TOML text: `[algo] config` merged with `algo_config`).
    pub algo_config: String,
    /// Context width the meta-method asks of the algo.
    pub context_dim: u32,
    /// `pretrained_as`: the index of the method whose pretraining units this one adapts from
    /// (it has none of its own). Left out of `config.toml` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained_by: Option<usize>,
}

impl Method {
    /// Whether this method's pretraining units are its own (not another method's).
    pub fn pretrains(&self) -> bool {
        self.pretrained_by.is_none()
    }
}

/// Everything a run needs, checked and resolved. Serialized as the run's `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    /// Experiment name (file stem unless given).
    pub name: String,
    /// Seeds; every method is pretrained once per seed.
    pub seeds: Vec<u64>,
    /// Envs per batch.
    pub num_envs: u32,
    /// `cpu`, `cuda` or `auto`.
    pub device: String,
    /// Intra-op threads of numerical libraries, for the whole process.
    pub threads: u32,
    /// Registry name of the env plugin.
    pub env: String,
    /// Task family.
    pub family: String,
    /// Env config (TOML text, registry default merged with the experiment's).
    pub env_config: String,
    /// Training task sets.
    pub panels: Vec<Panel>,
    /// Held-out tasks, each adapted to separately.
    pub test_tasks: Vec<u64>,
    /// Readable names of the held-out tasks.
    pub test_names: Vec<String>,
    /// Leakage policy.
    pub leakage: Leakage,
    /// Registry name of the algo plugin.
    pub algo: String,
    /// Methods, in file order.
    pub methods: Vec<Method>,
    /// Env steps of pretraining per method, panel and seed (0 without methods).
    pub pretrain_env_steps: u64,
    /// Env steps of adaptation per test task.
    pub adapt_env_steps: u64,
    /// Expert demonstrations per training task recorded before pretraining (`[pretrain]
    /// demos`). Left out of `config.toml` at 0, so earlier runs' configs still match.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pretrain_demos: u32,
    /// Test-time demonstration counts (`[adapt] demos`): each is its own set of adaptation
    /// (and scratch) units, recording that many demos of the held-out task first. Left out of
    /// `config.toml` at its default `[0]`.
    #[serde(default = "default_adapt_demos", skip_serializing_if = "is_default_adapt_demos")]
    pub adapt_demos: Vec<u32>,
    /// Curve resolution during adaptation, in env steps.
    pub eval_every: u64,
    /// Episodes behind every evaluation point (the zero-shot point and each curve point).
    pub eval_episodes: u32,
    /// Envs of the evaluation env.
    pub eval_envs: u32,
    /// Evaluate greedily with exploration noise off (`greedy`) rather than sampling (`sample`).
    pub eval_greedy: bool,
    /// ε of ε-greedy evaluation (0 = none).
    pub eval_epsilon: f32,
    /// Re-initialise policy and value heads before fine-tuning (keep only the encoder).
    pub reset_heads: bool,
    /// Also train from scratch on each test task with the same budget.
    pub scratch: bool,
    /// The algo config used by the scratch baseline.
    pub scratch_algo_config: String,
    /// The env config of the scratch baseline, where `[adapt] scratch_env_config` gives one
    /// (absent: `env_config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_env_config: Option<String>,
    /// `[low, high]` reference scores per held-out task, in `test_tasks` order, when
    /// `[report] reference_scores` gives them (then for every held-out task).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_scores: Vec<[f64; 2]>,
    /// What the normalisation is and where `reference_scores` come from when the env plugin
    /// supplied them (absent: the experiment's `[report] reference_scores`). Left out of
    /// `config.toml` when absent, so the config of an earlier run still matches on `--resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalisation: Option<Normalisation>,
    /// Stratified-bootstrap resamples behind every interval of the aggregate table
    /// (`[report] bootstrap_resamples`). Left out of `config.toml` at its default, so that the
    /// config of a run started before the key existed still matches on `--resume`.
    #[serde(default = "default_resamples", skip_serializing_if = "is_default_resamples")]
    pub bootstrap_resamples: u32,
    /// Plugin versions, for the record.
    pub versions: Vec<String>,
    /// `[slurm]`: job resources for the Slurm executor. Not part of `config.toml`: they say
    /// where the units run, not what they compute, so a resumed run may change them.
    #[serde(skip)]
    pub slurm: crate::slurm::SlurmOptions,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// No demonstrations at test time: adaptation as without the key.
pub fn default_adapt_demos() -> Vec<u32> {
    vec![0]
}

fn is_default_adapt_demos(v: &[u32]) -> bool {
    v == [0]
}

impl Plan {
    /// Whether `[adapt] demos` is other than its default `[0]`: then units and panels name
    /// their demo count.
    pub fn names_demos(&self) -> bool {
        !is_default_adapt_demos(&self.adapt_demos)
    }
}

/// `1 demo`, `k demos`: how unit names and panels name a test-time demo count.
pub fn demos_label(k: u32) -> String {
    if k == 1 {
        "1 demo".into()
    } else {
        format!("{k} demos")
    }
}

fn default_resamples() -> u32 {
    crate::report::rliable::DEFAULT_RESAMPLES
}

fn is_default_resamples(n: &u32) -> bool {
    *n == default_resamples()
}

/// The most `[report] bootstrap_resamples` may ask for: 20 times rliable's default, whose
/// Monte-Carlo error is already below the digits the table prints. The replicates are kept to
/// take their percentiles, so a typo with extra zeros would otherwise exhaust memory.
const MAX_RESAMPLES: i64 = 1_000_000;

/// Loaded plugins of a plan, and what probing them revealed.
pub struct Plugins {
    /// The env plugin.
    pub env: Plugin,
    /// The algo plugin.
    pub algo: Plugin,
    /// One meta plugin per method.
    pub metas: Vec<Plugin>,
    /// The env's spaces (probed with one env).
    pub spec: EnvSpec,
    /// The spaces the scratch baseline sees on each held-out task (`spec` unless
    /// `scratch_env_config` changes them, say to a game's own action set).
    pub scratch_specs: Vec<EnvSpec>,
    /// The algo's info per method.
    pub algo_infos: Vec<AlgoInfo>,
    /// Each method's requirements.
    pub meta_infos: Vec<MetaInfo>,
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn at(&self, span: std::ops::Range<usize>, msg: impl std::fmt::Display) -> anyhow::Error {
        // One line, whatever the values the message quotes hold (`plugin = "a\nb"`).
        let msg = msg.to_string().replace('\n', "\\n");
        if span.is_empty() && span.start == 0 {
            return anyhow::anyhow!("{}: {msg}", self.file.display());
        }
        let (line, col) = line_col(self.text, span.start);
        anyhow::anyhow!("{}:{line}:{col}: {msg}", self.file.display())
    }
}

impl Plan {
    /// Reads `file`, resolves it against `registry` and probes the plugins it names.
    pub fn load(file: &Path, registry: &Registry) -> anyhow::Result<(Plan, Plugins)> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("experiment {}: cannot read: {e}", file.display()))?;
        Self::resolve(file, &text, registry)
    }

    /// Resolves experiment `text` (read from `file`).
    pub fn resolve(file: &Path, text: &str, registry: &Registry) -> anyhow::Result<(Plan, Plugins)> {
        let cx = Ctx { file, text };
        let raw: RawExperiment = toml::from_str(text)
            .map_err(|e| cx.at(e.span().unwrap_or(0..0), e.message().trim().replace('\n', " ")))?;

        let seeds = raw.seeds.get_ref().clone();
        if seeds.is_empty() {
            return Err(cx.at(raw.seeds.span(), "seeds: give at least one seed"));
        }
        if seeds.iter().collect::<BTreeSet<_>>().len() != seeds.len() {
            return Err(cx.at(raw.seeds.span(), "seeds: a seed is listed twice"));
        }
        if *raw.num_envs.get_ref() == 0 {
            return Err(cx.at(raw.num_envs.span(), "num_envs must be at least 1"));
        }
        if !["cpu", "cuda", "auto"].contains(&raw.device.get_ref().as_str()) {
            return Err(cx.at(raw.device.span(), format!("device '{}' must be cpu, cuda or auto", raw.device.get_ref())));
        }
        let pretrain_steps = match (&raw.pretrain, raw.method.first()) {
            (Some(p), _) if *p.env_steps.get_ref() == 0 => {
                return Err(cx.at(p.env_steps.span(), "pretrain.env_steps must be at least 1"))
            }
            (Some(p), _) => *p.env_steps.get_ref(),
            (None, Some(m)) => return Err(cx.at(m.span(), "missing [pretrain] (env_steps): the methods pretrain")),
            (None, None) => 0,
        };
        let (adapt_steps, eval_every) = (*raw.adapt.env_steps.get_ref(), *raw.adapt.eval_every.get_ref());
        if adapt_steps == 0 {
            return Err(cx.at(raw.adapt.env_steps.span(), "adapt.env_steps must be at least 1"));
        }
        if eval_every == 0 || eval_every > adapt_steps {
            return Err(cx.at(
                raw.adapt.eval_every.span(),
                format!("adapt.eval_every must be between 1 and adapt.env_steps ({adapt_steps})"),
            ));
        }
        let eval_episodes = *raw.adapt.eval_episodes.get_ref();
        if eval_episodes == 0 {
            return Err(cx.at(raw.adapt.eval_episodes.span(), "adapt.eval_episodes must be at least 1"));
        }
        // The agent acts for `num_envs` envs at once (`AlgoRequest::num_envs`), so its evaluation
        // env has as many; with fewer episodes than envs, the extra envs count none.
        let num_envs = *raw.num_envs.get_ref();
        let eval_envs = match &raw.adapt.eval_envs {
            Some(e) if *e.get_ref() != num_envs => {
                return Err(cx.at(
                    e.span(),
                    format!(
                        "adapt.eval_envs ({}) must equal num_envs ({num_envs}): the agent acts for num_envs envs at once, in training and evaluation alike",
                        e.get_ref()
                    ),
                ))
            }
            _ => num_envs,
        };
        let eval_greedy = match raw.adapt.eval_policy.get_ref().as_str() {
            "greedy" => true,
            "sample" => false,
            other => {
                return Err(cx.at(raw.adapt.eval_policy.span(), format!("adapt.eval_policy '{other}' must be sample or greedy")))
            }
        };
        let eval_epsilon = *raw.adapt.eval_epsilon.get_ref();
        if !(0.0..=1.0).contains(&eval_epsilon) {
            return Err(cx.at(raw.adapt.eval_epsilon.span(), "adapt.eval_epsilon must be within [0, 1]"));
        }
        // Expert demonstrations: per training task before pretraining, and per test-time count.
        let pretrain_demos = match raw.pretrain.as_ref().and_then(|p| p.demos.as_ref()) {
            None => 0,
            Some(n) => u32::try_from(*n.get_ref())
                .map_err(|_| cx.at(n.span(), format!("pretrain.demos must be a count of demonstrations (0 or more), not {}", n.get_ref())))?,
        };
        let adapt_demos = match &raw.adapt.demos {
            None => default_adapt_demos(),
            Some(list) => {
                let at = |msg: String| cx.at(list.span(), format!("adapt.demos: {msg}"));
                if list.get_ref().is_empty() {
                    return Err(at("give at least one test-time demonstration count (0 = none, the default [0])".into()));
                }
                let mut out = Vec::new();
                for &k in list.get_ref() {
                    let k = u32::try_from(k).map_err(|_| at(format!("{k} is not a count of demonstrations (0 or more)")))?;
                    if out.contains(&k) {
                        return Err(at(format!("{k} is listed twice")));
                    }
                    out.push(k);
                }
                out
            }
        };
        // The key that asks for demonstrations, for refusals: `[pretrain] demos` first.
        let demos_key = match (raw.pretrain.as_ref().and_then(|p| p.demos.as_ref()), &raw.adapt.demos) {
            (Some(n), _) if pretrain_demos > 0 => Some((n.span(), "[pretrain] demos")),
            (_, Some(l)) if adapt_demos.iter().any(|&k| k > 0) => Some((l.span(), "[adapt] demos")),
            _ => None,
        };
        let threads = *raw.threads.get_ref();
        if threads == 0 {
            return Err(cx.at(raw.threads.span(), "threads must be at least 1"));
        }
        // Before any plugin loads: libtorch sizes its OpenMP pool from these when it starts.
        metarl_plugin_kit::process::limit_threads(threads);
        if raw.method.is_empty() && !raw.adapt.scratch {
            return Err(cx.at(0..0, "nothing to run: no [[method]] and adapt.scratch = false"));
        }
        let leakage = match raw.env.leakage.get_ref().as_str() {
            "refuse" => Leakage::Refuse,
            "warn" => Leakage::Warn,
            "off" => Leakage::Off,
            other => return Err(cx.at(raw.env.leakage.span(), format!("env.leakage '{other}' must be refuse, warn or off"))),
        };

        // Plugins.
        let load = |name: &Spanned<String>, kind: PluginKind| -> anyhow::Result<Plugin> {
            let entry = registry.require(name.get_ref(), kind).map_err(|e| cx.at(name.span(), e))?;
            Ok(Plugin::load(entry)?)
        };
        let env = load(&raw.env.plugin, PluginKind::ENV)?;
        let algo = load(&raw.algo.plugin, PluginKind::ALGO)?;
        if let Some((span, key)) = &demos_key {
            if !env.descriptor.caps.contains(Caps::ENV_DEMOS) {
                return Err(cx.at(
                    span.clone(),
                    format!(
                        "env plugin '{}' has no expert demonstrations (it lacks {}); drop {key} or choose an env with them",
                        env.name,
                        Caps::ENV_DEMOS
                    ),
                ));
            }
        }
        // An algo asked to record demonstrations must learn from them.
        let check_demos = |info: &AlgoInfo, key: Option<&(std::ops::Range<usize>, &str)>, whose: &str| -> anyhow::Result<()> {
            match key {
                Some((span, key)) if !info.caps.contains(Caps::USES_DEMOS) => Err(cx.at(
                    span.clone(),
                    format!(
                        "algo plugin '{}' ({whose}) does not learn from demonstrations (it lacks {}); drop {key} or choose an algo with it",
                        algo.name,
                        Caps::USES_DEMOS
                    ),
                )),
                _ => Ok(()),
            }
        };

        // Tasks.
        let families: &[TaskFamily] = &env.descriptor.families;
        let resolve_sel = |sel: &Spanned<String>| -> anyhow::Result<TaskSelection> {
            env.resolve_tasks(sel.get_ref()).map_err(|e| cx.at(sel.span(), format!("plugin '{}': {e}", env.name)))
        };
        // The held-out tasks: `test`, or the splits' held-out tasks.
        let (test, splits) = match (&raw.env.test, &raw.env.splits) {
            (Some(t), None) => (resolve_sel(t)?, None),
            (None, Some(sp)) => {
                let pool = resolve_sel(&sp.get_ref().pool)?;
                if pool.tasks.len() < 2 {
                    return Err(cx.at(sp.get_ref().pool.span(), "env.splits.pool: a leave-one-out pool needs at least two tasks, listed"));
                }
                let held = match &sp.get_ref().held_out {
                    Some(h) => resolve_sel(h)?,
                    None => pool.clone(),
                };
                if held.family != pool.family {
                    return Err(cx.at(sp.span(), "env.splits: held_out and pool are of different families"));
                }
                let held_tasks = if held.tasks.is_empty() { pool.tasks.clone() } else { held.tasks.clone() };
                if let Some(t) = held_tasks.iter().find(|t| !pool.tasks.contains(t)) {
                    let f = families.iter().find(|f| f.name.as_str() == pool.family).expect("resolved family exists");
                    return Err(cx.at(sp.span(), format!("env.splits.held_out: task {} is not in the pool", tasks::task_name(f, *t))));
                }
                let test = TaskSelection { family: pool.family.clone(), tasks: held_tasks };
                (test, Some((pool, sp)))
            }
            (Some(t), Some(_)) => return Err(cx.at(t.span(), "env: give either `test` or `[env.splits]`, not both")),
            (None, None) => return Err(cx.at(raw.env.plugin.span(), "env: missing `test` (the held-out tasks) or `[env.splits]`")),
        };
        let test_span = raw.env.test.as_ref().map_or_else(|| raw.env.splits.as_ref().map_or(0..0, |s| s.span()), |t| t.span());
        let family = families.iter().find(|f| f.name.as_str() == test.family).expect("resolved family exists");
        if test.tasks.is_empty() && family.tasks.len() > 1000 {
            return Err(cx.at(test_span, "env.test: list the held-out tasks explicitly (e.g. coinrun:1000..1020)"));
        }
        let test_tasks: Vec<u64> = if test.tasks.is_empty() { (0..family.tasks.len()).collect() } else { test.tasks.clone() };
        let mut panels = Vec::new();
        let mut panel_specs: Vec<(String, &Spanned<String>)> =
            raw.env.panel.iter().map(|p| (p.label.clone(), &p.train)).collect();
        match (&raw.env.train, panel_specs.is_empty()) {
            (Some(t), _) if splits.is_some() => return Err(cx.at(t.span(), "env: `[env.splits]` chooses the training tasks; drop `train`")),
            (_, false) if splits.is_some() => return Err(cx.at(test_span, "env: `[env.splits]` chooses the training tasks; drop the `[[env.panel]]` entries")),
            (Some(t), true) => panel_specs.push((String::new(), t)),
            (Some(t), false) => return Err(cx.at(t.span(), "env: give either `train` or `[[env.panel]]` entries, not both")),
            // A scratch-only experiment trains on the held-out tasks alone.
            (None, true) if raw.method.is_empty() || splits.is_some() => {}
            (None, true) => return Err(cx.at(raw.env.plugin.span(), "env: missing `train` (or `[[env.panel]]` entries)")),
            (None, false) => {}
        }
        // One panel per split: the pool without its held-out task.
        if let Some((pool, sp)) = &splits {
            for (i, &t) in test_tasks.iter().enumerate() {
                let name = tasks::task_name(family, t);
                panels.push(Panel {
                    label: format!("{} without {name}", sp.get_ref().label),
                    selector: format!("{} without {name}", sp.get_ref().pool.get_ref()),
                    tasks: pool.tasks.iter().copied().filter(|&x| x != t).collect(),
                    test: vec![i],
                    report_as: Some(sp.get_ref().label.clone()),
                });
            }
        }
        for (label, sel) in panel_specs {
            let train = resolve_sel(sel)?;
            if train.family != test.family {
                return Err(cx.at(sel.span(), format!("train family '{}' differs from test family '{}'", train.family, test.family)));
            }
            if train.tasks.is_empty() {
                return Err(cx.at(sel.span(), "train tasks must be a selection, not the whole family: the test tasks would overlap them"));
            }
            let train_set: BTreeSet<u64> = train.tasks.iter().copied().collect();
            if let Some(t) = test_tasks.iter().find(|t| train_set.contains(t)) {
                return Err(cx.at(
                    sel.span(),
                    format!("task {} is in both the training and the held-out tasks", tasks::task_name(family, *t)),
                ));
            }
            let label = if label.is_empty() { format!("{} train tasks", train.tasks.len()) } else { label };
            if panels.iter().any(|p: &Panel| p.label == label) {
                return Err(cx.at(sel.span(), format!("panel label '{label}' is used twice")));
            }
            panels.push(Panel { label, selector: sel.get_ref().clone(), tasks: train.tasks, test: Vec::new(), report_as: None });
        }

        let env_config = env.config_with(&raw.env.config).map_err(|e| cx.at(raw.env.plugin.span(), format!("env.config: {e:#}")))?;
        let num_envs = *raw.num_envs.get_ref();
        // Probe the env once: its spaces decide what the algo must handle.
        let probe = EnvRequest {
            family: test.family.as_str().into(),
            tasks: vec![test_tasks[0]].into(),
            num_envs: 1,
            trials: 1,
            seed: 0,
            threads,
            config: env_config.as_str().into(),
        };
        let env_box = env.new_env(&probe).map_err(|e| cx.at(raw.env.plugin.span(), e))?;
        let spec = check(&env.name, "spec", env_box.spec())?;
        drop(env_box);
        // The scratch baseline's env config, and its spaces on each held-out task.
        let (scratch_env_config, scratch_specs) = match &raw.adapt.scratch_env_config {
            Some(over) => {
                let at = |e: &dyn std::fmt::Display| cx.at(over.span(), format!("adapt.scratch_env_config: {e}"));
                let mut table = env.merged_config(&raw.env.config);
                merge_tables(&mut table, over.get_ref());
                let config = toml_text(&table).map_err(|e| at(&e))?;
                let mut specs = Vec::new();
                if raw.adapt.scratch {
                    for &t in &test_tasks {
                        let req = EnvRequest { tasks: vec![t].into(), config: config.as_str().into(), ..probe.clone() };
                        let e = env.new_env(&req).map_err(|e| at(&e))?;
                        specs.push(check(&env.name, "spec", e.spec())?);
                    }
                }
                (Some(config), specs)
            }
            None => (None, vec![spec.clone(); test_tasks.len()]),
        };

        let algo_base_table = algo.merged_config(&raw.algo.config);
        let algo_base = toml_text(&algo_base_table).map_err(|e| cx.at(raw.algo.plugin.span(), format!("algo.config: {e}")))?;
        let probe_algo = |config: &str, context_dim: u32, spec: &EnvSpec| -> anyhow::Result<AlgoInfo> {
            let req = AlgoRequest {
                obs: spec.obs.clone(),
                action: spec.action.clone(),
                num_envs,
                context_dim,
                seed: 0,
                device: raw.device.get_ref().as_str().into(),
                threads,
                config: config.into(),
            };
            let a = algo.new_algo(&req).map_err(|e| cx.at(raw.algo.plugin.span(), e))?;
            Ok(check(&algo.name, "info", a.info())?)
        };
        // What the env's spaces ask of an algo.
        let needed = |spec: &EnvSpec| {
            let mut needed = Caps::NONE;
            for p in spec.action.parts.iter() {
                needed = needed | if p.dtype == Dtype::I32 { Caps::DISCRETE } else { Caps::CONTINUOUS };
            }
            if spec.action.parts.len() > 1 {
                needed = needed | Caps::COMPOSITE_ACTIONS;
            }
            if spec.obs.parts.len() > 1 {
                needed = needed | Caps::MULTI_PART_OBS;
            }
            needed
        };
        let eval_every_span = raw.adapt.eval_every.span();
        let check_algo = |info: &AlgoInfo, spec: &EnvSpec, span| -> anyhow::Result<()> {
            let missing = info.caps.missing(needed(spec));
            if !missing.is_empty() {
                return Err(cx.at(
                    span,
                    format!(
                        "algo plugin '{}' cannot work with env plugin '{}''s spaces (observations {}; actions {}): it lacks {missing}",
                        algo.name, env.name, spec.obs, spec.action
                    ),
                ));
            }
            // Evaluations happen where the meta-method reports progress: between updates.
            let interval = info.steps_per_update.max(1) as u64 * num_envs as u64;
            if eval_every % interval != 0 {
                return Err(cx.at(
                    eval_every_span.clone(),
                    format!(
                        "adapt.eval_every ({eval_every}) must be a multiple of the update interval of algo plugin '{}' \
                         ({interval} env steps: {} steps x {num_envs} envs), since evaluations happen between updates",
                        algo.name, info.steps_per_update
                    ),
                ));
            }
            Ok(())
        };

        let mut methods = Vec::new();
        let (mut metas, mut algo_infos, mut meta_infos) = (Vec::new(), Vec::new(), Vec::new());
        let mut labels = BTreeSet::new();
        for m in &raw.method {
            let span = m.span();
            let m = m.get_ref();
            let meta = load(&m.meta, PluginKind::META)?;
            let label = m.label.clone().unwrap_or_else(|| m.meta.get_ref().clone());
            if label == "scratch" || !labels.insert(label.clone()) {
                return Err(cx.at(span, format!("method label '{label}' is used twice (or is the reserved 'scratch')")));
            }
            let config = meta.config_with(&m.config).map_err(|e| cx.at(m.meta.span(), format!("{e:#}")))?;
            let mreq = MetaRequest { seed: 0, threads, device: raw.device.get_ref().as_str().into(), config: config.as_str().into() };
            let mb = meta.new_meta(&mreq).map_err(|e| cx.at(m.meta.span(), e))?;
            let minfo = check(&meta.name, "info", mb.info())?;
            let mut algo_table = algo_base_table.clone();
            merge_tables(&mut algo_table, &m.algo_config);
            let algo_config = toml_text(&algo_table).map_err(|e| cx.at(span.clone(), format!("algo_config: {e}")))?;
            let ainfo = probe_algo(&algo_config, minfo.context_dim, &spec)?;
            let missing = ainfo.caps.missing(minfo.requires);
            if !missing.is_empty() {
                return Err(cx.at(
                    m.meta.span(),
                    format!(
                        "meta plugin '{}' needs an algo with {}; algo plugin '{}' (as configured for this method) lacks {missing}",
                        meta.name, minfo.requires, algo.name
                    ),
                ));
            }
            let env_missing = env.descriptor.caps.missing(minfo.env_requires);
            if !env_missing.is_empty() {
                return Err(cx.at(
                    m.meta.span(),
                    format!("meta plugin '{}' needs an env with {}; env plugin '{}' lacks {env_missing}", meta.name, minfo.env_requires, env.name),
                ));
            }
            check_algo(&ainfo, &spec, raw.algo.plugin.span())?;
            check_demos(&ainfo, demos_key.as_ref(), &format!("as configured for method '{label}'"))?;
            let pretrained_by = match &m.pretrained_as {
                None => None,
                Some(other) => {
                    let at = |msg: String| cx.at(other.span(), format!("method '{label}': pretrained_as = '{}' {msg}", other.get_ref()));
                    let Some(i) = methods.iter().position(|x: &Method| &x.label == other.get_ref()) else {
                        let earlier: Vec<&str> = methods.iter().map(|x: &Method| x.label.as_str()).collect();
                        return Err(at(format!("names no earlier method (earlier: {})", if earlier.is_empty() { "none".into() } else { earlier.join(", ") })));
                    };
                    let o: &Method = &methods[i];
                    if let Some(j) = o.pretrained_by {
                        return Err(at(format!("is itself pretrained as '{}': name that one", methods[j].label)));
                    }
                    if o.meta != meta.name || o.algo_config != algo_config || o.context_dim != minfo.context_dim {
                        return Err(at(format!(
                            "pretrains with another meta plugin or algo config ('{}' with its algo config; this method: '{}' with its own): \
                             a method adapts only from a pretraining its own settings could have made",
                            o.meta, meta.name
                        )));
                    }
                    Some(i)
                }
            };
            methods.push(Method { label, meta: meta.name.clone(), config, algo_config, context_dim: minfo.context_dim, pretrained_by });
            metas.push(meta);
            algo_infos.push(ainfo);
            meta_infos.push(minfo);
        }
        if raw.adapt.scratch {
            // The scratch baseline records the test-time demonstrations only.
            let scratch_key = match &raw.adapt.demos {
                Some(l) if adapt_demos.iter().any(|&k| k > 0) => Some((l.span(), "[adapt] demos")),
                _ => None,
            };
            for s in &scratch_specs {
                let info = probe_algo(&algo_base, 0, s)?;
                check_algo(&info, s, raw.algo.plugin.span())?;
                check_demos(&info, scratch_key.as_ref(), "as configured for the scratch baseline")?;
            }
        }

        // Reference scores name held-out tasks; every one needs a pair, or the normalised
        // summary would average different sets of tasks across methods.
        let test_names: Vec<String> = test_tasks.iter().map(|&t| tasks::task_name(family, t)).collect();
        let mut normalisation = None;
        let reference_scores = match &raw.report.reference_scores {
            // The env plugin's own references (0.2.2), when every held-out task has a pair.
            None => {
                let refs = env.reference_scores.iter().find(|r| r.family.as_str() == family.name.as_str());
                let pairs: Option<Vec<[f64; 2]>> = refs.and_then(|r| {
                    test_tasks.iter().map(|t| r.tasks.iter().find(|x| x.task == *t).map(|x| [x.low, x.high])).collect()
                });
                match (refs, pairs) {
                    (Some(r), Some(pairs)) => {
                        normalisation = Some(Normalisation {
                            name: r.name.to_string(),
                            source: format!("the {} plugin's references: {}", env.name, r.description),
                        });
                        pairs
                    }
                    _ => Vec::new(),
                }
            }
            Some(refs) => {
                let span = refs.span();
                if let Some(unknown) = refs.get_ref().keys().find(|k| !test_names.contains(k)) {
                    return Err(cx.at(
                        span,
                        format!("report.reference_scores: '{unknown}' is not a held-out task (they are: {})", test_names.join(", ")),
                    ));
                }
                let mut out = Vec::new();
                for name in &test_names {
                    match refs.get_ref().get(name) {
                        Some(&[low, high]) if low.is_finite() && high.is_finite() && high != low => out.push([low, high]),
                        Some(_) => {
                            return Err(cx.at(span, format!("report.reference_scores: '{name}' needs two different finite scores [low, high]")))
                        }
                        None => return Err(cx.at(span, format!("report.reference_scores: held-out task '{name}' has no [low, high] pair"))),
                    }
                }
                out
            }
        };

        let bootstrap_resamples = match &raw.report.bootstrap_resamples {
            None => default_resamples(),
            Some(n) => match u32::try_from(*n.get_ref()) {
                Ok(v) if (1..=MAX_RESAMPLES).contains(&(v as i64)) => v,
                _ => {
                    return Err(cx.at(
                        n.span(),
                        format!("report.bootstrap_resamples must be between 1 and {MAX_RESAMPLES}, not {}", n.get_ref()),
                    ))
                }
            },
        };

        let mut versions = vec![
            format!("{} {} {}", env.name, env.descriptor.name, env.descriptor.version),
            format!("{} {} {}", algo.name, algo.descriptor.name, algo.descriptor.version),
        ];
        versions.extend(metas.iter().map(|m| format!("{} {} {}", m.name, m.descriptor.name, m.descriptor.version)));
        versions.dedup();
        let name = raw.name.clone().unwrap_or_else(|| {
            file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "experiment".into())
        });
        let plan = Plan {
            name,
            seeds,
            num_envs,
            device: raw.device.get_ref().clone(),
            threads,
            env: env.name.clone(),
            family: test.family.clone(),
            env_config,
            panels,
            test_names,
            test_tasks,
            leakage,
            algo: algo.name.clone(),
            methods,
            pretrain_env_steps: pretrain_steps,
            adapt_env_steps: adapt_steps,
            pretrain_demos,
            adapt_demos,
            eval_every,
            eval_episodes,
            eval_envs,
            eval_greedy,
            eval_epsilon,
            reset_heads: raw.adapt.reset_heads,
            scratch: raw.adapt.scratch,
            scratch_algo_config: algo_base,
            scratch_env_config,
            reference_scores,
            normalisation,
            bootstrap_resamples,
            versions,
            slurm: raw.slurm.clone(),
        };
        Ok((plan, Plugins { env, algo, metas, spec, scratch_specs, algo_infos, meta_infos }))
    }

    /// The default run directory: `runs/<name>` beside the current directory.
    pub fn default_out(&self) -> PathBuf {
        PathBuf::from("runs").join(&self.name)
    }
}
