//! PEARL through the host: it infers held-out tasks from their rewards, it is refused with an
//! algo that lacks what it needs, and it resumes exactly after a kill -9.
//!
//! The learning check runs PEARL over the test-only `qlearn` algo (a linear contextual-bandit
//! learner with context input and dL/dz) on the fixture env's `bandit2` family: two arms,
//! task t pays arm 0 with probability (t + 0.5)/16 and arm 1 with the complement, and the
//! observation is always 0, so only rewards tell the tasks apart.

mod common;
use std::path::PathBuf;

use common::*;

fn setup() -> (tempfile::TempDir, PathBuf) {
    registry_of(&[
        ("fixture", "env", "metarl-fixture-env"),
        ("qlearn", "algo", "metarl-fixture-qlearn"),
        ("pearl", "meta", "metarl-meta-pearl"),
        ("gridworld", "env", "metarl-env-gridworld"),
        ("ppo", "algo", "metarl-algo-ppo"),
    ])
}

/// Pretraining on tasks 1..15, adaptation on the extremes 0 (arm 1 pays 0.97) and 15 (arm 0
/// pays 0.97), whose best arms differ. A small encoder with a light KL weight: with the study's
/// weight of 1 the posterior of this weak linear learner collapses to the prior.
fn experiment(seeds: &str, pretrain: u64) -> String {
    format!(
        r#"seeds = {seeds}
num_envs = 4
threads = 1
device = "cpu"
[env]
plugin = "fixture"
train = "bandit2:1..15"
test = "bandit2:0,15"
[algo]
plugin = "qlearn"
[pretrain]
env_steps = {pretrain}
[adapt]
env_steps = 200
eval_every = 100
eval_episodes = 20
eval_policy = "greedy"
scratch = false
[[method]]
label = "PEARL"
meta = "pearl"
config = {{ latent_dim = 2, hidden = 32, lr = 3e-3, kl_weight = 0.01 }}
"#
    )
}

/// Adaptation with the posterior z beats the prior z, with no update to the policy in between.
///
/// At the zero-shot point the held-out task has no context and a greedy evaluation acts with
/// the prior's mean: one task-blind policy, which pulls the same arm on both tasks and so
/// averages 10 x (0.97 + 0.03) / 2 = 5 per 10-pull episode over the pair. A policy that knows
/// the task averages 9.7. The threshold, a gain of at least 3 and at least 8.5 on every task
/// at the end, leaves room for an imperfect posterior but not for a task-blind one (measured:
/// 5.03 -> 9.73 over five seeds).
#[test]
fn the_posterior_of_the_held_out_tasks_context_beats_the_prior_without_updates() {
    let (d, reg) = setup();
    let exp = d.path().join("pearl.toml");
    std::fs::write(&exp, experiment("[0, 1]", 20_000)).unwrap();
    let out = d.path().join("out");
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let curves: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(out.join("curves.json")).unwrap()).unwrap();
    let (mut zero_shot, mut last) = (Vec::new(), Vec::new());
    for c in &curves {
        let points = c["points"].as_array().unwrap();
        let value = |i: usize| points[i][1].as_f64().unwrap();
        zero_shot.push(value(0));
        last.push(value(points.len() - 1));
        assert!(value(points.len() - 1) >= 8.5, "seed {} task {}: {points:?}", c["seed"], c["task"]);
    }
    assert_eq!(curves.len(), 4, "2 seeds x 2 held-out tasks");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    eprintln!("PEARL on held-out bandits: prior z {:.2}, posterior z {:.2}", mean(&zero_shot), mean(&last));
    assert!(mean(&last) >= mean(&zero_shot) + 3.0, "prior {zero_shot:?} -> posterior {last:?}");
    // Adaptation made no update: no unit of it logged a loss.
    for e in std::fs::read_dir(out.join("units")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("adapt") && name.ends_with(".jsonl") {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.lines().count() > 10 && !text.contains("\"loss\""), "{name} logged an update");
        }
    }
}

#[test]
fn pearl_with_ppo_is_refused_before_anything_runs() {
    let (d, reg) = setup();
    let exp = d.path().join("ppo.toml");
    let text = r#"seeds = [0]
[env]
plugin = "gridworld"
train = "gridworld:0..4"
test = "gridworld:4"
[algo]
plugin = "ppo"
[pretrain]
env_steps = 1000
[adapt]
env_steps = 100
eval_every = 50
[[method]]
label = "PEARL"
meta = "pearl"
"#;
    std::fs::write(&exp, text).unwrap();
    let out = d.path().join("out");
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_one_line_error(&o, &["ppo.toml", "pearl", "off-policy", "context-grad", "lacks"]);
    assert!(!out.exists(), "nothing may be written for a refused experiment");
}

#[test]
fn pearl_resumes_after_kill_9_with_the_files_of_an_uninterrupted_run() {
    let (d, reg) = setup();
    let exp = d.path().join("resume.toml");
    std::fs::write(&exp, experiment("[0, 1, 2]", 12_000)).unwrap();
    assert_kill_9_resume_is_exact(&reg, &exp, &d.path().join("a"), &d.path().join("b"));
}

/// PEARL over the real Rainbow, end to end through `metarl run`: the encoder trains on
/// Rainbow's dL/dz (its KL is logged from the first update on), and adaptation plays with an
/// inferred z and makes no update. Only the plumbing: a few hundred steps learn nothing.
#[test]
fn pearl_drives_rainbow_through_a_whole_run() {
    let (d, reg) = setup();
    let text = [std::fs::read_to_string(&reg).unwrap(), entry("rainbow", "algo", &plugin("metarl-algo-rainbow"))].join("\n");
    std::fs::write(&reg, text).unwrap();
    let exp = d.path().join("rainbow.toml");
    let text = r#"seeds = [0]
num_envs = 1
threads = 1
device = "cpu"
[env]
plugin = "gridworld"
train = "gridworld-hidden:0..3"
test = "gridworld-hidden:3"
config = { size = 4, frame = 32 }
[algo]
plugin = "rainbow"
config = { preset = "der", hidden = 32, learning_starts = 100, memory_capacity = 1000 }
[pretrain]
env_steps = 300
[adapt]
env_steps = 100
eval_every = 50
eval_episodes = 2
eval_policy = "greedy"
scratch = false
[[method]]
label = "PEARL"
meta = "pearl"
config = { hidden = 32, latent_dim = 4, context_window = 20 }
"#;
    std::fs::write(&exp, text).unwrap();
    let out = d.path().join("out");
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let units: Vec<PathBuf> = std::fs::read_dir(out.join("units")).unwrap().map(|e| e.unwrap().path()).collect();
    let read = |prefix: &str| {
        let p = units.iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix) && p.extension().unwrap() == "jsonl");
        std::fs::read_to_string(p.unwrap_or_else(|| panic!("no {prefix} unit in {units:?}"))).unwrap()
    };
    let pretrain = read("pretrain");
    let kl_lines = pretrain.lines().filter(|l| l.contains("\"pearl_kl\"")).count();
    // One encoder step per Rainbow update, one after each of steps 100 to 300 once the
    // 100-step warm-up is in (201), except for updates whose tasks had nothing to sample yet.
    assert!(kl_lines > 100 && kl_lines <= 201, "{kl_lines} encoder steps:\n{pretrain}");
    assert!(!read("adapt").contains("\"loss\""), "adaptation made an update");
    let curves = std::fs::read_to_string(out.join("curves.json")).unwrap();
    assert!(curves.contains("\"PEARL\""), "{curves}");
}
