//! C2F-ARM on Meta-World through `metarl run`: MT and PEARL pretraining with demos (PEARL's
//! first updates then plan over tasks it has no context of), then fine-tuning with and
//! without the training tasks' replay; a `kill -9` after the first pretraining's checkpoint
//! (which holds the replay) and `--resume` give an uninterrupted run's files. A small network
//! on a 32 px camera (PEARL's encoder needs 25) and a few dozen keyframe steps: the plumbing, not learning
//! (`benches/c2farm-learning.sh` checks that).

mod common;
use std::path::PathBuf;

use common::*;

fn setup() -> (tempfile::TempDir, PathBuf) {
    registry_of(&[
        ("metaworld", "env", "metarl-env-metaworld"),
        ("c2farm", "algo", "metarl-algo-c2farm"),
        ("mt", "meta", "metarl-meta-mt"),
        ("pearl", "meta", "metarl-meta-pearl"),
    ])
}

const EXPERIMENT: &str = r#"seeds = [0]
num_envs = 1
threads = 1
device = "cpu"

[env]
plugin = "metaworld"
train = "metaworld:reach,push"
test = "metaworld:button-press-topdown"
leakage = "off"
config = { action_mode = "keyframe", cameras = ["corner"], size = 32 }

[algo]
plugin = "c2farm"
config = { preset = "cpu-small", grid = 4, kernels = 8, latent = 8, dense = 16, batch_size = 8, learning_starts = 8 }

[pretrain]
env_steps = 30
demos = 1

[adapt]
env_steps = 20
eval_every = 10
eval_episodes = 2
eval_policy = "greedy"
scratch = false
demos = [1]

[[method]]
label = "MT"
meta = "mt"

[[method]]
label = "MT with the training tasks"
meta = "mt"
pretrained_as = "MT"
config = { fine_tune = "with-training-tasks" }

[[method]]
label = "PEARL"
meta = "pearl"
config = { latent_dim = 4, hidden = 16, context_size = 2, context_window = 4 }
"#;

#[test]
fn c2farm_pretrains_fine_tunes_and_resumes_after_kill_9_exactly() {
    let (d, reg) = setup();
    let exp = d.path().join("c2farm.toml");
    std::fs::write(&exp, EXPERIMENT).unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    assert_kill_9_resume_is_exact(&reg, &exp, &a, &b);
    // Both fine-tunings ran from the one pretraining; the one with the training tasks drew
    // from their replay, restored from the checkpoint (2 tasks per update: the held-out one
    // and one training task).
    let metrics = std::fs::read_to_string(a.join("metrics.jsonl")).unwrap();
    let joint: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["unit"].as_str().is_some_and(|u| u.contains("MT with the training tasks")))
        .collect();
    assert!(joint.iter().any(|v| v["loss"].is_number()), "the joint fine-tuning updated: {joint:?}");
    let curves: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(a.join("success-curves.json")).unwrap()).unwrap();
    assert_eq!(curves.len(), 3, "{curves:?}");
}
