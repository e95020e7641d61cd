//! `metarl run` refuses bad experiments before any training starts, in one line that names the
//! file, line and key (or the plugins and capability at fault), and loses nothing on disk.

mod common;
use std::path::{Path, PathBuf};

use common::*;

/// A registry with the toy env, MT, and the test-only algo and meta plugins.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let text = [
        entry("gridworld", "env", &plugin("metarl-env-gridworld")),
        entry("mt", "meta", &plugin("metarl-meta-mt")),
        entry("const", "algo", &plugin("metarl-fixture-algo")),
        entry("fx-meta", "meta", &plugin("metarl-fixture-meta")),
    ]
    .join("\n");
    registry(&text)
}

const GOOD: &str = r#"seeds = [0, 1]
num_envs = 4
[env]
plugin = "gridworld"
train = "gridworld:0..12"
test = "gridworld:12..14"
[algo]
plugin = "const"
[pretrain]
env_steps = 400
[adapt]
env_steps = 200
eval_every = 100
eval_episodes = 4
[[method]]
label = "MT"
meta = "mt"
"#;

fn run_exp(dir: &Path, reg: &Path, text: &str, extra: &[&str]) -> std::process::Output {
    let exp = dir.join("exp.toml");
    std::fs::write(&exp, text).unwrap();
    let mut args = vec!["run", exp.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = dir.join("out");
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    metarl(reg, &args)
}

#[test]
fn a_good_experiment_runs_and_writes_its_results() {
    let (d, reg) = setup();
    let o = run_exp(d.path(), &reg, GOOD, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["config.toml", "metrics.jsonl", "curves.json", "summary.md", "summary.csv", "curves.svg", "curves.png"] {
        assert!(d.path().join("out").join(f).is_file(), "{f} missing");
    }
    assert!(d.path().join("out/checkpoints/p0-m0-s1.safetensors").is_file());
    let summary = std::fs::read_to_string(d.path().join("out/summary.md")).unwrap();
    assert!(summary.contains("| MT |") && summary.contains("| scratch |"), "{summary}");
}

/// `param0` the fixture algo reported at each update of `unit`, in order (the line that closes
/// a phase carries no update scalars).
fn param0_of(run_dir: &Path, unit: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["unit"] == unit)
        .filter_map(|v| v["param0"].as_f64())
        .collect()
}

#[test]
fn adaptation_starts_from_the_checkpoint_and_reset_heads_reinitialises_the_heads() {
    // Every fixture update adds 1 to each parameter, and its reset_heads zeroes parameter 0
    // (its "head"). Fine-tuning must continue from the pretrained value, or from 0 with
    // reset_heads = true.
    let text = GOOD.replace("plugin = \"const\"", "plugin = \"const\"\nconfig = { update_adds = 1.0 }");
    for (reset, label) in [(false, "continues"), (true, "restarts")] {
        let (d, reg) = setup();
        let text = if reset { text.replace("eval_episodes = 4", "eval_episodes = 4\nreset_heads = true") } else { text.clone() };
        let o = run_exp(d.path(), &reg, &text, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = d.path().join("out");
        let pretrained = *param0_of(&out, "pretrain-p0-m0-s0").last().unwrap();
        let adapted = param0_of(&out, "adapt-p0-m0-s0-t0");
        assert!(pretrained >= 10.0, "pretraining made {pretrained} updates");
        let start = if reset { 0.0 } else { pretrained };
        assert_eq!(adapted[0], start + 1.0, "fine-tuning {label}: {adapted:?}");
    }
}

fn assert_refused(text: &str, needles: &[&str]) {
    let (d, reg) = setup();
    let o = run_exp(d.path(), &reg, text, &[]);
    assert_one_line_error(&o, needles);
    assert!(!d.path().join("out").exists(), "nothing is written before the experiment is valid");
}

#[test]
fn unknown_plugin_names_are_refused_with_their_line() {
    assert_refused(&GOOD.replace("plugin = \"const\"", "plugin = \"ppo2\""), &["exp.toml:8:", "no algo plugin named 'ppo2'", "(known: const)"]);
    assert_refused(&GOOD.replace("meta = \"mt\"", "meta = \"maml\""), &["exp.toml:17:", "no meta plugin named 'maml'", "(known: mt, fx-meta)"]);
}

#[test]
fn unknown_tasks_and_overlapping_splits_are_refused() {
    assert_refused(&GOOD.replace("gridworld:12..14", "gridworld:12..40"), &["exp.toml:6:", "range 12..40 exceeds the 16 tasks of 'gridworld'"]);
    assert_refused(&GOOD.replace("\"gridworld:0..12\"", "\"gridworl:0..12\""), &["exp.toml:5:", "unknown task family 'gridworl'"]);
    assert_refused(&GOOD.replace("gridworld:0..12", "gridworld:0..13"), &["exp.toml:5:", "task 12 is in both the training and the held-out tasks"]);
}

#[test]
fn incompatible_combinations_name_both_plugins_and_the_missing_capability() {
    let off_policy = GOOD.replace("plugin = \"const\"", "plugin = \"const\"\nconfig = { off_policy = true }").replace("meta = \"mt\"", "meta = \"fx-meta\"");
    assert_refused(&off_policy, &["meta plugin 'fx-meta' needs an algo with on-policy; algo plugin 'const' (as configured for this method) lacks on-policy"]);
    let recurrent = GOOD.replace("meta = \"mt\"", "meta = \"fx-meta\"\nconfig = { requires = [\"recurrent\"] }");
    assert_refused(&recurrent, &["exp.toml:17:", "needs an algo with on-policy,recurrent", "lacks recurrent"]);
}

#[test]
fn invalid_budgets_are_refused() {
    assert_refused(&GOOD.replace("env_steps = 400", "env_steps = 0"), &["exp.toml:10:", "pretrain.env_steps must be at least 1"]);
    assert_refused(&GOOD.replace("eval_every = 100", "eval_every = 500"), &["exp.toml:13:", "adapt.eval_every must be between 1 and adapt.env_steps (200)"]);
    assert_refused(&GOOD.replace("seeds = [0, 1]", "seeds = []"), &["exp.toml:1:", "seeds: give at least one seed"]);
    assert_refused(&GOOD.replace("eval_episodes = 4", "eval_episodes = -1"), &["exp.toml:14:"]);
    assert_refused(&GOOD.replace("[pretrain]", "[pretrain]\nsteps = 3"), &["exp.toml:10:", "unknown field `steps`"]);
}

#[test]
fn unwritable_and_existing_run_dirs_are_refused() {
    let (d, reg) = setup();
    let exp = d.path().join("exp.toml");
    std::fs::write(&exp, GOOD).unwrap();
    let file = d.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", file.join("run").to_str().unwrap()]);
    assert_one_line_error(&o, &["cannot create output directory", "a-file/run"]);

    let out = d.path().join("existing");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "precious").unwrap();
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_one_line_error(&o, &["run directory", "already exists: pass --resume"]);
    assert_eq!(std::fs::read_to_string(out.join("keep.txt")).unwrap(), "precious");
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap(), "--resume"]);
    assert_one_line_error(&o, &["is not a metarl run directory (no config.toml)"]);
}

#[test]
fn resume_refuses_a_changed_experiment() {
    let (d, reg) = setup();
    assert!(run_exp(d.path(), &reg, GOOD, &[]).status.success());
    let o = run_exp(d.path(), &reg, &GOOD.replace("env_steps = 200", "env_steps = 300"), &["--resume"]);
    assert_one_line_error(&o, &["the experiment (or a plugin version) changed since"]);
    let o = run_exp(d.path(), &reg, GOOD, &["--resume"]);
    assert!(o.status.success(), "resuming a finished run just rewrites the report: {}", stderr(&o));
}

#[test]
fn leaking_splits_are_refused_or_warned_about_as_configured() {
    let hidden = GOOD.replace("gridworld:", "gridworld-hidden:");
    // Hidden goals: every task's first frame is the same, so every held-out task "leaks".
    let refuse = hidden.replace("test = \"gridworld-hidden:12..14\"", "test = \"gridworld-hidden:12..14\"\nleakage = \"refuse\"");
    assert_refused(&refuse, &["env.train 'gridworld-hidden:0..12': 2 of 2 held-out tasks have a first frame identical to a training task's"]);
    let (d, reg) = setup();
    let o = run_exp(d.path(), &reg, &hidden, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("WARN") && stderr(&o).contains("2 of 2 held-out tasks"), "{}", stderr(&o));
    let o = run_exp(d.path(), &reg, &GOOD.replace("env_steps = 400", "env_steps = 401"), &[]);
    assert!(!stderr(&o).contains("held-out tasks have a first frame"), "visible goals do not leak");
}

#[test]
fn env_leakage_reports_identical_first_frames() {
    let (_d, reg) = setup();
    let o = metarl(&reg, &["env", "leakage", "gridworld", "--train", "gridworld-hidden:0..8", "--test", "gridworld-hidden:8..10"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().last().unwrap(), "2 of 2 held-out tasks have a first frame identical to a training task's (held-out=train: 8=0, 9=0)");
    let o = metarl(&reg, &["env", "leakage", "gridworld", "--train", "gridworld:0..8", "--test", "gridworld:8..16"]);
    assert_eq!(stdout(&o).lines().last().unwrap(), "0 of 8 held-out tasks have a first frame identical to a training task's");
    let o = metarl(&reg, &["env", "leakage", "gridworld", "--train", "gridworld:0..8", "--test", "gridworld:7..9"]);
    assert_one_line_error(&o, &["task 7 is in both --train and --test"]);
}
