//! The local executor: each unit of a study runs in a worker process, several at a time.
//!
//! `metarl run` is the parent. It never trains: for every unit still to do it starts a
//! **worker**, the same binary as `metarl worker EXPERIMENT --out DIR --unit ID` (a hidden
//! subcommand), which loads the experiment and the plugins itself, runs that one unit in the
//! run directory and exits: 0 when the unit's files are written, 1 with an `error:` line
//! otherwise. Why processes: a unit that crashes (a segfault or an abort inside a plugin)
//! takes only its own process down, and the parent reports it and carries on with the units
//! that do not depend on it; and libtorch's threads, allocator and global state are per
//! process, so units running side by side share nothing but the run directory.
//!
//! The pool ([`Pool::run`]) keeps up to `jobs` workers busy, starting units in plan order as
//! soon as the unit they need (an adaptation needs its pretraining's checkpoint) has finished.
//! Each worker's stdout and stderr go to a file (`logs/<unit id>.log`, the last attempt's), so
//! the parent never reads a pipe and cannot block on one. Results never depend on the pool:
//! a unit's seed and files come from its name, and the parent writes the report once, after
//! every unit finished, from the unit files in plan order.
//!
//! Workers die with their parent (Linux: `PR_SET_PDEATHSIG`), so a `metarl run` killed with
//! `kill -9` leaves no worker writing into the directory the next `--resume` takes over.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// How often the parent looks at its workers (and redraws their bars).
const TICK: Duration = Duration::from_millis(50);

/// The signal (SIGINT or SIGTERM) that asked the parent to stop, 0 while none did.
static INTERRUPTED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_interrupt(sig: libc::c_int) {
    // Only an atomic store: all a signal handler may safely do.
    INTERRUPTED.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// The exit code of a worker that was asked to stop (SIGINT or SIGTERM) before its unit was
/// done: "run me again". Where its plugins take mid-phase checkpoints it saved one, and the
/// next run of the unit continues from it. (`EX_TEMPFAIL`.)
pub const EXIT_INTERRUPTED: u8 = 75;

/// How long the parent gives its workers to save a checkpoint and exit once it is asked to
/// stop, before it kills them.
const STOP_GRACE: Duration = Duration::from_secs(120);

/// The signal (SIGINT or SIGTERM) that asked this process to stop, 0 while none did (or
/// before [`catch_interrupts`]).
pub fn interrupted() -> i32 {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// From now on SIGINT (Ctrl-C) and SIGTERM (`kill`, Slurm's warning before a time limit or
/// preemption) ask this process to stop. In `metarl run` the pool then asks its workers to
/// stop, gives them [`STOP_GRACE`] to save a checkpoint, and exits with an error naming the
/// signal and what `--resume` will do, its lock released. In a worker the phase stops at its
/// next progress report, after a mid-phase checkpoint where the plugins take one, and the
/// worker exits with [`EXIT_INTERRUPTED`].
pub fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only stores into an atomic.
        unsafe { libc::signal(sig, on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    }
}

/// Workers at a time when `--jobs` is not given: the cores this process may use (its CPU
/// affinity and cgroup quota included) divided by the experiment's `threads` per unit, at
/// least one, so that workers × threads do not oversubscribe the machine.
pub fn default_jobs(threads: u32) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / threads.max(1) as usize).max(1)
}

/// How the parent starts a worker: this very binary, with the parent's global options.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The registry the parent loaded (as given: the worker runs in the same directory).
    pub registry: PathBuf,
    /// `-v` count, passed on.
    pub verbose: u8,
    /// The experiment file (as given).
    pub experiment: PathBuf,
    /// Minutes between a unit's mid-phase checkpoints (`--checkpoint-every`).
    pub checkpoint_every: f64,
}

impl Launch {
    /// `metarl --registry R [-v..] worker EXPERIMENT --out OUT --unit ID [--progress FILE]`.
    ///
    /// On Linux the program is `/proc/self/exe`, which the kernel resolves in the forked child
    /// to the parent's own executable, so workers run the parent's code even if
    /// `target/release/metarl` is rebuilt while a study runs; and the worker is killed when
    /// the parent dies (`PR_SET_PDEATHSIG`, tied to the thread that starts it: the main one).
    pub fn command(&self, out: &Path, unit_id: &str, progress: Option<&Path>) -> Command {
        let mut cmd = if cfg!(target_os = "linux") {
            Command::new("/proc/self/exe")
        } else {
            Command::new(std::env::current_exe().unwrap_or_else(|_| PathBuf::from("metarl")))
        };
        cmd.arg("--registry").arg(&self.registry);
        for _ in 0..self.verbose {
            cmd.arg("-v");
        }
        cmd.arg("worker").arg(&self.experiment).arg("--out").arg(out).arg("--unit").arg(unit_id);
        cmd.arg("--checkpoint-every").arg(self.checkpoint_every.to_string());
        if let Some(p) = progress {
            cmd.arg("--progress").arg(p);
        }
        {
            use std::os::unix::process::CommandExt;
            cmd.arg0("metarl");
        }
        die_with_parent(&mut cmd);
        cmd
    }
}

/// Names the calling worker process `metarl` for `top`, `pgrep` and `ps -o comm` (started as
/// `/proc/self/exe`, the kernel would name it `exe`). Call from the worker's main thread.
pub fn name_worker_process() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"metarl".as_ptr());
    }
}

/// Makes the child get SIGKILL when the thread that started it (the parent's main thread)
/// ends, so no worker outlives a killed parent.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: runs in the forked child before exec; prctl and getppid are async-signal-safe
    // and nothing here allocates.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the line above took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}

/// What a worker writes for its parent's progress bar: its env steps so far, in a file the
/// parent polls (replaced atomically, at most every 200 ms). Cosmetic: errors are ignored.
#[derive(Debug)]
pub struct ProgressFile {
    path: Option<PathBuf>,
    last: Option<Instant>,
}

impl ProgressFile {
    /// Reports into `path`; `None` reports nowhere (no terminal to draw on).
    pub fn new(path: Option<PathBuf>) -> ProgressFile {
        ProgressFile { path, last: None }
    }

    /// Env steps done so far.
    pub fn report(&mut self, steps: u64) {
        let Some(path) = &self.path else { return };
        if self.last.is_some_and(|t| t.elapsed() < Duration::from_millis(200)) {
            return;
        }
        self.last = Some(Instant::now());
        let tmp = path.with_extension("progress-partial");
        if std::fs::write(&tmp, format!("{steps}\n")).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    /// What a worker last reported in `path`.
    fn read(path: &Path) -> Option<u64> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }
}

/// A unit as the pool sees it.
#[derive(Debug, Clone)]
pub struct Task {
    /// File-system safe identity: the worker's `--unit` and its log's name.
    pub id: String,
    /// What the unit is, for people.
    pub name: String,
    /// The task (index into the pool's list) that must finish first.
    pub needs: Option<usize>,
    /// Env steps the unit trains for (its progress bar's length).
    pub budget: u64,
}

/// A unit whose worker did not succeed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The unit's name.
    pub unit: String,
    /// How the worker ended: `exit code 1: <its error line>`, `killed by SIGSEGV, signal 11`.
    pub cause: String,
    /// The worker's log.
    pub log: PathBuf,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unit {} failed ({}); its log: {}", self.unit, self.cause, self.log.display())
    }
}

/// What became of the tasks a pool was given.
#[derive(Debug, Default)]
pub struct Summary {
    /// Units whose worker failed, in the order they ended.
    pub failed: Vec<Failure>,
    /// Units not started because a unit they need failed.
    pub not_run: usize,
}

/// The local pool.
pub struct Pool<'a> {
    /// Workers at a time.
    pub jobs: usize,
    /// Where worker logs go (`<run dir>/logs`).
    pub logs: PathBuf,
    /// What lines start with (the experiment's name).
    pub title: &'a str,
    /// Units of the whole study (`unit i/total` in the lines).
    pub total: usize,
    /// Units finished before this pool started (resume).
    pub done_before: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Waiting,
    Running,
    Done,
    Failed,
    NotRun,
}

struct Worker {
    task: usize,
    child: Child,
    started: Instant,
    log: PathBuf,
    progress: Option<(PathBuf, ProgressBar)>,
}

/// Progress bars on a terminal, lines in a log.
enum Display {
    Lines,
    Bars { multi: MultiProgress, overall: ProgressBar },
}

impl Display {
    fn line(&self, text: String) {
        match self {
            Display::Lines => eprintln!("{text}"),
            Display::Bars { multi, .. } => multi.suspend(|| eprintln!("{text}")),
        }
    }
}

impl Pool<'_> {
    /// Runs every task in a worker, up to `jobs` at a time, each after the task it needs
    /// finished. `command(task, progress)` builds a task's worker command (`progress`: the file
    /// it should report its steps in, when the parent draws bars); `finished(task)` says
    /// whether a worker that exited 0 left its results, `has_checkpoint(task)` whether a unit
    /// has a mid-phase checkpoint (to say so when stopped). A worker that fails (non-zero exit, a
    /// signal, no results) is reported in one line and the tasks that need it are not started;
    /// the others carry on. Errors only when a worker cannot be started at all.
    pub fn run(
        &self,
        tasks: &[Task],
        command: &dyn Fn(&Task, Option<&Path>) -> Command,
        finished: &dyn Fn(&Task) -> bool,
        has_checkpoint: &dyn Fn(&Task) -> bool,
    ) -> anyhow::Result<Summary> {
        std::fs::create_dir_all(&self.logs).with_context(|| format!("cannot create {}", self.logs.display()))?;
        catch_interrupts();
        let display = self.display();
        let mut state = vec![State::Waiting; tasks.len()];
        let mut workers: Vec<Worker> = Vec::new();
        let mut summary = Summary::default();
        let (mut started, mut done) = (self.done_before, self.done_before);
        loop {
            while workers.len() < self.jobs.max(1) {
                let ready = (0..tasks.len())
                    .find(|&i| state[i] == State::Waiting && tasks[i].needs.is_none_or(|j| state[j] == State::Done));
                let Some(i) = ready else { break };
                match self.start(&tasks[i], i, command, &display) {
                    Ok(w) => workers.push(w),
                    Err(e) => {
                        // Nothing can run without workers: stop the others and say why.
                        for mut w in workers {
                            let _ = w.child.kill();
                            let _ = w.child.wait();
                        }
                        return Err(e);
                    }
                }
                state[i] = State::Running;
                started += 1;
                if matches!(display, Display::Lines) {
                    display.line(format!("{}: unit {started}/{} started: {}", self.title, self.total, tasks[i].name));
                }
            }
            if workers.is_empty() {
                break;
            }
            std::thread::sleep(TICK);
            let sig = INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst);
            if sig != 0 {
                // Ask every worker to stop (a terminal's Ctrl-C reached them too): each saves a
                // checkpoint at its next progress report where its plugins take one. Those
                // that do not exit within the grace period are killed.
                let stopped: Vec<String> = workers.iter().map(|w| tasks[w.task].name.clone()).collect();
                for w in &workers {
                    // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
                    unsafe { libc::kill(w.child.id() as libc::pid_t, libc::SIGTERM) };
                }
                let deadline = Instant::now() + STOP_GRACE;
                let mut checkpointed = 0;
                for mut w in workers {
                    let status = loop {
                        match w.child.try_wait() {
                            Ok(Some(s)) => break Some(s),
                            Ok(None) if Instant::now() < deadline => std::thread::sleep(TICK),
                            _ => {
                                let _ = w.child.kill();
                                break w.child.wait().ok();
                            }
                        }
                    };
                    checkpointed += usize::from(status.and_then(|s| s.code()) == Some(EXIT_INTERRUPTED.into()) && has_checkpoint(&tasks[w.task]));
                    if let Some((path, bar)) = &w.progress {
                        bar.finish_and_clear();
                        let _ = std::fs::remove_file(path);
                    }
                }
                anyhow::bail!(
                    "{}: interrupted by {}: stopped {} unit(s) in flight ({}), {checkpointed} of them with a checkpoint; finished units are kept, and `--resume` runs the rest, continuing units from their checkpoints",
                    self.title,
                    signal_name(sig),
                    stopped.len(),
                    stopped.join(", ")
                );
            }
            let mut k = 0;
            while k < workers.len() {
                let status = match workers[k].child.try_wait() {
                    Ok(None) => {
                        if let Some((path, bar)) = &workers[k].progress {
                            if let Some(steps) = ProgressFile::read(path) {
                                bar.set_position(steps.min(tasks[workers[k].task].budget));
                            }
                        }
                        k += 1;
                        continue;
                    }
                    Ok(Some(status)) => Ok(status),
                    Err(e) => Err(e),
                };
                let w = workers.remove(k);
                let task = &tasks[w.task];
                let secs = w.started.elapsed().as_secs_f64();
                if let Some((path, bar)) = &w.progress {
                    bar.finish_and_clear();
                    if let Display::Bars { multi, .. } = &display {
                        multi.remove(bar);
                    }
                    let _ = std::fs::remove_file(path);
                }
                let cause = match status {
                    Ok(s) if s.success() && finished(task) => None,
                    Ok(s) if s.success() => Some("the worker exited successfully but left no results".to_string()),
                    Ok(s) => Some(describe(s, &w.log)),
                    Err(e) => Some(format!("cannot wait for its worker: {e}")),
                };
                match cause {
                    None => {
                        state[w.task] = State::Done;
                        done += 1;
                        match &display {
                            Display::Lines => display
                                .line(format!("{}: unit {done}/{} done in {secs:.0} s: {}", self.title, self.total, task.name)),
                            Display::Bars { overall, .. } => overall.inc(1),
                        }
                    }
                    Some(cause) => {
                        state[w.task] = State::Failed;
                        let failure = Failure { unit: task.name.clone(), cause, log: w.log };
                        display.line(format!("{}: {failure}", self.title));
                        summary.failed.push(failure);
                        let skipped = skip_dependants(tasks, &mut state, w.task);
                        if skipped > 0 {
                            display.line(format!("{}: {skipped} unit(s) that need {} will not run", self.title, task.name));
                            summary.not_run += skipped;
                        }
                    }
                }
            }
        }
        // Whatever still waits needs something that cannot finish (not in our unit graph).
        summary.not_run += state.iter().filter(|s| **s == State::Waiting).count();
        if let Display::Bars { overall, .. } = &display {
            overall.finish_and_clear();
        }
        Ok(summary)
    }

    fn display(&self) -> Display {
        use std::io::IsTerminal;
        // Bars only on a terminal; a batch job's log (Slurm, nohup) gets lines instead.
        if !std::io::stderr().is_terminal() {
            return Display::Lines;
        }
        let multi = MultiProgress::new();
        let overall = multi.add(ProgressBar::new(self.total as u64));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} units  elapsed {elapsed}  eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        overall.set_prefix(self.title.to_string());
        overall.set_position(self.done_before as u64);
        overall.enable_steady_tick(Duration::from_millis(500));
        Display::Bars { multi, overall }
    }

    /// Starts `task`'s worker with its output going to its log (replaced: the last attempt's).
    fn start(&self, task: &Task, index: usize, command: &dyn Fn(&Task, Option<&Path>) -> Command, display: &Display) -> anyhow::Result<Worker> {
        let log = self.logs.join(format!("{}.log", task.id));
        let out = File::create(&log).with_context(|| format!("cannot create the worker log {}", log.display()))?;
        let err = out.try_clone().with_context(|| format!("cannot open the worker log {}", log.display()))?;
        let progress = match display {
            Display::Lines => None,
            Display::Bars { multi, .. } => {
                let path = self.logs.join(format!("{}.progress", task.id));
                let _ = std::fs::remove_file(&path);
                let bar = multi.add(ProgressBar::new(task.budget));
                bar.set_style(
                    ProgressStyle::with_template("  {msg:<40} [{bar:30}] {human_pos}/{human_len} steps  {per_sec}  eta {eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_message(task.name.clone());
                Some((path, bar))
            }
        };
        let mut cmd = command(task, progress.as_ref().map(|(p, _)| p.as_path()));
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().with_context(|| format!("cannot start the worker of unit {}", task.name))?;
        Ok(Worker { task: index, child, started: Instant::now(), log, progress })
    }
}

/// Marks every waiting task that needs `failed` (directly or through another) as not run;
/// returns how many.
fn skip_dependants(tasks: &[Task], state: &mut [State], failed: usize) -> usize {
    let mut count = 0;
    for i in 0..tasks.len() {
        if tasks[i].needs == Some(failed) && state[i] == State::Waiting {
            state[i] = State::NotRun;
            count += 1 + skip_dependants(tasks, state, i);
        }
    }
    count
}

/// How a failed worker ended, in words: `killed by SIGSEGV, signal 11`, or `exit code 1:
/// <the last error line of its log>`.
fn describe(status: ExitStatus, log: &Path) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        let core = if status.core_dumped() { ", core dumped" } else { "" };
        return format!("killed by {}, signal {sig}{core}", signal_name(sig));
    }
    let code = status.code().map_or("?".to_string(), |c| c.to_string());
    match last_error_line(log) {
        Some(msg) => format!("exit code {code}: {}", shorten(&msg, REASON_CHARS)),
        None => format!("exit code {code}"),
    }
}

/// A failed unit's reason is cut to this many characters in its one-line summary (a panic of
/// libtorch carries its whole C++ backtrace); the log holds all of it.
const REASON_CHARS: usize = 400;

/// `msg` cut to `max` characters, with a mark saying so.
fn shorten(msg: &str, max: usize) -> String {
    match msg.char_indices().nth(max) {
        Some((at, _)) => format!("{} … (cut; the whole message is in its log)", &msg[..at]),
        None => msg.to_string(),
    }
}

/// The conventional name of signal `sig`.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// The last `error: ...` line a worker wrote (what `main` prints when a unit fails), without
/// its prefix; only the log's last 64 KiB are read.
fn last_error_line(log: &Path) -> Option<String> {
    let mut file = File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024))).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines().rev().find_map(|l| l.strip_prefix("error: ")).map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reasons_are_cut_to_their_start() {
        assert_eq!(shorten("short", 10), "short");
        let long = format!("Torch(\"element 0 of tensors does not require grad{}\")", "\\nframe #1: ".repeat(100));
        let cut = shorten(&long, 60);
        assert!(cut.starts_with("Torch(\"element 0 of tensors does not require grad") && cut.ends_with("whole message is in its log)"), "{cut}");
        assert!(cut.chars().count() < 110);
        // Never inside a character.
        assert_eq!(shorten("ééé", 2), "éé … (cut; the whole message is in its log)");
    }

    fn task(id: &str, needs: Option<usize>) -> Task {
        Task { id: id.to_string(), name: format!("unit {id}"), needs, budget: 1 }
    }

    /// Each task runs `sh -c SCRIPT[id]`; returns the summary and every log's text.
    fn pool(jobs: usize, tasks: &[Task], script: &dyn Fn(&str) -> String) -> (Summary, Vec<(String, String)>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let p = Pool { jobs, logs: dir.path().join("logs"), title: "test", total: tasks.len(), done_before: 0 };
        let marks = dir.path().to_path_buf();
        let command = |t: &Task, _: Option<&Path>| {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("{} && touch {}/{}.done", script(&t.id), marks.display(), t.id));
            c
        };
        let finished = |t: &Task| marks.join(format!("{}.done", t.id)).exists();
        let summary = p.run(tasks, &command, &finished, &|_| false).unwrap();
        let logs = tasks
            .iter()
            .filter_map(|t| std::fs::read_to_string(dir.path().join("logs").join(format!("{}.log", t.id))).ok().map(|s| (t.id.clone(), s)))
            .collect();
        (summary, logs, dir)
    }

    #[test]
    fn a_crash_fails_its_unit_and_skips_its_dependants_only() {
        let tasks = [task("a", None), task("b", None), task("a1", Some(0)), task("b1", Some(1)), task("a2", Some(2))];
        let script = |id: &str| match id {
            "a" => "echo working; kill -SEGV $$".to_string(),
            "b" => "echo 'error: the thing is damaged' >&2; exit 1".to_string(),
            _ => "echo fine".to_string(),
        };
        for jobs in [1, 2, 3] {
            let (summary, logs, dir) = pool(jobs, &tasks, &script);
            let failed: Vec<String> = summary.failed.iter().map(|f| f.to_string()).collect();
            assert_eq!(failed.len(), 2, "{failed:?}");
            let a = failed.iter().find(|f| f.starts_with("unit unit a ")).unwrap();
            assert!(a.contains("(killed by SIGSEGV, signal 11)") && a.contains(&format!("{}/logs/a.log", dir.path().display())), "{a}");
            let b = failed.iter().find(|f| f.starts_with("unit unit b ")).unwrap();
            assert!(b.contains("(exit code 1: the thing is damaged)"), "{b}");
            // a1 needs a, a2 needs a1, b1 needs b: none of them started.
            assert_eq!(summary.not_run, 3);
            assert_eq!(logs.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(), ["a", "b"]);
            assert!(logs[0].1.contains("working"));
        }
    }

    #[test]
    fn dependants_start_after_what_they_need_and_results_are_checked() {
        // "b" exits 0 without its mark: a success with no results is a failure.
        let tasks = [task("a", None), task("a1", Some(0)), task("b", None)];
        let dir = tempfile::tempdir().unwrap();
        let p = Pool { jobs: 3, logs: dir.path().join("logs"), title: "test", total: 3, done_before: 0 };
        let marks = dir.path().to_path_buf();
        let command = |t: &Task, _: Option<&Path>| {
            let mut c = Command::new("sh");
            let script = match t.id.as_str() {
                "a" => format!("sleep 0.3; touch {0}/a.done", marks.display()),
                // Needs a's result, so must start after a finished.
                "a1" => format!("test -e {0}/a.done && touch {0}/a1.done", marks.display()),
                _ => "true".to_string(),
            };
            c.arg("-c").arg(script);
            c
        };
        let finished = |t: &Task| marks.join(format!("{}.done", t.id)).exists();
        let summary = p.run(&tasks, &command, &finished, &|_| false).unwrap();
        assert_eq!(summary.failed.len(), 1, "{:?}", summary.failed);
        assert_eq!(summary.failed[0].unit, "unit b");
        assert!(summary.failed[0].cause.contains("left no results"));
        assert!(marks.join("a1.done").exists());
    }

    #[test]
    fn signals_have_their_names() {
        assert_eq!(signal_name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(signal_name(libc::SIGABRT), "SIGABRT");
        assert_eq!(signal_name(64), "signal 64");
    }
}
