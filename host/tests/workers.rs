//! Units as worker processes: `--jobs N` gives the files of a sequential run, a crashing unit
//! fails alone and `--resume` redoes only it and what needs it, the run directory's lock, and
//! `kill -9` of the parent during a parallel run.

mod common;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;

/// The toy env, MT, PPO and the test-only algo (which crashes on request).
fn setup() -> (tempfile::TempDir, PathBuf) {
    registry_of(&[
        ("gridworld", "env", "metarl-env-gridworld"),
        ("mt", "meta", "metarl-meta-mt"),
        ("ppo", "algo", "metarl-algo-ppo"),
        ("const", "algo", "metarl-fixture-algo"),
    ])
}

/// PPO on the small gridworld, as in study.rs: 2 seeds, 2 held-out goals, 10 units of a
/// second or two each; one libtorch thread per unit, so two workers fit two cores.
const PPO: &str = r#"seeds = [0, 1]
num_envs = 8
threads = 1
[env]
plugin = "gridworld"
train = "gridworld:0..12"
test = "gridworld:12..14"
config = { size = 4, frame = 16, shared_goal_colour = true }
[algo]
plugin = "ppo"
config = { preset = "cpu-small", num_steps = 64 }
[pretrain]
env_steps = 4096
[adapt]
env_steps = 1024
eval_every = 512
eval_episodes = 8
[[method]]
label = "MT"
meta = "mt"
"#;

/// The test-only algo: MT, and a method whose algo dies of SIGSEGV in its first update
/// while `METARL_FIXTURE_CRASH=1` (so only its pretraining unit crashes; its two adaptation
/// units need it). 8 units: 2 pretraining, 4 adaptation, 2 scratch.
const CRASHY: &str = r#"seeds = [0]
num_envs = 4
threads = 1
[env]
plugin = "gridworld"
train = "gridworld:0..12"
test = "gridworld:12..14"
[algo]
plugin = "const"
[pretrain]
env_steps = 400
[adapt]
env_steps = 192
eval_every = 64
eval_episodes = 4
[[method]]
label = "MT"
meta = "mt"
[[method]]
label = "crashy"
meta = "mt"
algo_config = { segfault_in = "update" }
"#;

/// `metarl --registry REG run EXP --out OUT ARGS...` in `cwd` (where a crashing worker's core
/// file would go) with `envs` set.
fn run_in(cwd: &Path, reg: &Path, exp: &Path, out: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.current_dir(cwd).arg("--registry").arg(reg).arg("run").arg(exp).arg("--out").arg(out).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn write_exp(dir: &Path, name: &str, text: &str) -> PathBuf {
    let exp = dir.join(name);
    std::fs::write(&exp, text).unwrap();
    exp
}

/// The units a run started, from its log lines (`...: unit i/n started: NAME`).
fn started(o: &Output) -> Vec<String> {
    stderr(o).lines().filter_map(|l| l.split_once(" started: ").map(|(_, name)| name.to_string())).collect()
}

/// Modification time of every file under `units/` and `checkpoints/`.
fn mtimes(dir: &Path) -> BTreeMap<String, SystemTime> {
    let mut out = BTreeMap::new();
    for sub in ["units", "checkpoints"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            out.insert(p.strip_prefix(dir).unwrap().display().to_string(), std::fs::metadata(&p).unwrap().modified().unwrap());
        }
    }
    out
}

#[test]
fn two_workers_at_a_time_give_the_files_of_one_at_a_time() {
    let (d, reg) = setup();
    let exp = write_exp(d.path(), "ppo.toml", PPO);
    let (one, two) = (d.path().join("one"), d.path().join("two"));
    let o = run_in(d.path(), &reg, &exp, &one, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_in(d.path(), &reg, &exp, &two, &["--jobs", "2"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Two units did run at once: the second started before the first was done.
    let log = stderr(&o);
    let at = |needle: &str| log.find(needle).unwrap_or_else(|| panic!("no {needle:?} in:\n{log}"));
    assert!(at("unit 2/10 started") < at("unit 1/10 done"), "{log}");
    assert_same_files(&one, &two);
    // Every unit has its worker's log; no lock is left behind.
    assert_eq!(std::fs::read_dir(two.join("logs")).unwrap().count(), 10);
    assert!(!two.join(".lock").exists());
}

#[test]
fn a_crashing_unit_fails_alone_and_resume_redoes_only_it_and_what_needs_it() {
    let (d, reg) = setup();
    let exp = write_exp(d.path(), "crashy.toml", CRASHY);
    let out = d.path().join("out");
    let o = run_in(d.path(), &reg, &exp, &out, &["--jobs", "2"], &[("METARL_FIXTURE_CRASH", "1")]);
    let err = stderr(&o);
    // One line names the unit, the signal and the worker's log; the final error sums up.
    let unit = "pretrain/12 train tasks/crashy/seed 0";
    let failed: Vec<&str> = err.lines().filter(|l| l.contains(" failed (") && !l.starts_with("error:")).collect();
    assert_eq!(failed.len(), 1, "{err}");
    let log = std::fs::read_dir(out.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("pretrain-12-train-tasks-crashy-seed-0-"))
        .expect("the crashed unit's log");
    assert!(
        failed[0].contains(&format!("unit {unit} failed (killed by SIGSEGV, signal 11); its log: {}", log.display())),
        "{}",
        failed[0]
    );
    assert_one_line_error(&o, &["1 of 8 units failed and 2 that need a failed unit did not run", "no report was written", "--resume", unit, "SIGSEGV"]);
    assert!(std::fs::read_to_string(&log).unwrap().contains(&format!("unit {unit}")), "the log is the crashed worker's");
    // The other method's units and the scratch baseline finished; no report.
    let names: Vec<String> = std::fs::read_dir(out.join("units")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.iter().filter(|n| n.ends_with(".json")).count(), 4, "MT's 2 adaptations and 2 scratch runs: {names:?}");
    assert!(!names.iter().any(|n| n.contains("crashy") && n.ends_with(".json")), "{names:?}");
    assert!(!out.join("summary.csv").exists() && !out.join("curves.json").exists());
    // `metarl status` says where every unit stands.
    let o = metarl(&reg, &["status", out.to_str().unwrap()]);
    let text = stdout(&o);
    assert!(o.status.success() && text.contains("8 units: 5 done, 0 running, 1 failed or interrupted, 2 pending"), "{text}");
    assert!(text.contains(&format!("failed   {unit}  (log: {})", log.display())), "{text}");
    assert!(text.contains("pending  adapt/12 train tasks/crashy/seed 0/12"), "{text}");

    // The same experiment without the crash: only the failed unit and its dependants run.
    let before = mtimes(&out);
    let o = run_in(d.path(), &reg, &exp, &out, &["--jobs", "2", "--resume"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming") && stderr(&o).contains("5 of 8 units already done"), "{}", stderr(&o));
    assert_eq!(started(&o), [unit, "adapt/12 train tasks/crashy/seed 0/12", "adapt/12 train tasks/crashy/seed 0/13"], "{}", stderr(&o));
    let after = mtimes(&out);
    for (file, t) in &before {
        assert_eq!(after.get(file), Some(t), "{file} was written again");
    }
    let new: Vec<&String> = after.keys().filter(|f| !before.contains_key(*f)).collect();
    assert_eq!(new.len(), 6, "the crashed unit's checkpoint and metrics, its dependants' curves and metrics: {new:?}");
    assert!(new.iter().all(|f| f.contains("crashy")), "{new:?}");

    // And the result is the uninterrupted run's.
    let whole = d.path().join("whole");
    let o = run_in(d.path(), &reg, &exp, &whole, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_files(&whole, &out);
}

#[test]
fn an_adaptation_that_aborts_fails_alone_with_its_signal() {
    let (d, reg) = setup();
    // `load` is called only when adaptation starts from the checkpoint.
    let exp = write_exp(d.path(), "abort.toml", &CRASHY.replace("segfault_in = \"update\"", "abort_in = \"load\""));
    let out = d.path().join("out");
    let o = run_in(d.path(), &reg, &exp, &out, &["--jobs", "1"], &[("METARL_FIXTURE_CRASH", "1")]);
    let err = stderr(&o);
    let failed: Vec<&str> = err.lines().filter(|l| l.contains(" failed (killed by SIGABRT, signal 6") && !l.starts_with("error:")).collect();
    assert_eq!(failed.len(), 2, "both adaptations of the method, and nothing else:\n{err}");
    assert!(failed.iter().all(|l| l.contains("unit adapt/12 train tasks/crashy/seed 0/1")), "{err}");
    assert_one_line_error(&o, &["2 of 8 units failed, so no report was written"]);
}

/// Pids of the processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

#[test]
fn a_run_directory_in_use_is_refused_at_once_and_workers_die_with_their_parent() {
    let (d, reg) = setup();
    // Pretraining that would take hours: the run is busy for as long as the test needs.
    let exp = write_exp(d.path(), "long.toml", &CRASHY.replace("env_steps = 400", "env_steps = 4_000_000_000"));
    let out = d.path().join("busy");
    let mut first = Command::new(bin())
        .current_dir(d.path())
        .args(["--registry", reg.to_str().unwrap(), "run", exp.to_str().unwrap(), "--out", out.to_str().unwrap(), "--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id().to_string();
    let start = Instant::now();
    while std::fs::read_to_string(out.join(".lock")).map(|s| s.trim() != pid).unwrap_or(true) || !out.join("logs").is_dir() {
        assert!(start.elapsed() < Duration::from_secs(60), "the first run never took its lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    for extra in [&["--resume"][..], &[]] {
        let t = Instant::now();
        let o = run_in(d.path(), &reg, &exp, &out, extra, &[]);
        assert_one_line_error(&o, &[&format!("run directory {} is in use by another metarl run (pid {pid})", out.display())]);
        assert!(t.elapsed() < Duration::from_secs(20), "refused only after {:?}", t.elapsed());
    }
    // The first run's workers are busy; killing their parent kills them too.
    let start = Instant::now();
    while processes_mentioning(out.to_str().unwrap()).len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(60), "the workers never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Two units of the live run are in workers: `metarl status` says so.
    let o = metarl(&reg, &["status", out.to_str().unwrap()]);
    assert!(stdout(&o).contains("8 units: 0 done, 2 running, 0 failed or interrupted, 6 pending"), "{}", stdout(&o));
    first.kill().unwrap();
    first.wait().unwrap();
    // Nobody runs them now: interrupted, to be run again by --resume.
    let o = metarl(&reg, &["status", out.to_str().unwrap()]);
    assert!(stdout(&o).contains("8 units: 0 done, 0 running, 2 failed or interrupted, 6 pending"), "{}", stdout(&o));
    let start = Instant::now();
    while !processes_mentioning(out.to_str().unwrap()).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "workers outlived their parent: {:?}", processes_mentioning(out.to_str().unwrap()));
        std::thread::sleep(Duration::from_millis(20));
    }
    // The lock died with its holder: the file is there, nobody holds it.
    assert!(out.join(".lock").exists());
}

/// SIGTERM (or Ctrl-C) to `metarl run`: its workers are stopped, it exits with one line
/// naming the signal, and the lock is released for `--resume`.
#[test]
fn sigterm_stops_the_workers_and_releases_the_directory() {
    let (d, reg) = setup();
    let exp = write_exp(d.path(), "long.toml", &CRASHY.replace("env_steps = 400", "env_steps = 4_000_000_000"));
    let out = d.path().join("term");
    let first = Command::new(bin())
        .current_dir(d.path())
        .args(["--registry", reg.to_str().unwrap(), "run", exp.to_str().unwrap(), "--out", out.to_str().unwrap(), "--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while processes_mentioning(out.to_str().unwrap()).len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(60), "the workers never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(first.id() as i32, libc::SIGTERM) }, 0);
    let o = first.wait_with_output().unwrap();
    assert_one_line_error(&o, &["interrupted by SIGTERM: stopped 2 unit(s) in flight", "--resume"]);
    assert!(processes_mentioning(out.to_str().unwrap()).is_empty(), "workers outlived the stop");
    assert!(!out.join(".lock").exists(), "the lock was released");
    let o = metarl(&reg, &["status", out.to_str().unwrap()]);
    assert!(stdout(&o).contains("8 units: 0 done, 0 running, 2 failed or interrupted, 6 pending"), "{}", stdout(&o));
}

#[test]
fn killing_a_parallel_run_and_resuming_gives_the_files_of_a_sequential_run() {
    let (d, reg) = setup();
    let exp = write_exp(d.path(), "ppo.toml", PPO);
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let o = assert_kill_9_resume_is_exact_with(&reg, &exp, (&a, &["--jobs", "1"]), (&b, &["--jobs", "2"]));
    // The killed parent's lock was left behind and taken over.
    assert!(stderr(&o).contains(&format!("taking over the lock of {}", b.display())), "{}", stderr(&o));
}
