//! Mid-phase checkpoints (plugin-api 0.2.4): taking them changes no result; a unit stopped by
//! SIGTERM saves one and continues from it on `--resume`; so does a unit whose run was killed
//! with SIGKILL after one.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn setup() -> (tempfile::TempDir, PathBuf) {
    registry_of(&[
        ("gridworld", "env", "metarl-env-gridworld"),
        ("mt", "meta", "metarl-meta-mt"),
        ("reptile", "meta", "metarl-meta-reptile"),
        ("ppo", "algo", "metarl-algo-ppo"),
    ])
}

/// PPO on the small gridworld: one seed, one held-out goal; a pretraining of 32 updates (512
/// env steps each), then an adaptation and a scratch run of 2 updates each.
const STUDY: &str = r#"seeds = [0]
num_envs = 8
threads = 1
[env]
plugin = "gridworld"
train = "gridworld:0..12"
test = "gridworld:12"
config = { size = 4, frame = 16, shared_goal_colour = true }
[algo]
plugin = "ppo"
config = { preset = "cpu-small", num_steps = 64 }
[pretrain]
env_steps = 16384
[adapt]
env_steps = 1024
eval_every = 512
eval_episodes = 8
[[method]]
label = "MT"
meta = "mt"
"#;

const PRETRAIN: &str = "pretrain/12 train tasks/MT/seed 0";

fn study(dir: &Path) -> PathBuf {
    let exp = dir.join("study.toml");
    std::fs::write(&exp, STUDY).unwrap();
    exp
}

/// The same study with on-policy Reptile (its own loop: 3 inner updates per outer iteration,
/// a progress report after each).
fn reptile_study(dir: &Path) -> PathBuf {
    let exp = dir.join("reptile.toml");
    std::fs::write(&exp, STUDY.replace("label = \"MT\"\nmeta = \"mt\"", "label = \"MT\"\nmeta = \"reptile\"")).unwrap();
    exp
}

fn run(reg: &Path, exp: &Path, out: &Path, args: &[&str]) -> Output {
    let mut a = vec!["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap(), "--jobs", "1"];
    a.extend_from_slice(args);
    metarl(reg, &a)
}

fn start(reg: &Path, exp: &Path, out: &Path, args: &[&str]) -> Child {
    Command::new(bin())
        .arg("--registry")
        .arg(reg)
        .args(["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap(), "--jobs", "1"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The pretraining unit's partial checkpoint.
fn partial(out: &Path) -> Option<PathBuf> {
    let dir = out.join("checkpoints/partial");
    std::fs::read_dir(dir).ok()?.map(|e| e.unwrap().path()).find(|p| p.file_name().unwrap().to_string_lossy().starts_with("pretrain-"))
}

/// Waits until the pretraining unit has a mid-phase checkpoint beyond its first update.
fn wait_for_checkpoint(child: &mut Child, out: &Path) {
    let start = Instant::now();
    loop {
        if let Some(p) = partial(out) {
            if std::fs::metadata(&p).is_ok_and(|m| m.len() > 0) && start.elapsed() > Duration::from_millis(300) {
                return;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the run ended ({status}) before its pretraining took a checkpoint");
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no mid-phase checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `env_steps` of the pretraining unit's metrics lines, in order.
fn pretrain_steps(out: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["unit"] == PRETRAIN)
        .map(|v| v["env_steps"].as_u64().unwrap())
        .collect()
}

/// The pretraining unit's worker log.
fn pretrain_log(out: &Path) -> String {
    let logs = std::fs::read_dir(out.join("logs")).unwrap().map(|e| e.unwrap().path());
    let log = logs.into_iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with("pretrain-") && p.extension().is_some_and(|e| e == "log"));
    std::fs::read_to_string(log.expect("a pretraining log")).unwrap()
}

/// The env steps of "continuing from its checkpoint at N env steps" in `log`.
fn continued_at(log: &str) -> Option<u64> {
    let (_, rest) = log.split_once("continuing from its checkpoint at ")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Every unit's metrics run 0, 512, ..., budget once: no report repeated, none missing.
fn assert_whole_pretraining(out: &Path) {
    let steps = pretrain_steps(out);
    let want: Vec<u64> = (0..=32).map(|k| k * 512).collect();
    assert_eq!(steps, want, "the pretraining's reports: a continued phase neither repeats nor skips one");
}

#[test]
fn taking_checkpoints_changes_no_result() {
    let (d, reg) = setup();
    let exp = study(d.path());
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let o = run(&reg, &exp, &a, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A checkpoint at every update of every unit.
    let o = run(&reg, &exp, &b, &["--checkpoint-every", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(pretrain_log(&b).contains("mid-phase checkpoint at 512 env steps"), "{}", pretrain_log(&b));
    assert_same_files(&a, &b);
    // Finished units leave no partial checkpoint behind.
    assert_eq!(std::fs::read_dir(b.join("checkpoints/partial")).unwrap().count(), 0);
}

#[test]
fn a_unit_stopped_by_sigterm_saves_a_checkpoint_and_resume_continues_it() {
    let (d, reg) = setup();
    let exp = study(d.path());
    let out = d.path().join("out");
    let mut child = start(&reg, &exp, &out, &["--checkpoint-every", "0"]);
    wait_for_checkpoint(&mut child, &out);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert_one_line_error(&o, &["interrupted by SIGTERM", "1 of them with a checkpoint", "--resume"]);
    let stopped = pretrain_log(&out);
    assert!(stopped.contains("stopped on request; its checkpoint at "), "{stopped}");
    assert!(partial(&out).is_some(), "no checkpoint kept");
    let o = metarl(&reg, &["status", out.to_str().unwrap()]);
    let line = stdout(&o).lines().find(|l| l.contains(PRETRAIN)).unwrap_or_default().to_string();
    assert!(line.starts_with("failed") && line.contains("checkpoint at ") && line.contains(" env steps"), "{}", stdout(&o));
    assert!(!out.join("checkpoints").read_dir().unwrap().any(|e| e.unwrap().path().extension().is_some_and(|x| x == "safetensors")));

    let o = run(&reg, &exp, &out, &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let at = continued_at(&pretrain_log(&out)).expect("the resumed pretraining says where it continues");
    assert!(at > 0 && at < 16384 && at % 512 == 0, "continued at {at}");
    assert_whole_pretraining(&out);
    assert!(partial(&out).is_none(), "the checkpoint outlived its unit");
    let pretrained = out.join("checkpoints").read_dir().unwrap().map(|e| e.unwrap().path()).find(|p| p.is_file()).unwrap();
    let meta = std::fs::read(pretrained).unwrap();
    assert!(String::from_utf8_lossy(&meta[..2000.min(meta.len())]).contains(&format!("\"continued_at\":\"[{at}]\"")));
}

#[test]
fn reptile_stopped_mid_pretraining_continues_from_its_checkpoint() {
    let (d, reg) = setup();
    let exp = reptile_study(d.path());
    let out = d.path().join("out");
    let mut child = start(&reg, &exp, &out, &["--checkpoint-every", "0"]);
    wait_for_checkpoint(&mut child, &out);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert_one_line_error(&o, &["interrupted by SIGTERM", "1 of them with a checkpoint"]);
    let o = run(&reg, &exp, &out, &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let at = continued_at(&pretrain_log(&out)).expect("the resumed pretraining says where it continues");
    // Outer iterations of 3 updates of 512 steps: the reports fall on multiples of 1536.
    assert!(at > 0 && at % 1536 == 0, "continued at {at}");
    let steps = pretrain_steps(&out);
    assert_eq!(steps[0], 0);
    assert!(steps.windows(2).all(|w| w[1] == w[0] + 1536 || (w[1] == 16384 && w[1] > w[0])), "{steps:?}");
    assert_eq!(*steps.last().unwrap(), 16384);
}

#[test]
fn restart_unfinished_discards_the_checkpoint_and_gives_the_uninterrupted_files() {
    let (d, reg) = setup();
    let exp = study(d.path());
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let o = run(&reg, &exp, &a, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = start(&reg, &exp, &b, &["--checkpoint-every", "0"]);
    wait_for_checkpoint(&mut child, &b);
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let o = run(&reg, &exp, &b, &["--resume", "--restart-unfinished"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(continued_at(&pretrain_log(&b)).is_none(), "{}", pretrain_log(&b));
    assert_same_files(&a, &b);
}

#[test]
fn a_run_killed_after_a_checkpoint_continues_from_it() {
    let (d, reg) = setup();
    let exp = study(d.path());
    let out = d.path().join("out");
    let mut child = start(&reg, &exp, &out, &["--checkpoint-every", "0"]);
    wait_for_checkpoint(&mut child, &out);
    child.kill().unwrap();
    child.wait().unwrap();
    // The worker dies with its parent; the next run takes over the lock.
    std::thread::sleep(Duration::from_millis(200));
    let o = run(&reg, &exp, &out, &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let at = continued_at(&pretrain_log(&out)).expect("the resumed pretraining says where it continues");
    assert!(at > 0 && at < 16384, "continued at {at}");
    assert_whole_pretraining(&out);
    assert!(out.join("summary.md").is_file());
}
