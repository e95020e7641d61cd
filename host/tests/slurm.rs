//! The Slurm executor against a real one-node Slurm cluster (Debian's slurm-wlm and munge,
//! started on loopback by `slurm/cluster.sh`): a submitted study gives the files of a local
//! run; `--dry-run` submits nothing and its submission script runs as it is; held jobs show
//! as queued, block a local `--resume` and are not submitted twice; and after `scancel` of one
//! pretraining task, `--resume` submits exactly that unit and the adaptations that needed it.
//!
//! These tests need root (or passwordless sudo) and Slurm, as `bash .ci/test` provides
//! (`.ci/setup` installs slurm-wlm and munge). Without them they fail: they never pass
//! silently.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

/// The test-only algo and MT on the gridworld: 2 seeds, 2 held-out goals. 10 units: 2
/// pretraining, 4 adaptation, 4 scratch, each well under a second.
const STUDY: &str = r#"seeds = [0, 1]
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
"#;

fn setup() -> (tempfile::TempDir, PathBuf) {
    registry_of(&[("gridworld", "env", "metarl-env-gridworld"), ("mt", "meta", "metarl-meta-mt"), ("const", "algo", "metarl-fixture-algo")])
}

/// A one-node cluster for one test; stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Cluster {
    fn start() -> Cluster {
        // slurm/cluster.sh needs root or passwordless sudo, and says so when it has neither.
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new("bash").arg(script()).arg("start").arg(dir.path()).output().expect("bash");
        assert!(o.status.success(), "cannot start a one-node Slurm cluster (apt-get install slurm-wlm munge; bash .ci/setup does): {}", stderr(&o));
        Cluster { conf: dir.path().join("slurm.conf"), dir }
    }

    /// A command with this cluster's `SLURM_CONF`.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn metarl(&self, reg: &Path, args: &[&str]) -> Output {
        self.cmd(bin()).arg("--registry").arg(reg).args(args).output().unwrap()
    }

    /// Job ids (`<job>` or `<job>_<task>`) in the queue.
    fn queue(&self) -> Vec<String> {
        let o = self.cmd("squeue").args(["--noheader", "--array", "--format=%i|%T"]).output().unwrap();
        assert!(o.status.success(), "squeue: {}", stderr(&o));
        stdout(&o).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
    }

    /// Waits until the queue is empty; panics after `limit`, with the logs of `run`.
    fn wait_idle(&self, run: &Path, limit: Duration) {
        let start = Instant::now();
        loop {
            let q = self.queue();
            if q.is_empty() {
                return;
            }
            if start.elapsed() > limit {
                panic!("Slurm jobs still queued after {limit:?}: {q:?}\n{}", logs(run));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(self.dir.path()).output();
    }
}

fn script() -> PathBuf {
    root().join("host/tests/slurm/cluster.sh")
}

/// Everything under `run/logs`, for failure messages.
fn logs(run: &Path) -> String {
    let mut out = String::new();
    if let Ok(d) = std::fs::read_dir(run.join("logs")) {
        for e in d.flatten() {
            out.push_str(&format!("--- {}\n{}\n", e.path().display(), std::fs::read_to_string(e.path()).unwrap_or_default()));
        }
    }
    out
}

/// Array job ids of `run`'s submissions, from `slurm/jobs.tsv`.
fn recorded_jobs(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("slurm/jobs.tsv"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap().to_string())
        .collect()
}

fn local_reference(reg: &Path, exp: &Path, dir: &Path) -> PathBuf {
    let a = dir.join("local");
    let o = metarl(reg, &["run", exp.to_str().unwrap(), "--out", a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    a
}

#[test]
fn a_dry_run_submits_nothing_and_its_script_gives_the_files_of_a_local_run() {
    let cluster = Cluster::start();
    let (dir, reg) = setup();
    let exp = dir.path().join("study.toml");
    std::fs::write(&exp, STUDY).unwrap();
    let a = local_reference(&reg, &exp, dir.path());
    let b = dir.path().join("slurm-run");
    let b_s = b.to_str().unwrap();

    let o = cluster.metarl(&reg, &["run", exp.to_str().unwrap(), "--out", b_s, "--executor", "slurm", "--dry-run", "--slurm", "time=00:10:00"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("10 of 10 units to submit in 3 array job(s)"), "{}", stdout(&o));
    assert!(stdout(&o).contains("nothing submitted (--dry-run)"), "{}", stdout(&o));
    assert!(cluster.queue().is_empty(), "a dry run submitted {:?}", cluster.queue());
    assert!(!b.join("slurm/jobs.tsv").exists());
    let unit = std::fs::read_to_string(b.join("slurm/unit.sbatch")).unwrap();
    for line in ["#SBATCH --cpus-per-task=1", "#SBATCH --time=00:10:00", "worker", "--unit \"$unit\""] {
        assert!(unit.contains(line), "unit.sbatch lacks {line:?}:\n{unit}");
    }
    let submit = std::fs::read_to_string(b.join("slurm/submit-1.sh")).unwrap();
    // The first array (2 pretraining + 4 scratch units) and one array per pretraining unit,
    // each waiting for its own pretraining task.
    assert!(submit.contains(&format!("--array=0-5 unit.sbatch {}", b.join("slurm/s1-0-0.units").display())), "{submit}");
    assert!(submit.contains("--array=0-1 --dependency=afterok:\"${j0}_0\""), "{submit}");
    assert!(submit.contains("--array=0-1 --dependency=afterok:\"${j0}_1\""), "{submit}");

    // A submission sbatch refuses is one line with sbatch's reason, and records nothing.
    let o = cluster.metarl(&reg, &["run", exp.to_str().unwrap(), "--out", b_s, "--executor", "slurm", "--resume", "--slurm", "partition=nosuch"]);
    assert_one_line_error(&o, &["submitting", "submit-1.sh", "partition"]);
    assert!(!b.join("slurm/jobs.tsv").exists() && cluster.queue().is_empty());
    let o = cluster.metarl(&reg, &["run", exp.to_str().unwrap(), "--out", b_s, "--executor", "slurm", "--dry-run", "--resume", "--slurm", "time=00:10:00"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The submission script runs as it is, and records its jobs.
    let o = cluster.cmd("bash").arg(b.join("slurm/submit-1.sh")).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(recorded_jobs(&b).len(), 4, "3 arrays and the report job");
    cluster.wait_idle(&b, Duration::from_secs(180));
    assert!(b.join("summary.md").is_file(), "the report job wrote no report:\n{}", logs(&b));
    assert_same_files(&a, &b);
    let o = cluster.metarl(&reg, &["status", b_s]);
    assert!(stdout(&o).contains("10 units: 10 done"), "{}", stdout(&o));
}

#[test]
fn queued_units_are_not_run_twice_and_resume_resubmits_a_cancelled_unit_and_its_adaptations() {
    let cluster = Cluster::start();
    let (dir, reg) = setup();
    let exp = dir.path().join("study.toml");
    std::fs::write(&exp, STUDY).unwrap();
    let a = local_reference(&reg, &exp, dir.path());
    let b = dir.path().join("slurm-run");
    let b_s = b.to_str().unwrap();

    // `metarl run` with paths relative to where it runs, as users type them.
    let run_b = |args: &[&str]| -> Output {
        let mut c = cluster.cmd(bin());
        c.current_dir(dir.path()).arg("--registry").arg(&reg).args(["run", "study.toml", "--out", "slurm-run"]).args(args);
        c.output().unwrap()
    };
    // Every job held, so that the test decides what runs when.
    let o = run_b(&["--executor", "slurm", "--slurm", "extra=--hold"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("10 of 10 units to submit"), "{}", stdout(&o));
    let jobs = recorded_jobs(&b);
    assert_eq!(jobs.len(), 4);
    let o = cluster.metarl(&reg, &["status", b_s]);
    assert!(stdout(&o).contains("0 done, 0 running, 0 failed or interrupted, 0 pending, 10 queued in Slurm"), "{}", stdout(&o));
    assert!(stdout(&o).contains(&format!("Slurm job {}_0", jobs[0])), "{}", stdout(&o));

    // Nothing queued is submitted again, and a local resume refuses to run it.
    let o = run_b(&["--executor", "slurm", "--resume"]);
    assert!(o.status.success() && stdout(&o).contains("nothing to submit"), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(recorded_jobs(&b).len(), 4);
    let o = run_b(&["--resume"]);
    assert_one_line_error(&o, &["still queued or running in Slurm", "scancel"]);

    // Cancel the first pretraining unit (seed 0) while held: its two adaptations and the
    // report job can never run, and Slurm cancels them (--kill-on-invalid-dep).
    let o = cluster.cmd("scancel").arg(format!("{}_0", jobs[0])).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for job in &jobs {
        let o = cluster.cmd("scontrol").args(["release", job]).output().unwrap();
        assert!(o.status.success() || stderr(&o).contains("already"), "scontrol release {job}: {}", stderr(&o));
    }
    cluster.wait_idle(&b, Duration::from_secs(180));
    assert!(!b.join("summary.md").exists(), "a report was written with units missing");
    let o = cluster.metarl(&reg, &["status", b_s]);
    assert!(stdout(&o).contains("10 units: 7 done"), "{}\n{}", stdout(&o), logs(&b));

    // Resume submits exactly the cancelled unit and the two that need it.
    let before: Vec<_> = std::fs::read_dir(b.join("units")).unwrap().map(|e| e.unwrap().path()).collect();
    let mtimes: Vec<_> = before.iter().map(|p| std::fs::metadata(p).unwrap().modified().unwrap()).collect();
    let o = run_b(&["--executor", "slurm", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 of 10 units to submit in 2 array job(s) (7 done, 0 still queued)"), "{}", stdout(&o));
    cluster.wait_idle(&b, Duration::from_secs(180));
    assert!(b.join("summary.md").is_file(), "no report after the resumed submission:\n{}", logs(&b));
    for (p, t) in before.iter().zip(&mtimes) {
        assert_eq!(std::fs::metadata(p).unwrap().modified().unwrap(), *t, "{} was written again", p.display());
    }
    assert_same_files(&a, &b);
}
