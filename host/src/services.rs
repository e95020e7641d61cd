//! The host side of a meta plugin's phase: building envs for it, hearing its progress, and
//! asking for (and checking) evaluations.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RErr, ROk, ROption, RSlice, RVec};
use metarl_plugin_api::algo::AlgoBox;
use metarl_plugin_api::env::{EnvBox, EnvFfi, EnvFfi_TO, EnvRequest, EnvSpec, EpisodeStat, ResetBuffers, StepBuffers, Trajectory};
use metarl_plugin_api::meta::{eval_quota, EvalRequest, HostServices, HostServicesFfi, HostServicesFfi_TO, Progress};
use metarl_plugin_api::types::{Arrays, PResult, PluginError, Scalar};

use crate::loader::{check, Plugin};
use crate::tensorboard::UnitWriter;

/// Called on every progress report: `(algo, env_steps, scalars)`; returns whether to go on.
pub type ProgressFn<'a> = dyn FnMut(&mut AlgoBox, u64, &[Scalar]) -> anyhow::Result<bool> + 'a;

/// Writes a mid-phase checkpoint: `(algo state, meta state, the host's record of the phase)`.
pub type CheckpointFn<'a> = dyn FnMut(&[u8], &[u8], &SavedPhase) -> anyhow::Result<()> + 'a;

/// The host's record of a phase as a mid-phase checkpoint keeps it, so that the continued
/// phase's curve, evaluations and training-episode log go on from where it stood.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedPhase {
    /// Env steps taken in the phase's training envs.
    pub env_steps: u64,
    /// Training episodes finished: `(env steps when it finished, episode)`.
    pub finished: Vec<(u64, SavedEpisode)>,
    /// Evaluations carried out: `(curve point, env steps when it ran, episodes)`.
    pub evals: Vec<(u64, u64, Vec<SavedEpisode>)>,
    /// Curve points not yet evaluated.
    pub due: Vec<u64>,
    /// Env steps at which the phase was continued from a checkpoint, earliest first.
    pub continued_at: Vec<u64>,
}

/// An [`EpisodeStat`] in a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedEpisode {
    env: u32,
    task: u64,
    ret: f32,
    len: u32,
    success: bool,
}

impl From<EpisodeStat> for SavedEpisode {
    fn from(e: EpisodeStat) -> Self {
        SavedEpisode { env: e.env, task: e.task, ret: e.ret, len: e.len, success: e.success }
    }
}

impl From<SavedEpisode> for EpisodeStat {
    fn from(e: SavedEpisode) -> Self {
        EpisodeStat { env: e.env, task: e.task, ret: e.ret, len: e.len, success: e.success }
    }
}

/// When a phase takes mid-phase checkpoints, and where they go.
struct Checkpoints<'a> {
    /// At most this long between two (zero: at every chance).
    every: std::time::Duration,
    last: std::time::Instant,
    write: Box<CheckpointFn<'a>>,
}

/// How a phase is evaluated: at 0 env steps, every `every` steps, and at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSchedule {
    /// Curve resolution in env steps.
    pub every: u64,
    /// The phase's budget (the last point).
    pub budget: u64,
    /// Episodes per evaluation.
    pub episodes: u32,
    /// Envs of the evaluation env.
    pub num_envs: u32,
    /// Greedy actions with exploration noise off.
    pub deterministic: bool,
    /// ε of ε-greedy evaluation.
    pub epsilon: f32,
    /// Seed of the phase's evaluations; each one's seed is derived from it and its point.
    pub seed: u64,
}

impl EvalSchedule {
    /// The curve's x values: 0, every, 2 every, ..., budget.
    pub fn points(&self) -> Vec<u64> {
        let mut p: Vec<u64> = (0..).map(|k| k * self.every).take_while(|&s| s < self.budget).collect();
        p.push(self.budget);
        p
    }
}

/// One evaluation as the host counted it.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalPoint {
    /// The curve point it stands for.
    pub point: u64,
    /// Env steps of the phase when it ran (at or after `point`).
    pub at_env_steps: u64,
    /// The counted episodes (each env's first quota of them).
    pub episodes: Vec<EpisodeStat>,
}

/// Episodes of one evaluation env, counted per env up to its quota.
#[derive(Debug)]
struct EvalLog {
    request: EvalRequest,
    point: u64,
    done: Vec<u32>,
    episodes: Vec<EpisodeStat>,
    envs_built: usize,
}

impl EvalLog {
    fn complete(&self) -> bool {
        self.envs_built > 0
            && self.done.iter().enumerate().all(|(i, &d)| d >= eval_quota(self.request.episodes, self.request.num_envs, i as u32))
    }
}

/// What the host lends a meta plugin for one phase.
pub struct PhaseServices<'a> {
    env_plugin: &'a Plugin,
    family: String,
    env_config: String,
    allowed_tasks: Vec<u64>,
    threads: u32,
    on_progress: Box<ProgressFn<'a>>,
    schedule: Option<EvalSchedule>,
    /// Curve points not yet evaluated.
    due: Vec<u64>,
    pending: Option<Arc<Mutex<EvalLog>>>,
    /// The first error raised on the host side during the phase (the plugin only sees a
    /// generic failure; the host reports this one).
    pub host_error: Option<anyhow::Error>,
    /// Envs built so far in this phase (training and evaluation).
    pub envs_built: usize,
    /// Every episode finished in a training env of this phase, stamped with the phase's env
    /// steps: the training-episode diagnostic.
    pub episodes: Arc<Mutex<EpisodeLog>>,
    /// The evaluations carried out, in order.
    pub evals: Vec<EvalPoint>,
    /// Where progress reports and evaluations also go as TensorBoard events, if anywhere.
    tensorboard: Option<UnitWriter>,
    /// The expert demonstrations [`HostServicesFfi::demos`] gives (none by default).
    demos: Demos,
    /// Mid-phase checkpoints, when the phase takes them.
    checkpoints: Option<Checkpoints<'a>>,
    /// Env steps of the phase's latest checkpoint, if it took one.
    pub last_checkpoint: Option<u64>,
    /// Env steps where the phase was continued from a checkpoint, earliest first.
    continued_at: Vec<u64>,
}

/// The demonstrations of a phase: `per_task` of each of `tasks`, from an env seeded `seed`.
#[derive(Debug, Clone, Default)]
struct Demos {
    per_task: u32,
    seed: u64,
    /// `(task, name)`: each task's demos are seeded from the env's seed and its name.
    tasks: Vec<(u64, String)>,
}

/// Episodes finished during a phase, in completion order.
#[derive(Debug, Default)]
pub struct EpisodeLog {
    /// Env steps taken so far in the phase, over all its training envs.
    pub env_steps: u64,
    /// `(env steps when it finished, episode)`.
    pub finished: Vec<(u64, EpisodeStat)>,
}

/// Where a [`RecordingEnv`] logs.
enum Sink {
    Training(Arc<Mutex<EpisodeLog>>),
    Eval(Arc<Mutex<EvalLog>>),
}

/// An env lent to a meta plugin: forwards every call and logs finished episodes for the host,
/// so that curves do not depend on the meta plugin reporting them.
struct RecordingEnv {
    inner: EnvBox,
    num_envs: u64,
    sink: Sink,
    pending: Vec<EpisodeStat>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EnvFfi for RecordingEnv {
    fn spec(&self) -> PResult<EnvSpec> {
        self.inner.spec()
    }
    fn reset(&mut self, seed: u64, out: ResetBuffers<'_>) -> PResult<()> {
        self.inner.reset(seed, out)
    }
    fn step(&mut self, actions: Arrays<'_>, out: StepBuffers<'_>) -> PResult<()> {
        if let RErr(e) = self.inner.step(actions, out) {
            return RErr(e);
        }
        let done = match self.inner.take_episodes() {
            ROk(d) => d,
            RErr(e) => return RErr(e),
        };
        match &self.sink {
            Sink::Training(log) => {
                let mut log = lock(log);
                log.env_steps += self.num_envs;
                let at = log.env_steps;
                log.finished.extend(done.iter().map(|e| (at, *e)));
            }
            Sink::Eval(log) => {
                let mut log = lock(log);
                let (episodes, num_envs) = (log.request.episodes, log.request.num_envs);
                for e in done.iter() {
                    let i = e.env as usize;
                    if i < log.done.len() && log.done[i] < eval_quota(episodes, num_envs, e.env) {
                        log.done[i] += 1;
                        log.episodes.push(*e);
                    }
                }
            }
        }
        self.pending.extend(done);
        ROk(())
    }
    fn take_episodes(&mut self) -> PResult<RVec<EpisodeStat>> {
        ROk(std::mem::take(&mut self.pending).into())
    }
    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> PResult<RVec<Trajectory>> {
        self.inner.demos(task, episodes, seed)
    }
}

impl<'a> PhaseServices<'a> {
    /// Services building envs of `env_plugin`'s `family`, restricted to `allowed_tasks`
    /// (empty = any task of the family), evaluating on `schedule` if given.
    pub fn new(
        env_plugin: &'a Plugin,
        family: &str,
        env_config: String,
        allowed_tasks: Vec<u64>,
        threads: u32,
        schedule: Option<EvalSchedule>,
        on_progress: Box<ProgressFn<'a>>,
    ) -> Self {
        Self {
            env_plugin,
            family: family.to_string(),
            env_config,
            allowed_tasks,
            threads,
            on_progress,
            due: schedule.as_ref().map(EvalSchedule::points).unwrap_or_default(),
            schedule,
            pending: None,
            host_error: None,
            envs_built: 0,
            episodes: Arc::default(),
            evals: Vec::new(),
            tensorboard: None,
            demos: Demos::default(),
            checkpoints: None,
            last_checkpoint: None,
            continued_at: Vec::new(),
        }
    }

    /// Takes a mid-phase checkpoint whenever the meta plugin offers one and `every` has passed
    /// since the phase started or its last one (and always when the run is being stopped),
    /// handing it to `write`.
    pub fn with_checkpoints(mut self, every: std::time::Duration, write: Box<CheckpointFn<'a>>) -> Self {
        self.checkpoints = Some(Checkpoints { every, last: std::time::Instant::now(), write });
        self
    }

    /// Continues the phase a checkpoint recorded: its training episodes, evaluations and the
    /// curve points still due.
    pub fn continue_from(&mut self, saved: &SavedPhase) {
        {
            let mut log = lock(&self.episodes);
            log.env_steps = saved.env_steps;
            log.finished = saved.finished.iter().map(|&(at, e)| (at, e.into())).collect();
        }
        self.evals = saved
            .evals
            .iter()
            .map(|(point, at, episodes)| EvalPoint { point: *point, at_env_steps: *at, episodes: episodes.iter().map(|&e| e.into()).collect() })
            .collect();
        self.due = saved.due.clone();
        self.continued_at = saved.continued_at.clone();
        self.continued_at.push(saved.env_steps);
    }

    /// Where the phase was continued from checkpoints (env steps), earliest first.
    pub fn continued_at(&self) -> &[u64] {
        &self.continued_at
    }

    /// The host's record of the phase now.
    fn saved(&self) -> SavedPhase {
        let log = lock(&self.episodes);
        SavedPhase {
            env_steps: log.env_steps,
            finished: log.finished.iter().map(|&(at, e)| (at, e.into())).collect(),
            evals: self.evals.iter().map(|e| (e.point, e.at_env_steps, e.episodes.iter().map(|&x| x.into()).collect())).collect(),
            due: self.due.clone(),
            continued_at: self.continued_at.clone(),
        }
    }

    /// Gives the phase `per_task` expert demonstrations of each of `tasks` (`(task, name)`),
    /// from one env seeded from `seed` and the name `demos`, each task's seeded from that and
    /// its name.
    pub fn with_demos(mut self, per_task: u32, seed: u64, tasks: Vec<(u64, String)>) -> Self {
        self.demos = Demos { per_task, seed: metarl_plugin_kit::seeds::derive(seed, "demos"), tasks };
        self
    }

    /// The phase's demonstrations, from the env plugin; an error names the task.
    fn collect_demos(&self) -> anyhow::Result<Vec<Trajectory>> {
        let d = &self.demos;
        let req = EnvRequest {
            family: self.family.as_str().into(),
            tasks: d.tasks.iter().map(|(t, _)| *t).collect::<Vec<_>>().into(),
            num_envs: 1,
            trials: 1,
            seed: d.seed,
            threads: self.threads,
            config: self.env_config.as_str().into(),
        };
        let mut env = self.env_plugin.new_env(&req).map_err(|e| anyhow::anyhow!("expert demonstrations: {e}"))?;
        let mut out = Vec::new();
        for (task, name) in &d.tasks {
            let seed = metarl_plugin_kit::seeds::derive(d.seed, name);
            let got = check(&self.env_plugin.name, "demos", env.demos(*task, d.per_task, seed))
                .map_err(|e| anyhow::anyhow!("expert demonstrations of task '{name}': {e}"))?;
            let steps: usize = got.iter().map(|t| t.rewards.len()).sum();
            log::info!("expert demonstrations: task '{name}' gave {} trajectories for {} demos asked ({steps} steps)", got.len(), d.per_task);
            out.extend(got);
        }
        Ok(out)
    }

    /// Also writes every progress report and evaluation of the phase to `events`.
    pub fn with_tensorboard(mut self, events: UnitWriter) -> Self {
        self.tensorboard = Some(events);
        self
    }

    /// The FFI-safe handle to pass in a `MetaContext`.
    pub fn handle(&mut self) -> HostServices<'_> {
        HostServicesFfi_TO::from_ptr(self, TD_Opaque)
    }

    fn fail<T>(&mut self, err: anyhow::Error) -> PResult<T> {
        let msg = format!("{err:#}");
        if self.host_error.is_none() {
            self.host_error = Some(err);
        }
        RErr(PluginError::failed(msg))
    }

    /// Files the pending evaluation, or says why it is not complete.
    fn settle_eval(&mut self) -> anyhow::Result<()> {
        let Some(log) = self.pending.take() else { return Ok(()) };
        let log = lock(&log);
        if !log.complete() {
            anyhow::bail!(
                "the meta plugin did not carry out the evaluation the host asked for at {} env steps ({} of {} episodes counted{})",
                log.request.at_env_steps,
                log.episodes.len(),
                log.request.episodes,
                if log.envs_built == 0 { ", no evaluation env built" } else { "" }
            );
        }
        if let Some(tb) = &mut self.tensorboard {
            tb.eval(log.point, &log.episodes);
        }
        self.evals.push(EvalPoint { point: log.point, at_env_steps: log.request.at_env_steps, episodes: log.episodes.clone() });
        Ok(())
    }

    /// Checks, at the end of a phase, that every evaluation asked for was carried out.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        self.settle_eval()
    }

    /// The evaluation due at `env_steps`, if any: the latest curve point reached; points
    /// passed over without a report stay gaps.
    fn next_eval(&mut self, env_steps: u64) -> Option<EvalRequest> {
        let s = self.schedule.as_ref()?;
        let reached = self.due.iter().take_while(|&&p| p <= env_steps).count();
        if reached == 0 {
            return None;
        }
        let point = self.due[reached - 1];
        self.due.drain(..reached);
        let req = EvalRequest {
            episodes: s.episodes,
            num_envs: s.num_envs,
            deterministic: s.deterministic,
            epsilon: s.epsilon,
            seed: metarl_plugin_kit::seeds::mix(s.seed, point),
            at_env_steps: env_steps,
        };
        self.pending = Some(Arc::new(Mutex::new(EvalLog {
            request: req.clone(),
            point,
            done: vec![0; s.num_envs as usize],
            episodes: Vec::new(),
            envs_built: 0,
        })));
        Some(req)
    }

    fn build(&mut self, tasks: Vec<u64>, num_envs: u32, trials: u32, seed: u64, sink: Sink) -> PResult<EnvBox> {
        let req = EnvRequest {
            family: self.family.as_str().into(),
            tasks: tasks.into(),
            num_envs,
            trials,
            seed,
            threads: self.threads,
            config: self.env_config.as_str().into(),
        };
        let plugin = self.env_plugin;
        match catch_unwind(AssertUnwindSafe(|| plugin.new_env(&req))) {
            Ok(Ok(env)) => {
                self.envs_built += 1;
                let recording = RecordingEnv { inner: env, num_envs: num_envs as u64, sink, pending: Vec::new() };
                ROk(EnvFfi_TO::from_value(recording, TD_Opaque))
            }
            Ok(Err(e)) => RErr(PluginError { kind: e.error.kind, message: e.to_string().into() }),
            Err(_) => self.fail(anyhow::anyhow!("host panicked while building an env")),
        }
    }
}

impl HostServicesFfi for PhaseServices<'_> {
    fn make_env(&mut self, tasks: RSlice<'_, u64>, num_envs: u32, trials: u32, seed: u64) -> PResult<EnvBox> {
        if let Some(t) = tasks.iter().find(|t| !self.allowed_tasks.is_empty() && !self.allowed_tasks.contains(t)) {
            return RErr(PluginError::invalid(format!(
                "task {t} is not among this phase's tasks; a meta-method may only use the tasks it was given"
            )));
        }
        let sink = Sink::Training(self.episodes.clone());
        self.build(tasks.to_vec(), num_envs, trials, seed, sink)
    }

    fn make_eval_env(&mut self, req: &EvalRequest, trials: u32) -> PResult<EnvBox> {
        let Some(log) = self.pending.clone() else {
            return RErr(PluginError::invalid("make_eval_env: the host asked for no evaluation"));
        };
        {
            let mut l = lock(&log);
            if l.request != *req {
                return RErr(PluginError::invalid("make_eval_env: this is not the evaluation the host asked for"));
            }
            if l.envs_built > 0 {
                return RErr(PluginError::invalid("make_eval_env: the evaluation env was built already"));
            }
            l.envs_built += 1;
        }
        let tasks = self.allowed_tasks.clone();
        self.build(tasks, req.num_envs, trials.max(1), req.seed, Sink::Eval(log))
    }

    fn progress(&mut self, algo: &mut AlgoBox, env_steps: u64, scalars: RSlice<'_, Scalar>) -> PResult<Progress> {
        if let Err(e) = self.settle_eval() {
            return self.fail(e);
        }
        let cb = &mut self.on_progress;
        let go_on = match catch_unwind(AssertUnwindSafe(|| cb(algo, env_steps, scalars.as_slice()))) {
            Ok(Ok(go_on)) => go_on,
            Ok(Err(e)) => return self.fail(e),
            Err(_) => return self.fail(anyhow::anyhow!("host panicked in a progress report")),
        };
        if let Some(tb) = &mut self.tensorboard {
            tb.progress(env_steps, scalars.as_slice());
        }
        // A worker asked to stop (Slurm's warning, Ctrl-C) stops its phase at this report.
        let go_on = go_on && crate::executor::interrupted() == 0;
        let evaluate = match self.next_eval(env_steps) {
            Some(r) => ROption::RSome(r),
            None => ROption::RNone,
        };
        ROk(Progress { go_on, evaluate })
    }

    fn checkpoint_due(&mut self) -> bool {
        self.checkpoints.as_ref().is_some_and(|c| crate::executor::interrupted() != 0 || c.last.elapsed() >= c.every)
    }

    fn checkpoint(&mut self, algo: &mut AlgoBox, meta_state: RSlice<'_, u8>) -> PResult<()> {
        if self.checkpoints.is_none() {
            return RErr(PluginError::invalid("this phase takes no mid-phase checkpoints"));
        }
        let taken = (|| -> anyhow::Result<u64> {
            // The evaluation of the report just made belongs to the record.
            self.settle_eval()?;
            let algo_state = match algo.save() {
                ROk(b) => b,
                RErr(e) => anyhow::bail!("the algo's save for a mid-phase checkpoint failed: {e}"),
            };
            let saved = self.saved();
            let c = self.checkpoints.as_mut().expect("checked above");
            (c.write)(&algo_state, meta_state.as_slice(), &saved)?;
            c.last = std::time::Instant::now();
            Ok(saved.env_steps)
        })();
        match taken {
            Ok(at) => {
                self.last_checkpoint = Some(at);
                ROk(())
            }
            Err(e) => self.fail(e),
        }
    }

    fn demos(&mut self) -> PResult<RVec<Trajectory>> {
        if self.demos.per_task == 0 || self.demos.tasks.is_empty() {
            return ROk(RVec::new());
        }
        match catch_unwind(AssertUnwindSafe(|| self.collect_demos())) {
            Ok(Ok(v)) => ROk(v.into()),
            Ok(Err(e)) => self.fail(e),
            Err(_) => self.fail(anyhow::anyhow!("host panicked while collecting expert demonstrations")),
        }
    }
}
