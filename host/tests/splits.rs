//! Leave-one-out splits (`[env.splits]`): every held-out task of the pool becomes a split that
//! pretrains on the rest of the pool and adapts to that task, and the report averages over the
//! splits under one panel.

mod common;
use std::path::PathBuf;

use common::*;

fn setup() -> (tempfile::TempDir, PathBuf) {
    registry_of(&[
        ("gridworld", "env", "metarl-env-gridworld"),
        ("mt", "meta", "metarl-meta-mt"),
        ("const", "algo", "metarl-fixture-algo"),
    ])
}

fn experiment(env: &str) -> String {
    format!(
        r#"name = "splits"
seeds = [0]
num_envs = 4
[env]
plugin = "gridworld"
{env}
[algo]
plugin = "const"
[pretrain]
env_steps = 200
[adapt]
env_steps = 64
eval_every = 32
eval_episodes = 4
[[method]]
label = "MT"
meta = "mt"
"#
    )
}

#[test]
fn each_split_pretrains_without_its_task_and_the_report_averages_over_them() {
    let (d, reg) = setup();
    let exp = d.path().join("splits.toml");
    std::fs::write(&exp, experiment("[env.splits]\npool = \"gridworld:0..4\"\nheld_out = \"gridworld:0,2\"")).unwrap();
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--check"]);
    // 2 splits: 2 pretrainings, each adapting to its own task only, and scratch on both tasks.
    assert!(stdout(&o).contains("2 panel(s), 1 method(s) + scratch, 1 seed(s), 2 held-out task(s): 6 units"), "{}{}", stdout(&o), stderr(&o));
    let out = d.path().join("out");
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    let plan: toml::Table = toml::from_str(&config).unwrap();
    let panels = plan["panels"].as_array().unwrap();
    let view: Vec<(String, Vec<i64>, Vec<i64>)> = panels
        .iter()
        .map(|p| {
            let ints = |k: &str| p[k].as_array().unwrap().iter().map(|v| v.as_integer().unwrap()).collect();
            (p["label"].as_str().unwrap().to_string(), ints("tasks"), ints("test"))
        })
        .collect();
    assert_eq!(
        view,
        [
            ("leave-one-out without 0".to_string(), vec![1, 2, 3], vec![0]),
            ("leave-one-out without 2".to_string(), vec![0, 1, 3], vec![1]),
        ]
    );
    // The curves: every adaptation and scratch curve in the one reported panel, one per task.
    let curves: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(out.join("curves.json")).unwrap()).unwrap();
    let mut seen: Vec<(String, String, String)> = curves
        .iter()
        .map(|c| (c["panel"].as_str().unwrap().into(), c["method"].as_str().unwrap().into(), c["task"].as_str().unwrap().into()))
        .collect();
    seen.sort();
    let want = [("MT", "0"), ("MT", "2"), ("scratch", "0"), ("scratch", "2")];
    assert_eq!(seen, want.map(|(m, t)| ("leave-one-out".to_string(), m.to_string(), t.to_string())));
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().filter(|l| l.starts_with("leave-one-out,")).count(), 2, "{summary}");
    // Each split on its own: the per-task figure has one panel per held-out task.
    assert!(out.join("tasks-curves.svg").exists());
}

#[test]
fn splits_are_refused_when_they_contradict_the_rest() {
    let (d, reg) = setup();
    let check = |env: &str, needles: &[&str]| {
        let exp = d.path().join("bad.toml");
        std::fs::write(&exp, experiment(env)).unwrap();
        let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--check"]);
        assert_one_line_error(&o, needles);
    };
    check("[env.splits]\npool = \"gridworld:0..4\"\nheld_out = \"gridworld:5\"", &["bad.toml", "held_out: task 5 is not in the pool"]);
    check("test = \"gridworld:5\"\n[env.splits]\npool = \"gridworld:0..4\"", &["bad.toml:6", "either `test` or `[env.splits]`"]);
    check("train = \"gridworld:0..2\"\n[env.splits]\npool = \"gridworld:0..4\"", &["bad.toml:6", "drop `train`"]);
    check("[env.splits]\npool = \"gridworld:3\"", &["needs at least two tasks"]);
    check("train = \"gridworld:0..2\"", &["missing `test` (the held-out tasks) or `[env.splits]`"]);
}

/// The experiment above with a second MT method, `method2` (its TOML lines).
fn two_methods(algo: &str, method2: &str) -> String {
    experiment("[env.splits]\npool = \"gridworld:0..4\"\nheld_out = \"gridworld:0,2\"")
        .replace("plugin = \"const\"\n", &format!("plugin = \"const\"\n{algo}\n"))
        + &format!("[[method]]\nlabel = \"MT with the training tasks\"\nmeta = \"mt\"\n{method2}\n")
}

#[test]
fn a_method_pretrained_as_another_adapts_from_its_pretraining() {
    let (d, reg) = setup();
    let exp = d.path().join("shared.toml");
    // Off-policy, so that fine-tuning with the training tasks applies; the fixture's
    // checkpoints hold no replay, which that option must then refuse.
    let algo = "config = { off_policy = true, refuse_unrecorded = true }";
    std::fs::write(&exp, two_methods(algo, "pretrained_as = \"MT\"\nconfig = { fine_tune = \"with-training-tasks\" }")).unwrap();
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--check"]);
    // 2 splits x (1 pretraining, 2 adaptations, 1 scratch): 8 units, not 10.
    assert!(stdout(&o).contains("2 method(s) + scratch, 1 seed(s), 2 held-out task(s): 8 units"), "{}{}", stdout(&o), stderr(&o));

    let out = d.path().join("out");
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    let units: Vec<String> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok().filter(|n| n.ends_with(".safetensors")))
        .collect();
    assert_eq!(units.len(), 2, "one pretraining per split: {units:?}");
    assert!(units.iter().all(|n| n.starts_with("pretrain-leave-one-out-without-") && n.contains("-mt-")), "{units:?}");
    // The isolated MT adaptations and scratch finished; the joint ones failed in one line each,
    // saying why, since the fixture's checkpoint holds none of the training tasks' data.
    let done = std::fs::read_dir(out.join("units")).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json")).count();
    assert_eq!(done, 4, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("fine_tune = \"with-training-tasks\": the algo holds no usable data of the training tasks"), "{err}");
    assert!(err.contains("save_replay"), "{err}");

    // Refused at once: an unknown label, a later one, or a pretraining with other settings.
    let refused = |method2: &str, needles: &[&str]| {
        std::fs::write(&exp, two_methods("", method2)).unwrap();
        assert_one_line_error(&metarl(&reg, &["run", exp.to_str().unwrap(), "--check"]), needles);
    };
    refused("pretrained_as = \"PEARL\"", &["shared.toml:24", "pretrained_as = 'PEARL' names no earlier method (earlier: MT)"]);
    refused("pretrained_as = \"MT\"\nalgo_config = { update_adds = 1.0 }", &["shared.toml:24", "another meta plugin or algo config"]);
}
