//! `metarl run`: pretrain every method on every panel's training tasks, adapt to each held-out
//! task, train the scratch baseline, and write curves, tables and plots.
//!
//! Work is split into **units** (one pretraining, one adaptation, one scratch run). A unit's
//! results are written atomically (temp file, then rename) when it finishes; a unit whose
//! result file exists is done. So a run killed at any point resumes with `--resume`, redoing
//! only the unit that was interrupted, and since every unit is seeded from the experiment's
//! seed and its own identity, the final files equal those of an uninterrupted run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use abi_stable::std_types::RSlice;
use anyhow::{bail, Context};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use metarl_plugin_api::algo::{AlgoBox, AlgoRequest};
use metarl_plugin_api::driver::{self, Driver, MemoryReset};
use metarl_plugin_api::env::EnvRequest;
use metarl_plugin_api::meta::{MetaContext, MetaRequest};
use serde::{Deserialize, Serialize};

use crate::experiment::{Plan, Plugins};
use crate::loader::{check, Plugin};
use crate::report::{self, Curve};
use crate::services::{EpisodeLog, PhaseServices};

/// A unit of work.
#[derive(Debug, Clone, PartialEq)]
enum Unit {
    Pretrain { panel: usize, method: usize, seed: u64 },
    Adapt { panel: usize, method: usize, seed: u64, task: usize },
    Scratch { seed: u64, task: usize },
}

impl Unit {
    /// A stable, file-system safe identity.
    fn id(&self) -> String {
        match self {
            Unit::Pretrain { panel, method, seed } => format!("pretrain-p{panel}-m{method}-s{seed}"),
            Unit::Adapt { panel, method, seed, task } => format!("adapt-p{panel}-m{method}-s{seed}-t{task}"),
            Unit::Scratch { seed, task } => format!("scratch-s{seed}-t{task}"),
        }
    }
}

/// What a finished adaptation or scratch unit leaves behind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct CurveFile {
    unit: String,
    method: String,
    seed: u64,
    task: String,
    /// `(env steps, mean return)`; `None` where no episode finished in the window.
    points: Vec<(u64, Option<f64>)>,
}

/// SplitMix64 finaliser: derives independent seeds from the experiment seed and a unit's identity.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Writes `bytes` to `path` atomically.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(())
}

// --- checkpoints: safetensors files holding the algo's and the meta-method's state as u8 tensors.

fn write_checkpoint(path: &Path, algo: &[u8], meta: &[u8], metadata: &[(&str, String)]) -> anyhow::Result<()> {
    let mut header = serde_json::Map::new();
    let meta_map: serde_json::Map<String, serde_json::Value> =
        metadata.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone()))).collect();
    header.insert("__metadata__".into(), serde_json::Value::Object(meta_map));
    header.insert("algo".into(), serde_json::json!({"dtype": "U8", "shape": [algo.len()], "data_offsets": [0, algo.len()]}));
    header.insert(
        "meta".into(),
        serde_json::json!({"dtype": "U8", "shape": [meta.len()], "data_offsets": [algo.len(), algo.len() + meta.len()]}),
    );
    let mut h = serde_json::to_vec(&header)?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + algo.len() + meta.len());
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(algo);
    out.extend_from_slice(meta);
    write_atomic(path, &out)
}

fn read_checkpoint(path: &Path) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let bad = || anyhow::anyhow!("checkpoint {} is not a metarl safetensors file", path.display());
    let n = u64::from_le_bytes(bytes.get(..8).ok_or_else(bad)?.try_into()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8 + n).ok_or_else(bad)?).map_err(|_| bad())?;
    let data = &bytes[8 + n..];
    let tensor = |name: &str| -> anyhow::Result<Vec<u8>> {
        let offs = header[name]["data_offsets"].as_array().ok_or_else(bad)?;
        let (a, b) = (offs[0].as_u64().ok_or_else(bad)? as usize, offs[1].as_u64().ok_or_else(bad)? as usize);
        Ok(data.get(a..b).ok_or_else(bad)?.to_vec())
    };
    Ok((tensor("algo")?, tensor("meta")?))
}

/// The run directory.
struct RunDir {
    root: PathBuf,
}

impl RunDir {
    fn units(&self) -> PathBuf {
        self.root.join("units")
    }
    fn checkpoint(&self, panel: usize, method: usize, seed: u64) -> PathBuf {
        self.root.join("checkpoints").join(format!("p{panel}-m{method}-s{seed}.safetensors"))
    }
    fn curve(&self, unit: &Unit) -> PathBuf {
        self.units().join(format!("{}.json", unit.id()))
    }
    fn metrics(&self, unit: &Unit) -> PathBuf {
        self.units().join(format!("{}.jsonl", unit.id()))
    }
    fn done(&self, unit: &Unit) -> bool {
        match unit {
            Unit::Pretrain { panel, method, seed } => self.checkpoint(*panel, *method, *seed).is_file(),
            _ => self.curve(unit).is_file(),
        }
    }
}

/// Prepares the run directory: refuses an existing one without `resume`, and a changed
/// experiment with it. Runs before any training.
fn prepare_dir(plan: &Plan, out: &Path, resume: bool) -> anyhow::Result<RunDir> {
    let config = toml::to_string(plan)?;
    let config_path = out.join("config.toml");
    if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false) {
        if !resume {
            bail!("run directory {} already exists: pass --resume to continue it, or choose another with --out", out.display());
        }
        let old = std::fs::read_to_string(&config_path)
            .with_context(|| format!("{} is not a metarl run directory (no config.toml)", out.display()))?;
        if old != config {
            bail!(
                "the experiment (or a plugin version) changed since {} was started; resume only continues the same experiment",
                out.display()
            );
        }
    } else if resume {
        bail!("nothing to resume: {} does not exist", out.display());
    }
    for dir in [out.to_path_buf(), out.join("units"), out.join("checkpoints")] {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create output directory {}", dir.display()))?;
    }
    let probe = out.join(".write-test");
    std::fs::write(&probe, b"").with_context(|| format!("output directory {} is not writable", out.display()))?;
    let _ = std::fs::remove_file(probe);
    write_atomic(&config_path, config.as_bytes())?;
    Ok(RunDir { root: out.to_path_buf() })
}

/// Everything a unit needs.
struct Runner<'a> {
    plan: &'a Plan,
    plugins: &'a Plugins,
    dir: RunDir,
    bars: MultiProgress,
}

fn steps_bar(bars: &MultiProgress, len: u64, label: String) -> ProgressBar {
    let bar = bars.add(ProgressBar::new(len));
    bar.set_style(
        ProgressStyle::with_template("  {msg:<40} [{bar:30}] {human_pos}/{human_len} steps  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label);
    bar
}

impl Runner<'_> {
    fn new_algo(&self, config: &str, context_dim: u32, seed: u64) -> anyhow::Result<AlgoBox> {
        let spec = &self.plugins.spec;
        let req = AlgoRequest {
            obs: spec.obs.clone(),
            action: spec.action.clone(),
            num_envs: self.plan.num_envs,
            context_dim,
            seed,
            device: self.plan.device.as_str().into(),
            config: config.into(),
        };
        Ok(self.plugins.algo.new_algo(&req)?)
    }

    /// Runs a phase (pretraining or adaptation) of a meta plugin, or plain training when
    /// `meta` is `None`; returns the episode log and the metrics lines.
    fn phase(
        &self,
        meta: Option<(&Plugin, &mut metarl_plugin_api::meta::MetaBox)>,
        algo: &mut AlgoBox,
        adapt: bool,
        tasks: &[u64],
        budget: u64,
        seed: u64,
        label: String,
        unit: &str,
    ) -> anyhow::Result<(EpisodeLog, Vec<String>)> {
        let bar = steps_bar(&self.bars, budget, label);
        let mut lines = Vec::new();
        let bar2 = bar.clone();
        let on_progress = Box::new(|_: &mut AlgoBox, steps: u64, scalars: &[metarl_plugin_api::types::Scalar]| {
            bar2.set_position(steps.min(budget));
            let mut line = serde_json::Map::new();
            line.insert("unit".into(), unit.into());
            line.insert("env_steps".into(), steps.into());
            for s in scalars {
                if s.value.is_finite() {
                    line.insert(s.name.to_string(), s.value.into());
                }
            }
            lines.push(serde_json::Value::Object(line).to_string());
            Ok(steps < budget)
        });
        let mut services = PhaseServices::new(&self.plugins.env, &self.plan.family, self.plan.env_config.clone(), tasks.to_vec(), on_progress);
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
                let mut ctx = ctx;
                driver::train(&mut ctx, seed).map(drop).map_err(|e| anyhow::anyhow!("training from scratch failed: {e}"))
            }
        };
        let host_error = services.host_error.take();
        drop(services);
        bar.finish_and_clear();
        if let Some(e) = host_error {
            return Err(e);
        }
        result?;
        let log = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
        Ok((log, lines))
    }

    /// Mean return of the first `eval_episodes` episodes of the agent on `task`, before any
    /// adaptation: the zero-shot point of a curve.
    fn zero_shot(&self, algo: &mut AlgoBox, task: u64, seed: u64) -> anyhow::Result<Option<f64>> {
        let req = EnvRequest {
            family: self.plan.family.as_str().into(),
            tasks: vec![task].into(),
            num_envs: self.plan.num_envs,
            trials: 1,
            seed,
            config: self.plan.env_config.as_str().into(),
        };
        let env = self.plugins.env.new_env(&req)?;
        let mut d = Driver::new(env, algo, seed, MemoryReset::Episode).context("zero-shot evaluation")?;
        let want = self.plan.eval_episodes as usize;
        let limit = (want as u64 + 1) * d.batch.spec.max_episode_steps.max(1000) as u64;
        let mut returns = Vec::new();
        let mut steps = 0;
        while returns.len() < want && steps < limit {
            d.step(algo, false, false).context("zero-shot evaluation")?;
            returns.extend(d.take_episodes().context("zero-shot evaluation")?.iter().map(|e| e.ret as f64));
            steps += 1;
        }
        returns.truncate(want);
        Ok(if returns.is_empty() { None } else { Some(returns.iter().sum::<f64>() / returns.len() as f64) })
    }

    /// Adaptation curve from an episode log: the zero-shot point, then the mean return of the
    /// episodes finished in each `eval_every` window.
    fn curve(&self, zero_shot: Option<f64>, log: &EpisodeLog) -> Vec<(u64, Option<f64>)> {
        let (every, budget) = (self.plan.eval_every, self.plan.adapt_env_steps);
        let mut points = vec![(0, zero_shot)];
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
        let id = unit.id();
        match *unit {
            Unit::Pretrain { panel, method, seed } => {
                let m = &plan.methods[method];
                let s = mix(seed, hash_str(&id));
                let mut algo = self.new_algo(&m.algo_config, m.context_dim, s)?;
                let plugin = &self.plugins.metas[method];
                let mut meta = plugin.new_meta(&MetaRequest { seed: s, config: m.config.as_str().into() })?;
                let label = format!("pretrain {} [{}] seed {seed}", m.label, plan.panels[panel].label);
                let (_, lines) = self.phase(
                    Some((plugin, &mut meta)),
                    &mut algo,
                    false,
                    &plan.panels[panel].tasks,
                    plan.pretrain_env_steps,
                    s,
                    label,
                    &id,
                )?;
                let algo_state = check(&self.plugins.algo.name, "save", algo.save())?;
                let meta_state = check(&plugin.name, "save", meta.save())?;
                write_atomic(&self.dir.metrics(unit), (lines.join("\n") + "\n").as_bytes())?;
                write_checkpoint(
                    &self.dir.checkpoint(panel, method, seed),
                    &algo_state,
                    &meta_state,
                    &[("method", m.label.clone()), ("seed", seed.to_string()), ("panel", plan.panels[panel].label.clone())],
                )?;
            }
            Unit::Adapt { panel, method, seed, task } => {
                let m = &plan.methods[method];
                let s = mix(seed, hash_str(&id));
                let (algo_state, meta_state) = read_checkpoint(&self.dir.checkpoint(panel, method, seed))?;
                let mut algo = self.new_algo(&m.algo_config, m.context_dim, s)?;
                check(&self.plugins.algo.name, "load", algo.load(algo_state.as_slice().into()))?;
                if plan.reset_heads {
                    check(&self.plugins.algo.name, "reset_heads", algo.reset_heads(s))?;
                }
                let plugin = &self.plugins.metas[method];
                let mut meta = plugin.new_meta(&MetaRequest { seed: s, config: m.config.as_str().into() })?;
                check(&plugin.name, "load", meta.load(meta_state.as_slice().into()))?;
                let t = plan.test_tasks[task];
                let zero = self.zero_shot(&mut algo, t, mix(s, 1))?;
                let label = format!("adapt {} [{}] seed {seed} task {}", m.label, plan.panels[panel].label, plan.test_names[task]);
                let (log, lines) =
                    self.phase(Some((plugin, &mut meta)), &mut algo, true, &[t], plan.adapt_env_steps, s, label, &id)?;
                self.finish_curve(unit, &m.label, seed, task, zero, &log, &lines)?;
            }
            Unit::Scratch { seed, task } => {
                let s = mix(seed, hash_str(&id));
                let mut algo = self.new_algo(&plan.scratch_algo_config, 0, s)?;
                let t = plan.test_tasks[task];
                let zero = self.zero_shot(&mut algo, t, mix(s, 1))?;
                let label = format!("scratch seed {seed} task {}", plan.test_names[task]);
                let (log, lines) = self.phase(None, &mut algo, true, &[t], plan.adapt_env_steps, s, label, &id)?;
                self.finish_curve(unit, "scratch", seed, task, zero, &log, &lines)?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_curve(
        &self,
        unit: &Unit,
        method: &str,
        seed: u64,
        task: usize,
        zero: Option<f64>,
        log: &EpisodeLog,
        lines: &[String],
    ) -> anyhow::Result<()> {
        let curve = CurveFile {
            unit: unit.id(),
            method: method.to_string(),
            seed,
            task: self.plan.test_names[task].clone(),
            points: self.curve(zero, log),
        };
        write_atomic(&self.dir.metrics(unit), (lines.join("\n") + "\n").as_bytes())?;
        write_atomic(&self.dir.curve(unit), serde_json::to_string_pretty(&curve)?.as_bytes())
    }
}

/// All units of a plan, in execution order: pretraining first (adaptation needs checkpoints).
fn units(plan: &Plan) -> Vec<Unit> {
    let mut out = Vec::new();
    for &seed in &plan.seeds {
        for panel in 0..plan.panels.len() {
            for method in 0..plan.methods.len() {
                out.push(Unit::Pretrain { panel, method, seed });
            }
        }
    }
    for &seed in &plan.seeds {
        for task in 0..plan.test_tasks.len() {
            for panel in 0..plan.panels.len() {
                for method in 0..plan.methods.len() {
                    out.push(Unit::Adapt { panel, method, seed, task });
                }
            }
            if plan.scratch {
                out.push(Unit::Scratch { seed, task });
            }
        }
    }
    out
}

/// Number of units `plan` consists of.
pub fn count_units(plan: &Plan) -> usize {
    units(plan).len()
}

/// Runs (or resumes) `plan` into `out`.
pub fn run(plan: &Plan, plugins: &Plugins, out: &Path, resume: bool) -> anyhow::Result<PathBuf> {
    let dir = prepare_dir(plan, out, resume)?;
    let all = units(plan);
    let todo: Vec<&Unit> = all.iter().filter(|u| !dir.done(u)).collect();
    if resume {
        log::info!("resuming {}: {} of {} units already done", out.display(), all.len() - todo.len(), all.len());
    }
    let bars = MultiProgress::new();
    let overall = bars.add(ProgressBar::new(all.len() as u64));
    overall.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} units  elapsed {elapsed}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    overall.set_prefix(plan.name.clone());
    overall.set_position((all.len() - todo.len()) as u64);
    overall.enable_steady_tick(Duration::from_millis(500));
    let runner = Runner { plan, plugins, dir, bars };
    for unit in todo {
        runner.run_unit(unit).with_context(|| format!("unit {}", unit.id()))?;
        overall.inc(1);
    }
    overall.finish_and_clear();
    finalize(plan, &runner.dir, &all)?;
    Ok(out.to_path_buf())
}

/// Gathers unit results into `metrics.jsonl`, `curves.json` and the report.
fn finalize(plan: &Plan, dir: &RunDir, all: &[Unit]) -> anyhow::Result<()> {
    let mut metrics = Vec::new();
    let mut curves = Vec::new();
    for unit in all {
        metrics.extend(std::fs::read(dir.metrics(unit)).with_context(|| format!("missing metrics of unit {}", unit.id()))?);
        if matches!(unit, Unit::Pretrain { .. }) {
            continue;
        }
        let c: CurveFile = serde_json::from_slice(&std::fs::read(dir.curve(unit))?)?;
        let points: Vec<(u64, f64)> = c.points.iter().map(|(s, r)| (*s, r.unwrap_or(f64::NAN))).collect();
        let panels: Vec<String> = match unit {
            Unit::Adapt { panel, .. } => vec![plan.panels[*panel].label.clone()],
            // The scratch baseline does not depend on pretraining: it appears in every panel.
            _ => plan.panels.iter().map(|p| p.label.clone()).collect(),
        };
        for panel in panels {
            curves.push(Curve { panel, method: c.method.clone(), seed: c.seed, task: c.task.clone(), points: points.clone() });
        }
    }
    write_atomic(&dir.root.join("metrics.jsonl"), &metrics)?;
    write_atomic(&dir.root.join("curves.json"), serde_json::to_string_pretty(&curves)?.as_bytes())?;
    let title = format!("{}: {} on {} held-out task(s), {} seed(s)", plan.name, plan.family, plan.test_tasks.len(), plan.seeds.len());
    let files = report::write_report(&dir.root, &title, &curves)?;
    let summary = std::fs::read_to_string(&files.summary_md).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{summary}")?;
    writeln!(stdout, "results in {}", dir.root.display())?;
    Ok(())
}
