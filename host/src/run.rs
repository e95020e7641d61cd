//! `metarl run`: pretrain every method on every panel's training tasks, adapt to each held-out
//! task, train the scratch baseline, and write curves, tables and plots.
//!
//! Work is split into **units** (one pretraining, one adaptation, one scratch run). A unit's
//! results are written atomically (temp file, then rename) when it finishes; a unit whose
//! result file exists is done. So a run killed at any point resumes with `--resume`, redoing
//! only the units that were interrupted or failed, and since every unit is seeded from the
//! experiment's seed and its own identity, the final files equal those of an uninterrupted run.
//!
//! `metarl run` ([`run`]) prepares and locks the run directory, then hands the units still to
//! do to the local pool ([`crate::executor`]), which runs each in a worker process
//! (`metarl worker`, [`work`]) once the unit it needs has finished; when all have, it gathers
//! the unit files into the report ([`finalize`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use abi_stable::std_types::RSlice;
use anyhow::{bail, Context};
use metarl_plugin_api::algo::{AlgoBox, AlgoRequest};
use metarl_plugin_api::env::EnvSpec;
use metarl_plugin_api::meta::{MetaBox, MetaContext, MetaRequest};
use metarl_plugin_kit::driver::{self, Train};

/// The one panel of a scratch-only experiment's tables and figures.
const SCRATCH_ONLY_PANEL: &str = "no pretraining";

/// The magic bytes of the scratch baseline's position in its mid-phase checkpoints.
const SCRATCH_MAGIC: &[u8] = b"metarl-scratch-position-1";

/// Reads the scratch baseline's loop position from its checkpoint's meta state.
fn scratch_position(bytes: &[u8]) -> Result<driver::Position, metarl_plugin_api::types::PluginError> {
    let mut r = metarl_plugin_kit::bytes::Reader::new(bytes, SCRATCH_MAGIC, "scratch")?;
    let p = driver::Position::read(&mut r)?;
    r.finish()?;
    Ok(p)
}
use metarl_plugin_kit::seeds;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::executor::{self, Launch, Pool, ProgressFile, Task};
use crate::experiment::{demos_label, Plan, Plugins};
use crate::loader::{check, Plugin};
use crate::lock::{self, RunLock};
use crate::report::{self, Curve};
use crate::services::{EpisodeLog, EvalPoint, EvalSchedule, PhaseServices, SavedPhase};

/// A unit of work. Indices point into the plan, but a unit is *named* by labels only
/// ([`Unit::name`]): its seed and its files come from the name, so reordering methods, panels
/// or seeds in an experiment changes nothing about any unit. `demos` is the test-time
/// demonstration count (one of `[adapt] demos`, 0 by default).
#[derive(Debug, Clone, PartialEq)]
enum Unit {
    Pretrain { panel: usize, method: usize, seed: u64 },
    Adapt { panel: usize, method: usize, seed: u64, task: usize, demos: u32 },
    Scratch { seed: u64, task: usize, demos: u32 },
}

impl Unit {
    /// What the unit is, in the experiment's own words: `pretrain/<panel>/<method>/seed <s>`;
    /// with `[adapt] demos` other than `[0]`, adaptation and scratch units end in
    /// `/<k> demos`.
    fn name(&self, plan: &Plan) -> String {
        let panel = |p: usize| plan.panels[p].label.as_str();
        let method = |m: usize| plan.methods[m].label.as_str();
        let demos = |k: u32| if plan.names_demos() { format!("/{}", demos_label(k)) } else { String::new() };
        match *self {
            Unit::Pretrain { panel: p, method: m, seed } => format!("pretrain/{}/{}/seed {seed}", panel(p), method(m)),
            Unit::Adapt { panel: p, method: m, seed, task, demos: k } => {
                format!("adapt/{}/{}/seed {seed}/{}{}", panel(p), method(m), plan.test_names[task], demos(k))
            }
            Unit::Scratch { seed, task, demos: k } => format!("scratch/seed {seed}/{}{}", plan.test_names[task], demos(k)),
        }
    }

    /// Expert demonstrations its phase records first: per training task (pretraining) or of
    /// its held-out task (adaptation, scratch).
    fn demos(&self, plan: &Plan) -> u32 {
        match *self {
            Unit::Pretrain { .. } => plan.pretrain_demos,
            Unit::Adapt { demos, .. } | Unit::Scratch { demos, .. } => demos,
        }
    }

    /// A file-system safe identity: the name's letters and digits, and a hash of the whole
    /// name so that names differing only in punctuation stay apart.
    fn id(&self, plan: &Plan) -> String {
        file_id(&self.name(plan))
    }

    /// The unit's seed: the experiment seed and the unit's name, nothing else.
    fn seed(&self, plan: &Plan) -> u64 {
        let s = match *self {
            Unit::Pretrain { seed, .. } | Unit::Adapt { seed, .. } | Unit::Scratch { seed, .. } => seed,
        };
        seeds::derive(s, &self.name(plan))
    }

    /// The unit that must finish first: an adaptation starts from its pretraining's checkpoint.
    fn needs(&self, plan: &Plan) -> Option<Unit> {
        match *self {
            Unit::Adapt { panel, method, seed, .. } => {
                Some(Unit::Pretrain { panel, method: plan.methods[method].pretrained_by.unwrap_or(method), seed })
            }
            _ => None,
        }
    }

    /// The env steps it trains for.
    fn budget(&self, plan: &Plan) -> u64 {
        match self {
            Unit::Pretrain { .. } => plan.pretrain_env_steps,
            _ => plan.adapt_env_steps,
        }
    }
}

/// One evaluation point of a curve.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct CurvePoint {
    /// Adaptation env steps this point stands for (0 = zero-shot).
    env_steps: u64,
    /// Env steps when the evaluation ran (the first report at or after `env_steps`).
    evaluated_at: Option<u64>,
    /// Evaluation episodes behind the point.
    episodes: usize,
    /// Mean return of those episodes; `None` where no evaluation ran for this point.
    ret: Option<f64>,
    /// Fraction of them that solved the task.
    success: Option<f64>,
}

/// What a finished adaptation or scratch unit leaves behind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct CurveFile {
    unit: String,
    method: String,
    seed: u64,
    task: String,
    /// Evaluation episodes, played through the meta-method, at every curve point.
    points: Vec<CurvePoint>,
    /// Diagnostic only: `(env steps, mean return)` of the *training* episodes that ended in
    /// each `eval_every` window (exploring policy, learning as it goes).
    training_episodes: Vec<(u64, Option<f64>)>,
    /// Env steps at which the unit was continued from a mid-phase checkpoint (its envs began
    /// fresh episodes there, so its numbers differ from an uninterrupted run's). Absent when
    /// it ran in one go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    continued_at: Vec<u64>,
}

/// Writes `bytes` to `path` atomically. A write that fails (a full disk) leaves no temporary
/// file behind.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("partial");
    let written = std::fs::write(&tmp, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
        .and_then(|_| std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display())));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

// --- checkpoints: safetensors files holding the algo's and the meta-method's state as u8
// tensors, with the SHA-256 of each in the metadata.

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn write_checkpoint(path: &Path, algo: &[u8], meta: &[u8], metadata: &[(&str, String)]) -> anyhow::Result<()> {
    write_checkpoint_parts(path, &[("algo", algo), ("meta", meta)], metadata)
}

/// Writes the byte tensors `parts`, in order, each with its SHA-256 in the metadata.
fn write_checkpoint_parts(path: &Path, parts: &[(&str, &[u8])], metadata: &[(&str, String)]) -> anyhow::Result<()> {
    let mut header = serde_json::Map::new();
    let mut meta_map: serde_json::Map<String, serde_json::Value> =
        metadata.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone()))).collect();
    for (name, bytes) in parts {
        meta_map.insert(format!("{name}_sha256"), sha256_hex(bytes).into());
    }
    header.insert("__metadata__".into(), serde_json::Value::Object(meta_map));
    let mut at = 0;
    for (name, bytes) in parts {
        header.insert(name.to_string(), serde_json::json!({"dtype": "U8", "shape": [bytes.len()], "data_offsets": [at, at + bytes.len()]}));
        at += bytes.len();
    }
    let mut h = serde_json::to_vec(&header)?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + at);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    for (_, bytes) in parts {
        out.extend_from_slice(bytes);
    }
    write_atomic(path, &out)
}

/// Reads a checkpoint back; a truncated, corrupt or foreign file is a one-line error that
/// names it, never a panic.
fn read_checkpoint(path: &Path) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let mut parts = read_checkpoint_parts(path, &["algo", "meta"])?;
    let meta = parts.pop().expect("two parts");
    Ok((parts.pop().expect("two parts"), meta))
}

/// Reads the byte tensors `names` of a checkpoint, checking each against its SHA-256.
fn read_checkpoint_parts(path: &Path, names: &[&str]) -> anyhow::Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let bad = |why: &str| anyhow::anyhow!("checkpoint {} is damaged or not a metarl checkpoint: {why}", path.display());
    let n = u64::from_le_bytes(bytes.get(..8).ok_or_else(|| bad("shorter than its header length"))?.try_into()?) as usize;
    let body = 8usize.checked_add(n).filter(|&e| e <= bytes.len()).ok_or_else(|| bad("truncated header"))?;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..body]).map_err(|_| bad("header is not JSON"))?;
    let data = &bytes[body..];
    let tensor = |name: &str| -> anyhow::Result<Vec<u8>> {
        let offs = header.get(name).and_then(|t| t.get("data_offsets")).and_then(|o| o.as_array());
        let (a, b) = match offs.map(|o| o.iter().map(|v| v.as_u64()).collect::<Vec<_>>()).as_deref() {
            Some([Some(a), Some(b)]) => (*a as usize, *b as usize),
            _ => return Err(bad(&format!("no '{name}' tensor"))),
        };
        let t = data.get(a..b).ok_or_else(|| bad(&format!("'{name}' tensor lies outside the file (truncated?)")))?;
        let want = header.get("__metadata__").and_then(|m| m.get(format!("{name}_sha256"))).and_then(|v| v.as_str());
        match want {
            Some(w) if w == sha256_hex(t) => Ok(t.to_vec()),
            Some(_) => Err(bad(&format!("'{name}' state does not match its SHA-256 (corrupted)"))),
            None => Err(bad(&format!("no SHA-256 for '{name}' (written by an older metarl?)"))),
        }
    };
    names.iter().map(|n| tensor(n)).collect()
}

/// A unit stopped before it was done because its worker was asked to stop (SIGINT, SIGTERM):
/// the worker exits with [`executor::EXIT_INTERRUPTED`], and the next run of the unit
/// continues from its checkpoint if it saved one.
#[derive(Debug)]
pub struct Interrupted {
    unit: String,
    checkpoint: Option<u64>,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.checkpoint {
            Some(at) => write!(f, "unit {} stopped on request; its checkpoint at {at} env steps is where it continues", self.unit),
            None => write!(f, "unit {} stopped on request with no checkpoint (its meta plugin takes none); it starts again from its beginning", self.unit),
        }
    }
}

impl std::error::Error for Interrupted {}

/// What a unit continues a phase with, besides its loaded algo and meta-method: the
/// checkpoint's meta state (the scratch baseline reads its loop position from it) and the
/// host's record.
struct Resume {
    meta: Vec<u8>,
    host: Continued,
}

/// What a mid-phase checkpoint holds besides the algo's and meta-method's state: the host's
/// record of the phase and the unit's metrics lines so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Continued {
    phase: SavedPhase,
    lines: Vec<String>,
}

/// The run directory.
struct RunDir {
    root: PathBuf,
}

impl RunDir {
    fn units(&self) -> PathBuf {
        self.root.join("units")
    }
    /// The checkpoint a pretraining unit writes (and its adaptation units read).
    fn checkpoint(&self, plan: &Plan, pretrain: &Unit) -> PathBuf {
        self.root.join("checkpoints").join(format!("{}.safetensors", pretrain.id(plan)))
    }
    fn curve(&self, plan: &Plan, unit: &Unit) -> PathBuf {
        self.units().join(format!("{}.json", unit.id(plan)))
    }
    /// A unit's mid-phase checkpoint, while it is not done: where it continues from.
    fn partial(&self, plan: &Plan, unit: &Unit) -> PathBuf {
        self.root.join("checkpoints").join("partial").join(format!("{}.safetensors", unit.id(plan)))
    }
    fn metrics(&self, plan: &Plan, unit: &Unit) -> PathBuf {
        self.units().join(format!("{}.jsonl", unit.id(plan)))
    }
    /// The unit's TensorBoard event directory (diagnostics, outside the resume contract).
    fn tensorboard(&self, plan: &Plan, unit: &Unit) -> PathBuf {
        self.root.join("tensorboard").join(unit.id(plan))
    }
    /// Where the workers' logs go, `<unit id>.log` each (diagnostics, outside the resume
    /// contract and never read by `metarl report`).
    fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    fn done(&self, plan: &Plan, unit: &Unit) -> bool {
        match unit {
            Unit::Pretrain { .. } => self.checkpoint(plan, unit).is_file(),
            _ => self.curve(plan, unit).is_file(),
        }
    }
}

/// Prepares and locks the run directory: refuses one that another live run holds, an
/// existing one without `resume`, and a changed experiment with it. Runs before any training;
/// the lock is held until the returned [`RunLock`] is dropped.
fn prepare_dir(plan: &Plan, out: &Path, resume: bool) -> anyhow::Result<(RunDir, RunLock)> {
    let config = toml::to_string(plan)?;
    let config_path = out.join("config.toml");
    // Whatever else is true of it, a directory a live run holds is refused first.
    RunLock::refuse_if_held(out)?;
    let started = !lock::is_empty_but_lock(out);
    if started {
        if !resume {
            bail!("run directory {} already exists: pass --resume to continue it, or choose another with --out", out.display());
        }
        if !config_path.is_file() {
            bail!("{} is not a metarl run directory (no config.toml)", out.display());
        }
    } else if resume {
        bail!("nothing to resume: {} does not exist", out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create output directory {}", out.display()))?;
    let lock = RunLock::acquire(out)?;
    if started {
        let old = std::fs::read_to_string(&config_path)
            .with_context(|| format!("{} is not a metarl run directory (no config.toml)", out.display()))?;
        if old != config {
            bail!(
                "the experiment (or a plugin version) changed since {} was started; resume only continues the same experiment",
                out.display()
            );
        }
    }
    // config.toml first: a start that fails or is killed before it is in place leaves nothing
    // but the lock, so the directory counts as empty again (not as a run without its config).
    write_atomic(&config_path, config.as_bytes())?;
    for dir in [out.join("units"), out.join("checkpoints")] {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create output directory {}", dir.display()))?;
    }
    let probe = out.join(".write-test");
    std::fs::write(&probe, b"").with_context(|| format!("output directory {} is not writable", out.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok((RunDir { root: out.to_path_buf() }, lock))
}

/// Everything a unit needs (in its worker).
struct Runner<'a> {
    plan: &'a Plan,
    plugins: &'a Plugins,
    dir: RunDir,
    /// Where to report env steps for the parent's progress bar, when it draws one.
    progress: Option<PathBuf>,
    /// Most time between two mid-phase checkpoints.
    checkpoint_every: std::time::Duration,
}

/// What a phase leaves for the unit's files.
struct PhaseResult {
    episodes: EpisodeLog,
    evals: Vec<EvalPoint>,
    lines: Vec<String>,
    /// Env steps where the phase continued from a mid-phase checkpoint.
    continued_at: Vec<u64>,
}

impl Runner<'_> {
    fn new_algo(&self, config: &str, context_dim: u32, seed: u64) -> anyhow::Result<AlgoBox> {
        self.new_algo_for(&self.plugins.spec, config, context_dim, seed)
    }

    /// An algo for the spaces `spec` (the scratch baseline's may differ from the env's).
    fn new_algo_for(&self, spec: &EnvSpec, config: &str, context_dim: u32, seed: u64) -> anyhow::Result<AlgoBox> {
        let req = AlgoRequest {
            obs: spec.obs.clone(),
            action: spec.action.clone(),
            num_envs: self.plan.num_envs,
            context_dim,
            seed,
            device: self.plan.device.as_str().into(),
            threads: self.plan.threads,
            config: config.into(),
        };
        Ok(self.plugins.algo.new_algo(&req)?)
    }

    fn new_meta(&self, method: usize, seed: u64) -> anyhow::Result<metarl_plugin_api::meta::MetaBox> {
        let m = &self.plan.methods[method];
        let req = MetaRequest {
            seed,
            threads: self.plan.threads,
            device: self.plan.device.as_str().into(),
            config: m.config.as_str().into(),
        };
        Ok(self.plugins.metas[method].new_meta(&req)?)
    }

    /// `(task, name)` of each of `tasks` of the plan's family.
    fn task_names(&self, tasks: &[u64]) -> Vec<(u64, String)> {
        let family = self.plugins.env.descriptor.families.iter().find(|f| f.name.as_str() == self.plan.family);
        tasks
            .iter()
            .map(|&t| (t, family.map_or_else(|| t.to_string(), |f| crate::tasks::task_name(f, t))))
            .collect()
    }

    /// The evaluation schedule of an adaptation (or scratch) phase seeded `seed`.
    fn schedule(&self, seed: u64) -> EvalSchedule {
        let p = self.plan;
        EvalSchedule {
            every: p.eval_every,
            budget: p.adapt_env_steps,
            episodes: p.eval_episodes,
            num_envs: p.eval_envs,
            deterministic: p.eval_greedy,
            epsilon: p.eval_epsilon,
            seed: seeds::derive(seed, "eval"),
        }
    }

    /// Runs a phase (pretraining or adaptation) of a meta plugin, or plain training when
    /// `meta` is `None`, evaluating on `schedule` if given. With `continued`, the phase goes
    /// on from a mid-phase checkpoint (algo and meta-method already loaded from it). Takes
    /// mid-phase checkpoints into the unit's partial checkpoint as the meta plugin offers them;
    /// a stop on request is [`Interrupted`].
    #[allow(clippy::too_many_arguments)]
    fn phase(
        &self,
        meta: Option<(&Plugin, &mut metarl_plugin_api::meta::MetaBox)>,
        algo: &mut AlgoBox,
        adapt: bool,
        tasks: &[u64],
        budget: u64,
        seed: u64,
        schedule: Option<EvalSchedule>,
        unit: &Unit,
        continued: Option<Resume>,
    ) -> anyhow::Result<PhaseResult> {
        let mut progress = ProgressFile::new(self.progress.clone());
        // metrics.jsonl lines carry the unit's name; its files are named by its id.
        let name = unit.name(self.plan);
        let events = crate::tensorboard::UnitWriter::create(&self.dir.tensorboard(self.plan, unit));
        let lines = std::rc::Rc::new(std::cell::RefCell::new(continued.as_ref().map(|c| c.host.lines.clone()).unwrap_or_default()));
        let progress_lines = lines.clone();
        let on_progress = Box::new(|_: &mut AlgoBox, steps: u64, scalars: &[metarl_plugin_api::types::Scalar]| {
            progress.report(steps.min(budget));
            let mut line = serde_json::Map::new();
            line.insert("unit".into(), name.as_str().into());
            line.insert("env_steps".into(), steps.into());
            for s in scalars {
                if s.value.is_finite() {
                    line.insert(s.name.to_string(), s.value.into());
                }
            }
            progress_lines.borrow_mut().push(serde_json::Value::Object(line).to_string());
            Ok(steps < budget)
        });
        let partial = self.dir.partial(self.plan, unit);
        let checkpoint_lines = lines.clone();
        let write_partial = Box::new(move |algo: &[u8], meta: &[u8], phase: &SavedPhase| {
            let host = serde_json::to_vec(&Continued { phase: phase.clone(), lines: checkpoint_lines.borrow().clone() })?;
            if let Some(dir) = partial.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let at = phase.env_steps.to_string();
            write_checkpoint_parts(&partial, &[("algo", algo), ("meta", meta), ("host", &host)], &[("env_steps", at)])?;
            log::info!("mid-phase checkpoint at {} env steps: {}", phase.env_steps, partial.display());
            Ok(())
        });
        // A phase without a meta-method is the scratch baseline, which may have its own env config.
        let env_config = match (&meta, &self.plan.scratch_env_config) {
            (None, Some(scratch)) => scratch.clone(),
            _ => self.plan.env_config.clone(),
        };
        let mut services = PhaseServices::new(
            &self.plugins.env,
            &self.plan.family,
            env_config,
            tasks.to_vec(),
            self.plan.threads,
            schedule,
            on_progress,
        )
        .with_tensorboard(events)
        .with_demos(unit.demos(self.plan), seed, self.task_names(tasks))
        .with_checkpoints(self.checkpoint_every, write_partial);
        if let Some(c) = &continued {
            services.continue_from(&c.host.phase);
        }
        let log = services.episodes.clone();
        let ctx = MetaContext {
            host: services.handle(),
            algo,
            tasks: RSlice::from_slice(tasks),
            budget_env_steps: budget,
            num_envs: self.plan.num_envs,
            seed,
        };
        let result = match meta {
            Some((plugin, meta)) => {
                let call = if adapt { "adapt" } else { "pretrain" };
                let r = if adapt { meta.adapt(ctx) } else { meta.pretrain(ctx) };
                check(&plugin.name, call, r).map_err(anyhow::Error::from)
            }
            None => {
                // The scratch baseline is the host's own loop: its checkpoints' "meta state"
                // is the loop's position.
                let mut ctx = ctx;
                // The position was read when the checkpoint was loaded (`agents`).
                let start = continued.as_ref().map(|c| scratch_position(&c.meta)).transpose()?;
                let mut position_bytes = |p: &driver::Position| {
                    let mut w = metarl_plugin_kit::bytes::Writer::with_magic(SCRATCH_MAGIC);
                    p.write(&mut w);
                    Ok(w.0)
                };
                let t = Train { start, checkpoint: Some(&mut position_bytes), ..Train::plain(budget) };
                driver::train(&mut ctx, seed, t).map(drop).map_err(|e| anyhow::anyhow!("training from scratch failed: {e}"))
            }
        };
        let host_error = services.host_error.take();
        let finished = if result.is_ok() && host_error.is_none() { services.finish() } else { Ok(()) };
        let evals = std::mem::take(&mut services.evals);
        let continued_at = services.continued_at().to_vec();
        let last_checkpoint = services.last_checkpoint;
        drop(services);
        if let Some(e) = host_error {
            return Err(e);
        }
        result?;
        finished?;
        if executor::interrupted() != 0 {
            // Stopped on request, not done: the unit's results are not written.
            let checkpoint = last_checkpoint.or(continued.map(|c| c.host.phase.env_steps));
            return Err(Interrupted { unit: name.clone(), checkpoint }.into());
        }
        let episodes = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
        let lines = std::mem::take(&mut *lines.borrow_mut());
        Ok(PhaseResult { episodes, evals, lines, continued_at })
    }

    /// The algo and meta-method (none for the scratch baseline) a unit runs with. From its
    /// mid-phase checkpoint where it has one that they load: then with the checkpoint's meta
    /// state and the host's record, to continue the phase. Otherwise new from `make`, set up by
    /// `start` (an adaptation loads its pretraining's checkpoint). A checkpoint the plugins
    /// cannot load (an algo whose checkpoints leave out the replay) is removed, with a
    /// warning, and the unit starts from its beginning.
    fn agents(
        &self,
        unit: &Unit,
        meta_plugin: Option<&Plugin>,
        make: &dyn Fn() -> anyhow::Result<(AlgoBox, Option<MetaBox>)>,
        start: &dyn Fn(&mut AlgoBox, Option<&mut MetaBox>) -> anyhow::Result<()>,
    ) -> anyhow::Result<(AlgoBox, Option<MetaBox>, Option<Resume>)> {
        let path = self.dir.partial(self.plan, unit);
        if path.is_file() {
            let mut parts = read_checkpoint_parts(&path, &["algo", "meta", "host"])?;
            let host: Continued = serde_json::from_slice(&parts[2])
                .map_err(|e| anyhow::anyhow!("checkpoint {} is damaged or not a metarl checkpoint: {e}", path.display()))?;
            let resume = Resume { meta: std::mem::take(&mut parts[1]), host };
            let (mut algo, mut meta) = make()?;
            let loaded = (|| -> anyhow::Result<()> {
                check(&self.plugins.algo.name, "load", algo.load(parts[0].as_slice().into()))?;
                match (meta.as_mut(), meta_plugin) {
                    (Some(meta), Some(plugin)) => check(&plugin.name, "load", meta.load(resume.meta.as_slice().into()))?,
                    _ => drop(scratch_position(&resume.meta)?),
                }
                Ok(())
            })();
            match loaded {
                Ok(()) => {
                    log::info!(
                        "unit {}: continuing from its checkpoint at {} env steps ({})",
                        unit.name(self.plan),
                        resume.host.phase.env_steps,
                        path.display()
                    );
                    return Ok((algo, meta, Some(resume)));
                }
                Err(e) => {
                    log::warn!("unit {}: cannot continue from its checkpoint ({e:#}); it starts again from its beginning", unit.name(self.plan));
                    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
                }
            }
        }
        let (mut algo, mut meta) = make()?;
        start(&mut algo, meta.as_mut())?;
        Ok((algo, meta, None))
    }

    /// The evaluation curve: one point per scheduled point, from the evaluation that stood
    /// for it (a gap where none did).
    fn curve(&self, schedule: &EvalSchedule, evals: &[EvalPoint]) -> Vec<CurvePoint> {
        schedule
            .points()
            .into_iter()
            .map(|p| {
                let e = evals.iter().find(|e| e.point == p);
                let n = e.map_or(0, |e| e.episodes.len());
                let mean = |f: &dyn Fn(&metarl_plugin_api::env::EpisodeStat) -> f64| {
                    e.filter(|_| n > 0).map(|e| e.episodes.iter().map(f).sum::<f64>() / n as f64)
                };
                CurvePoint {
                    env_steps: p,
                    evaluated_at: e.map(|e| e.at_env_steps),
                    episodes: n,
                    ret: mean(&|x| x.ret as f64),
                    success: mean(&|x| x.success as u8 as f64),
                }
            })
            .collect()
    }

    /// Diagnostic curve of the training episodes: mean return of those finished in each
    /// `eval_every` window.
    fn training_curve(&self, log: &EpisodeLog) -> Vec<(u64, Option<f64>)> {
        let (every, budget) = (self.plan.eval_every, self.plan.adapt_env_steps);
        let mut points = Vec::new();
        let mut start = 0;
        while start < budget {
            let end = (start + every).min(budget);
            let window: Vec<f64> =
                log.finished.iter().filter(|(at, _)| *at > start && *at <= end).map(|(_, e)| e.ret as f64).collect();
            points.push((end, if window.is_empty() { None } else { Some(window.iter().sum::<f64>() / window.len() as f64) }));
            start = end;
        }
        points
    }

    fn run_unit(&self, unit: &Unit) -> anyhow::Result<()> {
        let plan = self.plan;
        let s = unit.seed(plan);
        let nothing_to_start = |_: &mut AlgoBox, _: Option<&mut MetaBox>| Ok(());
        match *unit {
            Unit::Pretrain { panel, method, seed } => {
                let m = &plan.methods[method];
                let plugin = &self.plugins.metas[method];
                let make = || Ok((self.new_algo(&m.algo_config, m.context_dim, s)?, Some(self.new_meta(method, s)?)));
                let (mut algo, meta, continued) = self.agents(unit, Some(plugin), &make, &nothing_to_start)?;
                let mut meta = meta.expect("a method has a meta-method");
                let r = self.phase(
                    Some((plugin, &mut meta)),
                    &mut algo,
                    false,
                    &plan.panels[panel].tasks,
                    plan.pretrain_env_steps,
                    s,
                    None,
                    unit,
                    continued,
                )?;
                let algo_state = check(&self.plugins.algo.name, "save", algo.save())?;
                let meta_state = check(&plugin.name, "save", meta.save())?;
                write_atomic(&self.dir.metrics(plan, unit), (r.lines.join("\n") + "\n").as_bytes())?;
                let mut metadata = vec![
                    ("unit", unit.name(plan)),
                    ("method", m.label.clone()),
                    ("seed", seed.to_string()),
                    ("panel", plan.panels[panel].label.clone()),
                ];
                if !r.continued_at.is_empty() {
                    metadata.push(("continued_at", format!("{:?}", r.continued_at)));
                }
                write_checkpoint(&self.dir.checkpoint(plan, unit), &algo_state, &meta_state, &metadata)?;
            }
            Unit::Adapt { method, seed, task, .. } => {
                let m = &plan.methods[method];
                let plugin = &self.plugins.metas[method];
                let make = || Ok((self.new_algo(&m.algo_config, m.context_dim, s)?, Some(self.new_meta(method, s)?)));
                // From the pretraining's checkpoint, its heads reset if the plan says so (a
                // mid-phase checkpoint's algo already had them reset).
                let from_pretraining = |algo: &mut AlgoBox, meta: Option<&mut MetaBox>| -> anyhow::Result<()> {
                    let pretrain = unit.needs(plan).expect("an adaptation needs its pretraining");
                    let (a, mt) = read_checkpoint(&self.dir.checkpoint(plan, &pretrain))?;
                    check(&self.plugins.algo.name, "load_pretrained", algo.load_pretrained(a.as_slice().into()))?;
                    if let Some(meta) = meta {
                        check(&plugin.name, "load", meta.load(mt.as_slice().into()))?;
                    }
                    if plan.reset_heads {
                        check(&self.plugins.algo.name, "reset_heads", algo.reset_heads(s))?;
                    }
                    Ok(())
                };
                let (mut algo, meta, continued) = self.agents(unit, Some(plugin), &make, &from_pretraining)?;
                let mut meta = meta.expect("a method has a meta-method");
                let t = plan.test_tasks[task];
                let schedule = self.schedule(s);
                let r = self.phase(
                    Some((plugin, &mut meta)),
                    &mut algo,
                    true,
                    &[t],
                    plan.adapt_env_steps,
                    s,
                    Some(schedule.clone()),
                    unit,
                    continued,
                )?;
                self.finish_curve(unit, &m.label, seed, task, &schedule, &r)?;
            }
            Unit::Scratch { seed, task, .. } => {
                let make = || Ok((self.new_algo_for(&self.plugins.scratch_specs[task], &plan.scratch_algo_config, 0, s)?, None));
                let (mut algo, _, continued) = self.agents(unit, None, &make, &nothing_to_start)?;
                let t = plan.test_tasks[task];
                let schedule = self.schedule(s);
                let r = self.phase(None, &mut algo, true, &[t], plan.adapt_env_steps, s, Some(schedule.clone()), unit, continued)?;
                self.finish_curve(unit, "scratch", seed, task, &schedule, &r)?;
            }
        }
        // Done: its checkpoint has served.
        let partial = self.dir.partial(plan, unit);
        if partial.exists() {
            std::fs::remove_file(&partial).with_context(|| format!("cannot remove {}", partial.display()))?;
        }
        Ok(())
    }

    fn finish_curve(
        &self,
        unit: &Unit,
        method: &str,
        seed: u64,
        task: usize,
        schedule: &EvalSchedule,
        r: &PhaseResult,
    ) -> anyhow::Result<()> {
        let curve = CurveFile {
            unit: unit.name(self.plan),
            method: method.to_string(),
            seed,
            task: self.plan.test_names[task].clone(),
            points: self.curve(schedule, &r.evals),
            training_episodes: self.training_curve(&r.episodes),
            continued_at: r.continued_at.clone(),
        };
        write_atomic(&self.dir.metrics(self.plan, unit), (r.lines.join("\n") + "\n").as_bytes())?;
        write_atomic(&self.dir.curve(self.plan, unit), serde_json::to_string_pretty(&curve)?.as_bytes())
    }
}

/// A file-system safe identity for `name`: its letters and digits, and a hash of the whole
/// name so that names differing only in punctuation stay apart.
fn file_id(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    format!("{}-{:08x}", slug.trim_matches('-'), seeds::hash_name(name) as u32)
}

/// All units of a plan, in execution order: pretraining first (adaptation needs checkpoints).
fn units(plan: &Plan) -> Vec<Unit> {
    let mut out = Vec::new();
    for &seed in &plan.seeds {
        for panel in 0..plan.panels.len() {
            for method in (0..plan.methods.len()).filter(|&m| plan.methods[m].pretrains()) {
                out.push(Unit::Pretrain { panel, method, seed });
            }
        }
    }
    for &seed in &plan.seeds {
        for task in 0..plan.test_tasks.len() {
            for panel in (0..plan.panels.len()).filter(|&p| plan.panels[p].adapts_to(task)) {
                for method in 0..plan.methods.len() {
                    for &demos in &plan.adapt_demos {
                        out.push(Unit::Adapt { panel, method, seed, task, demos });
                    }
                }
            }
            if plan.scratch {
                for &demos in &plan.adapt_demos {
                    out.push(Unit::Scratch { seed, task, demos });
                }
            }
        }
    }
    out
}

/// `--restart-unfinished`: removes the mid-phase checkpoints of run directory `out`, so that
/// units stopped or killed mid-phase start again from their beginning (exactly as an
/// uninterrupted run would have them) instead of continuing. Call with the directory locked.
pub fn discard_partial_checkpoints(out: &Path) -> anyhow::Result<()> {
    let dir = out.join("checkpoints").join("partial");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
    let mut n = 0;
    for e in entries {
        let path = e.with_context(|| format!("cannot read {}", dir.display()))?.path();
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        n += 1;
    }
    if n > 0 {
        log::info!("--restart-unfinished: discarded {n} mid-phase checkpoint(s); those units start again from their beginning");
    }
    Ok(())
}

/// A unit as an executor sees it: what it is called, what it needs, whether it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRef {
    /// Its id: the name of its files and what `metarl worker --unit` takes.
    pub id: String,
    /// Its name in the experiment's words (`pretrain/<panel>/<method>/seed <s>`, ...).
    pub name: String,
    /// The id of the unit that must finish first (an adaptation's pretraining).
    pub needs: Option<String>,
    /// Its result files are written.
    pub done: bool,
}

/// Every unit of `plan` in plan order (pretraining first), with its state in run directory
/// `out`: the unit graph the executors schedule.
pub fn unit_graph(plan: &Plan, out: &Path) -> Vec<UnitRef> {
    let dir = RunDir { root: out.to_path_buf() };
    units(plan)
        .iter()
        .map(|u| UnitRef { id: u.id(plan), name: u.name(plan), needs: u.needs(plan).map(|n| n.id(plan)), done: dir.done(plan, u) })
        .collect()
}

/// Prepares and locks run directory `out` for `plan` as `metarl run` does (see
/// [`prepare_dir`]); the lock is held until the returned value is dropped.
pub fn prepare(plan: &Plan, out: &Path, resume: bool) -> anyhow::Result<RunLock> {
    prepare_dir(plan, out, resume).map(|(_, lock)| lock)
}

/// `metarl worker --report`: writes the report of run directory `out` once every unit is
/// done (the Slurm executor's last job); names the units that are not.
pub fn report_when_done(plan: &Plan, out: &Path) -> anyhow::Result<()> {
    check_saved_plan(plan, out)?;
    let all = units(plan);
    let dir = RunDir { root: out.to_path_buf() };
    let missing: Vec<String> = all.iter().filter(|u| !dir.done(plan, u)).map(|u| u.name(plan)).collect();
    if let Some(first) = missing.first() {
        bail!("{} of {} units of {} are not done (first: {first}): no report written", missing.len(), all.len(), out.display());
    }
    finalize(plan, &dir, &all)
}

/// Refuses a plan other than the one run directory `out` was started with.
fn check_saved_plan(plan: &Plan, out: &Path) -> anyhow::Result<()> {
    let saved = std::fs::read_to_string(out.join("config.toml"))
        .with_context(|| format!("{} is not a metarl run directory (no config.toml)", out.display()))?;
    if saved != toml::to_string(plan)? {
        bail!("the experiment (or a plugin version) changed since {} was started; a worker runs its run's experiment only", out.display());
    }
    Ok(())
}

/// Number of units `plan` consists of.
pub fn count_units(plan: &Plan) -> usize {
    units(plan).len()
}

/// Runs (or resumes) `plan` into `out`: every unit not yet done in a worker process started
/// by `launch`, up to `jobs` at a time (default: [`executor::default_jobs`]), then the report.
/// A unit that fails does not stop the units that do not need it; the run then ends with one
/// error naming the first failure, and writes no report, so `--resume` retries what failed or
/// never ran.
pub fn run(plan: &Plan, out: &Path, resume: bool, restart_unfinished: bool, jobs: Option<usize>, launch: &Launch) -> anyhow::Result<PathBuf> {
    let (dir, _lock) = prepare_dir(plan, out, resume)?;
    if restart_unfinished {
        discard_partial_checkpoints(out)?;
    }
    if resume {
        // Units that Slurm jobs of an earlier `--executor slurm` still hold are not run twice.
        match crate::slurm::queued_units(out) {
            Ok(q) if !q.is_empty() => bail!(
                "{} unit(s) of {} are still queued or running in Slurm: wait for them (metarl status {}), or scancel them, before resuming here",
                q.len(),
                out.display(),
                out.display()
            ),
            Ok(_) => {}
            Err(e) => log::warn!("cannot tell whether Slurm still runs units of {}: {e}", out.display()),
        }
    }
    let all = units(plan);
    let todo: Vec<&Unit> = all.iter().filter(|u| !dir.done(plan, u)).collect();
    if resume {
        log::info!("resuming {}: {} of {} units already done", out.display(), all.len() - todo.len(), all.len());
    }
    let jobs = jobs.unwrap_or_else(|| executor::default_jobs(plan.threads));
    if !todo.is_empty() {
        log::info!("{}: {} unit(s) to run, up to {jobs} at a time, each in a worker process with {} thread(s)", plan.name, todo.len(), plan.threads);
    }
    let ids: Vec<String> = todo.iter().map(|u| u.id(plan)).collect();
    let tasks: Vec<Task> = todo
        .iter()
        .zip(&ids)
        .map(|(u, id)| Task {
            id: id.clone(),
            name: u.name(plan),
            // A unit it needs that is not to do is done already.
            needs: u.needs(plan).and_then(|n| ids.iter().position(|i| *i == n.id(plan))),
            budget: u.budget(plan),
        })
        .collect();
    let pool = Pool { jobs, logs: dir.logs(), title: &plan.name, total: all.len(), done_before: all.len() - todo.len() };
    let finished = |t: &Task| ids.iter().position(|i| *i == t.id).is_some_and(|i| dir.done(plan, todo[i]));
    let has_checkpoint = |t: &Task| ids.iter().position(|i| *i == t.id).is_some_and(|i| dir.partial(plan, todo[i]).is_file());
    let summary = pool.run(&tasks, &|t, progress| launch.command(out, &t.id, progress), &finished, &has_checkpoint)?;
    if let Some(first) = summary.failed.first() {
        let not_run = match summary.not_run {
            0 => String::new(),
            n => format!(" and {n} that need a failed unit did not run"),
        };
        bail!(
            "{} of {} units failed{not_run}, so no report was written (run again with --resume to retry them; finished units are kept): {first}",
            summary.failed.len(),
            all.len()
        );
    }
    finalize(plan, &dir, &all)?;
    Ok(out.to_path_buf())
}

/// `metarl worker`: runs the one unit of `plan` whose id is `unit_id` in the run directory
/// `out`, which its parent `metarl run` prepared, locked and checked the unit's prerequisites
/// in; `progress` is where to report env steps for the parent's bar. The worker refuses an
/// experiment (or plugins) other than the one the run directory was started with, since it
/// reads the experiment file anew.
pub fn work(
    plan: &Plan,
    plugins: &Plugins,
    out: &Path,
    unit_id: &str,
    progress: Option<PathBuf>,
    checkpoint_every: std::time::Duration,
) -> anyhow::Result<()> {
    check_saved_plan(plan, out)?;
    let unit = units(plan)
        .into_iter()
        .find(|u| u.id(plan) == unit_id)
        .ok_or_else(|| anyhow::anyhow!("the experiment of {} has no unit '{unit_id}'", out.display()))?;
    let _unit_lock = RunLock::acquire_unit(out, unit_id)?;
    let dir = RunDir { root: out.to_path_buf() };
    if dir.done(plan, &unit) {
        // A unit submitted twice (Slurm) keeps the files its first run wrote.
        log::info!("worker {}: unit {} is already done; nothing to do", std::process::id(), unit.name(plan));
        return Ok(());
    }
    log::info!("worker {}: unit {}", std::process::id(), unit.name(plan));
    let runner = Runner { plan, plugins, dir, progress, checkpoint_every };
    runner.run_unit(&unit)
}

/// The panels whose tables and figures show the curve of `unit` (an adaptation or scratch
/// unit). The scratch baseline does not depend on pretraining: it appears in every panel, or
/// alone in a scratch-only experiment.
///
/// With `[adapt] demos` other than `[0]`, every test-time count is a panel of its own,
/// `<panel>, <k> demos`, so the figures get one row per count.
fn panels_of(plan: &Plan, unit: &Unit) -> Vec<String> {
    let labels = match unit {
        Unit::Pretrain { .. } => return Vec::new(),
        Unit::Adapt { panel, .. } => vec![plan.panels[*panel].report_label().to_string()],
        _ if plan.panels.is_empty() => vec![SCRATCH_ONLY_PANEL.to_string()],
        // Each reported panel once (leave-one-out splits all report under one).
        _ => {
            let mut labels: Vec<String> = Vec::new();
            for p in &plan.panels {
                if !labels.iter().any(|l| l == p.report_label()) {
                    labels.push(p.report_label().to_string());
                }
            }
            labels
        }
    };
    if !plan.names_demos() {
        return labels;
    }
    let k = unit.demos(plan);
    labels.into_iter().map(|l| format!("{l}, {}", demos_label(k))).collect()
}

/// Gathers unit results into `metrics.jsonl`, `curves.json` and `success-curves.json`, then
/// writes the reports ([`write_reports`]).
fn finalize(plan: &Plan, dir: &RunDir, all: &[Unit]) -> anyhow::Result<()> {
    let mut metrics = Vec::new();
    let (mut returns, mut successes) = (Vec::new(), Vec::new());
    for unit in all {
        let name = unit.name(plan);
        metrics.extend(std::fs::read(dir.metrics(plan, unit)).with_context(|| format!("missing metrics of unit {name}"))?);
        if matches!(unit, Unit::Pretrain { .. }) {
            continue;
        }
        let path = dir.curve(plan, unit);
        let c: CurveFile = serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("missing curve of unit {name}"))?)
            .with_context(|| format!("curve file {} is damaged", path.display()))?;
        let ret: Vec<(u64, f64)> = c.points.iter().map(|p| (p.env_steps, p.ret.unwrap_or(f64::NAN))).collect();
        let succ: Vec<(u64, f64)> = c.points.iter().map(|p| (p.env_steps, p.success.unwrap_or(f64::NAN))).collect();
        for panel in panels_of(plan, unit) {
            let curve = |points: Vec<(u64, f64)>| Curve { panel: panel.clone(), method: c.method.clone(), seed: c.seed, task: c.task.clone(), points };
            returns.push(curve(ret.clone()));
            successes.push(curve(succ.clone()));
        }
    }
    write_atomic(&dir.root.join("metrics.jsonl"), &metrics)?;
    write_atomic(&dir.root.join("curves.json"), serde_json::to_string_pretty(&returns)?.as_bytes())?;
    write_atomic(&dir.root.join("success-curves.json"), serde_json::to_string_pretty(&successes)?.as_bytes())?;
    let files = write_reports(plan, &dir.root, &returns, &successes)?;
    print_summary(&files, &dir.root)
}

/// Writes every table and figure of a study into `root`, from its curves (test returns and
/// success rates, each in the order [`finalize`] gathers them): the reports of returns and
/// success rates, of reference-normalised scores, the aggregates, and with several held-out
/// tasks one report per task. The one report writer of `metarl run` and `metarl report`.
fn write_reports(plan: &Plan, root: &Path, returns: &[Curve], successes: &[Curve]) -> anyhow::Result<report::ReportFiles> {
    let title = format!("{}: {} on {} held-out task(s), {} seed(s)", plan.name, plan.family, plan.test_tasks.len(), plan.seeds.len());
    let files = report::write_report(root, &title, returns)?;
    report::write_metric_report(root, "success-", "success rate", &format!("{title}: success rate"), successes)?;
    // Scores normalised by per-task references (Atari: (score − random) / (human − random)).
    let normalised: Option<Vec<Curve>> = (!plan.reference_scores.is_empty()).then(|| {
        returns
            .iter()
            .map(|c| {
                let i = plan.test_names.iter().position(|n| *n == c.task).unwrap_or(0);
                let [low, high] = plan.reference_scores[i];
                Curve { points: c.points.iter().map(|&(s, v)| (s, (v - low) / (high - low))).collect(), ..c.clone() }
            })
            .collect()
    });
    // Named by the env plugin when its references are used; by the experiment's otherwise.
    let (name, source) = match &plan.normalisation {
        Some(n) => (n.name.as_str(), n.source.as_str()),
        None => ("normalised score", "each held-out task's `[report] reference_scores`"),
    };
    if let Some(normalised) = &normalised {
        let heading = match &plan.normalisation {
            Some(_) => format!("{title}: {name}, (score - low) / (high - low)"),
            None => format!("{title}: (score - low) / (high - low)"),
        };
        report::write_metric_report(root, "normalised-", name, &heading, normalised)?;
    }
    // rliable's aggregates of the final scores: normalised where the experiment can, since
    // only then are tasks on one scale and the optimality gap's target (1) meaningful.
    let (scores, kind) = match &normalised {
        Some(n) => (n.as_slice(), report::ScoreKind::Normalised { name, source }),
        None => (returns, report::ScoreKind::Return),
    };
    report::write_aggregates(root, &title, kind, scores, plan.bootstrap_resamples)?;
    // And of the success rates, for benchmarks whose measure they are (manipulation), where
    // the env reports success at all: an env that never does leaves them out.
    if successes.iter().any(|c| c.points.iter().any(|&(_, v)| v > 0.0)) {
        report::write_aggregates(root, &format!("{title}: success rate"), report::ScoreKind::Success, successes, plan.bootstrap_resamples)?;
    }
    // With several held-out tasks, also one figure and table per task, and all tasks' panels
    // in one figure (the paper's Figure 8).
    if plan.test_tasks.len() > 1 {
        report::write_task_figure(root, &format!("{title}: per held-out task"), returns)?;
        for task in &plan.test_names {
            let mine: Vec<Curve> = returns.iter().filter(|c| c.task == *task).cloned().collect();
            let title = format!("{}: {task}, {} seed(s)", plan.name, plan.seeds.len());
            report::write_metric_report(&root.join("per-task"), &format!("{}-", file_id(task)), "test return", &title, &mine)?;
        }
    }
    Ok(files)
}

/// Prints the summary table and where the results are.
fn print_summary(files: &report::ReportFiles, root: &Path) -> anyhow::Result<()> {
    let summary = std::fs::read_to_string(&files.summary_md).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{summary}")?;
    writeln!(stdout, "results in {}", root.display())?;
    Ok(())
}

// --- `metarl report`: the reports of finished run directories, rebuilt from their saved files.

/// What `metarl report` reads from a finished run directory: the plan (`config.toml`) and the
/// curves `finalize` saved.
struct SavedRun {
    dir: PathBuf,
    plan: Plan,
    returns: Vec<Curve>,
    successes: Vec<Curve>,
}

/// The plan a run directory was started with (its `config.toml`).
fn saved_plan(dir: &Path) -> anyhow::Result<Plan> {
    if !dir.is_dir() {
        bail!("run directory {} does not exist", dir.display());
    }
    let config = dir.join("config.toml");
    let text = std::fs::read_to_string(&config)
        .map_err(|_| anyhow::anyhow!("{} is not a metarl run directory (no config.toml)", dir.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is damaged or written by another metarl version: {}", config.display(), e.message().trim()))
}

/// Where each unit of a run directory stands, as `metarl status` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitState {
    /// Its result files are written.
    Done,
    /// A worker of the live run holding the directory is on it.
    Running,
    /// A worker started it (it has a log) but it has no result and nothing runs it: it
    /// failed, or its run was interrupted. `--resume` runs it again.
    Failed,
    /// Not started yet.
    Pending,
    /// Waiting in Slurm's queue (`--executor slurm`).
    Queued,
}

/// One unit in `metarl status`: its name, state, worker log (where one exists) and Slurm job
/// (where `squeue` holds one: `<array job>_<index>`).
#[derive(Debug, Clone)]
pub struct UnitStatus {
    /// The unit's name.
    pub name: String,
    /// Where it stands.
    pub state: UnitState,
    /// Its worker's log.
    pub log: Option<PathBuf>,
    /// Its Slurm array task.
    pub job: Option<String>,
    /// Env steps of its mid-phase checkpoint, where it continues.
    pub checkpoint: Option<u64>,
}

/// The env steps a mid-phase checkpoint at `path` was taken at (from its header), if any.
fn checkpoint_env_steps(path: &Path) -> Option<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n).ok()?;
    let n = usize::try_from(u64::from_le_bytes(n)).ok().filter(|&n| n < 1 << 20)?;
    let mut header = vec![0u8; n];
    f.read_exact(&mut header).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    header.get("__metadata__")?.get("env_steps")?.as_str()?.parse().ok()
}

/// Every unit of the run in `dir` with its state and, where one exists, its worker's log.
///
/// Where the run was submitted to Slurm, `squeue` says which units its jobs still hold.
pub fn status(dir: &Path) -> anyhow::Result<(Plan, Vec<UnitStatus>)> {
    let plan = saved_plan(dir)?;
    let rd = RunDir { root: dir.to_path_buf() };
    let live = crate::lock::RunLock::refuse_if_held(dir).is_err();
    let queued = crate::slurm::queued_units(dir).unwrap_or_else(|e| {
        log::warn!("cannot tell which units Slurm still holds: {e}");
        Default::default()
    });
    let rows = units(&plan)
        .iter()
        .map(|u| {
            let log = rd.logs().join(format!("{}.log", u.id(&plan)));
            let progress = rd.logs().join(format!("{}.progress", u.id(&plan)));
            let id = u.id(&plan);
            let job = queued.get(&id).map(|(job, _)| job.clone());
            let state = if rd.done(&plan, u) {
                UnitState::Done
            } else if let Some((_, q)) = queued.get(&id) {
                match q {
                    crate::slurm::Queued::Running => UnitState::Running,
                    crate::slurm::Queued::Pending => UnitState::Queued,
                }
            } else if live && (progress.exists() || log.exists()) {
                UnitState::Running
            } else if log.exists() {
                UnitState::Failed
            } else {
                UnitState::Pending
            };
            let checkpoint = (state != UnitState::Done).then(|| checkpoint_env_steps(&rd.partial(&plan, u))).flatten();
            UnitStatus { name: u.name(&plan), state, log: log.exists().then_some(log), job, checkpoint }
        })
        .collect();
    Ok((plan, rows))
}

impl SavedRun {
    fn read(dir: &Path) -> anyhow::Result<SavedRun> {
        let plan = saved_plan(dir)?;
        let curves = |name: &str| -> anyhow::Result<Vec<Curve>> {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|_| {
                anyhow::anyhow!("{} is not a finished run (no {name}): finish it with `metarl run <experiment> --out {} --resume`", dir.display(), dir.display())
            })?;
            serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{} is damaged: {e}", path.display()))
        };
        Ok(SavedRun { returns: curves("curves.json")?, successes: curves("success-curves.json")?, plan, dir: dir.to_path_buf() })
    }
}

/// The plan of `runs` taken together: the first one's, with the seeds of all of them in order
/// of first appearance. Everything but the seeds must match: the runs must be parts of one
/// experiment.
fn merged_plan(runs: &[SavedRun]) -> anyhow::Result<Plan> {
    let without_seeds = |p: &Plan| -> anyhow::Result<toml::Table> {
        match toml::Value::try_from(p)? {
            toml::Value::Table(mut t) => {
                t.remove("seeds");
                Ok(t)
            }
            _ => bail!("a plan is a table"),
        }
    };
    let first = &runs[0];
    let base = without_seeds(&first.plan)?;
    let mut plan = first.plan.clone();
    for run in &runs[1..] {
        let other = without_seeds(&run.plan)?;
        if let Some(key) = base.keys().chain(other.keys()).find(|k| base.get(*k) != other.get(*k)) {
            bail!(
                "{} and {} are runs of different experiments: `{key}` differs in their config.toml (only the seeds may differ between merged runs)",
                first.dir.display(),
                run.dir.display()
            );
        }
        for seed in &run.plan.seeds {
            if !plan.seeds.contains(seed) {
                plan.seeds.push(*seed);
            }
        }
    }
    Ok(plan)
}

/// (panel, method, seed, task): what names a curve.
type CurveKey = (String, String, u64, String);

/// Every curve of `runs` in the file `name` (`curves.json` or `success-curves.json`), by key,
/// with the index of the run it came from. The same curve in two runs is fine; two different
/// ones under one key are refused.
fn curves_by_key<'a>(runs: &'a [SavedRun], name: &str, pick: fn(&SavedRun) -> &[Curve]) -> anyhow::Result<HashMap<CurveKey, (usize, &'a Curve)>> {
    let same = |a: &[(u64, f64)], b: &[(u64, f64)]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && (x.1 == y.1 || (x.1.is_nan() && y.1.is_nan())))
    };
    let mut map: HashMap<CurveKey, (usize, &Curve)> = HashMap::new();
    for (i, run) in runs.iter().enumerate() {
        for c in pick(run) {
            let key = (c.panel.clone(), c.method.clone(), c.seed, c.task.clone());
            if let Some(&(j, old)) = map.get(&key) {
                if !same(&old.points, &c.points) {
                    bail!(
                        "{} and {} hold different curves of panel '{}', method '{}', seed {}, task '{}' in {name}: they are not parts of one study",
                        runs[j].dir.join(name).display(),
                        run.dir.join(name).display(),
                        c.panel,
                        c.method,
                        c.seed,
                        c.task
                    );
                }
            } else {
                map.insert(key, (i, c));
            }
        }
    }
    Ok(map)
}

/// `metarl report`: rebuilds every table and figure of `metarl run` from the saved curves of
/// one or more finished run directories of one experiment (merged: parts of a study that ran
/// different seeds, say as a Slurm job array), without running anything, into `out` (default:
/// the first directory, whose report files are then rewritten; its units, checkpoints, curves
/// and config are never touched). Returns where the report went.
///
/// The merged curves are put in the order a single run of all the seeds would have gathered
/// them (seeds in order of first appearance across the directories), so the report of two
/// halves equals the report of the whole, byte for byte.
pub fn report(dirs: &[PathBuf], out: Option<&Path>) -> anyhow::Result<PathBuf> {
    let Some(first) = dirs.first() else { bail!("give at least one run directory") };
    let runs = dirs.iter().map(|d| SavedRun::read(d)).collect::<anyhow::Result<Vec<_>>>()?;
    let plan = merged_plan(&runs)?;
    let returns = curves_by_key(&runs, "curves.json", |r| &r.returns)?;
    let successes = curves_by_key(&runs, "success-curves.json", |r| &r.successes)?;
    let (mut ret, mut succ) = (Vec::new(), Vec::new());
    for unit in units(&plan) {
        let (method, seed, task) = match unit {
            Unit::Pretrain { .. } => continue,
            Unit::Adapt { method, seed, task, .. } => (plan.methods[method].label.clone(), seed, task),
            Unit::Scratch { seed, task, .. } => ("scratch".to_string(), seed, task),
        };
        let task = plan.test_names[task].clone();
        for panel in panels_of(&plan, &unit) {
            let key = (panel, method.clone(), seed, task.clone());
            for (map, list, name) in [(&returns, &mut ret, "curves.json"), (&successes, &mut succ, "success-curves.json")] {
                let (_, c) = map.get(&key).ok_or_else(|| {
                    anyhow::anyhow!(
                        "no {name} of the run directories holds the curve of panel '{}', method '{}', seed {seed}, task '{}' (a damaged run?)",
                        key.0,
                        key.1,
                        key.3
                    )
                })?;
                list.push((*c).clone());
            }
        }
    }
    for (map, list, name) in [(&returns, &ret, "curves.json"), (&successes, &succ, "success-curves.json")] {
        if map.len() != list.len() {
            let planned: std::collections::HashSet<CurveKey> =
                list.iter().map(|c| (c.panel.clone(), c.method.clone(), c.seed, c.task.clone())).collect();
            if let Some(((panel, method, seed, task), (i, _))) = map.iter().find(|(k, _)| !planned.contains(*k)) {
                bail!(
                    "{} holds a curve its experiment does not plan (panel '{panel}', method '{method}', seed {seed}, task '{task}'): damaged?",
                    runs[*i].dir.join(name).display()
                );
            }
        }
    }
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| first.clone());
    let same_dir = |a: &Path, b: &Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y);
    if !runs.iter().any(|r| same_dir(&r.dir, &out)) && out.join("config.toml").exists() {
        bail!("{} is the directory of another run: its report would be overwritten; choose another --out", out.display());
    }
    let files = write_reports(&plan, &out, &ret, &succ)?;
    print_summary(&files, &out)?;
    Ok(out)
}
