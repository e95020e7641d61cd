//! The study pipeline with real learning: PPO on the toy env, MT pretraining against training
//! from scratch, and exact resumption after a kill -9.

mod common;
use std::path::PathBuf;

use common::*;

fn setup() -> (tempfile::TempDir, PathBuf) {
    registry_of(&[
        ("gridworld", "env", "metarl-env-gridworld"),
        ("ppo", "algo", "metarl-algo-ppo"),
        ("mt", "meta", "metarl-meta-mt"),
    ])
}

/// Small frames and a 4x4 grid keep PPO fast. Goals share one colour, as Procgen levels share
/// their look; the held-out goals (tasks 12, 13) sit on cells never rewarded in pretraining.
fn experiment(seeds: &str, pretrain: u64, adapt: u64, eval_every: u64, eval_episodes: u32) -> String {
    format!(
        r#"seeds = {seeds}
num_envs = 8
threads = 1
[env]
plugin = "gridworld"
train = "gridworld:0..12"
test = "gridworld:12..14"
config = {{ size = 4, frame = 16, shared_goal_colour = true }}
[algo]
plugin = "ppo"
config = {{ preset = "cpu-small", num_steps = 64 }}
[pretrain]
env_steps = {pretrain}
[adapt]
env_steps = {adapt}
eval_every = {eval_every}
eval_episodes = {eval_episodes}
[[method]]
label = "MT"
meta = "mt"
"#
    )
}

fn csv_value(summary: &str, method: &str, column: &str) -> f64 {
    let mut lines = summary.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == column).unwrap_or_else(|| panic!("no column {column}: {header:?}"));
    let row = lines.find(|l| l.split(',').nth(1) == Some(method)).unwrap_or_else(|| panic!("no row {method}:\n{summary}"));
    row.split(',').nth(col).unwrap().parse().unwrap()
}

#[test]
fn mt_pretraining_beats_scratch_at_the_first_evaluation() {
    let (d, reg) = setup();
    let exp = d.path().join("study.toml");
    std::fs::write(&exp, experiment("[0]", 60_000, 1_024, 512, 64)).unwrap();
    let out = d.path().join("out");
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let (mt, scratch) = (csv_value(&summary, "MT", "zero_shot_mean"), csv_value(&summary, "scratch", "zero_shot_mean"));
    // A random policy reaches the goal in about half of the 16-step episodes on a 4x4 grid;
    // 60k steps of multi-task PPO should find unseen goals clearly more often, at once.
    eprintln!("zero-shot return on held-out goals: MT {mt:.3}, scratch {scratch:.3}");
    assert!(mt > scratch + 0.1, "MT zero-shot {mt:.3} vs scratch {scratch:.3}:\n{summary}");
}

#[test]
fn resuming_after_kill_9_gives_the_files_of_an_uninterrupted_run() {
    let (d, reg) = setup();
    let exp = d.path().join("resume.toml");
    std::fs::write(&exp, experiment("[0, 1]", 4_096, 1_024, 512, 8)).unwrap();
    assert_kill_9_resume_is_exact(&reg, &exp, &d.path().join("a"), &d.path().join("b"));
}
