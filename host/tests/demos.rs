//! Expert demonstrations in `metarl run`: `[pretrain] demos` per training task before
//! pretraining, `[adapt] demos` test-time counts (each its own set of adaptation and scratch
//! units, reported as its own panel), the refusals, and experiments without them unchanged.

mod common;
use std::path::{Path, PathBuf};

use common::*;

fn setup() -> (tempfile::TempDir, PathBuf) {
    registry_of(&[
        ("gridworld", "env", "metarl-env-gridworld"),
        ("fx", "env", "metarl-fixture-env"),
        ("mt", "meta", "metarl-meta-mt"),
        ("const", "algo", "metarl-fixture-algo"),
    ])
}

/// An experiment over three training tasks and one held-out task, one env (so that every demo
/// row fills a batch), with `algo` as the `[algo]` table's extra lines and `pretrain`, `adapt`
/// as extra lines of theirs.
fn experiment(algo: &str, pretrain: &str, adapt: &str) -> String {
    format!(
        r#"name = "demos"
seeds = [0]
num_envs = 1
[env]
plugin = "gridworld"
train = "gridworld:0..3"
test = "gridworld:5"
[algo]
plugin = "const"
{algo}
[pretrain]
env_steps = 64
{pretrain}
[adapt]
env_steps = 32
eval_every = 16
eval_episodes = 2
{adapt}
[[method]]
label = "MT"
meta = "mt"
"#
    )
}

/// metrics.jsonl, one JSON object per line.
fn metrics(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn of_unit<'a>(lines: &'a [serde_json::Value], unit: &str) -> Vec<&'a serde_json::Value> {
    let mine: Vec<&serde_json::Value> = lines.iter().filter(|l| l["unit"] == unit).collect();
    assert!(!mine.is_empty(), "no metrics of unit {unit}");
    mine
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Unit names in metrics.jsonl order (plan order), each once.
fn unit_names(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for l in metrics(out) {
        let u = l["unit"].as_str().unwrap().to_string();
        if !names.contains(&u) {
            names.push(u);
        }
    }
    names
}

#[test]
fn demos_are_recorded_before_pretraining_and_per_test_time_count() {
    let (d, reg) = setup();
    let exp = d.path().join("demos.toml");
    std::fs::write(&exp, experiment("config = { uses_demos = true }", "demos = 2", "demos = [0, 1]")).unwrap();
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--check"]);
    // 1 pretraining, then per count one adaptation and one scratch unit.
    assert!(stdout(&o).contains(": 5 units"), "{}{}", stdout(&o), stderr(&o));
    let out = d.path().join("out");
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        unit_names(&out),
        [
            "pretrain/3 train tasks/MT/seed 0",
            "adapt/3 train tasks/MT/seed 0/5/0 demos",
            "adapt/3 train tasks/MT/seed 0/5/1 demo",
            "scratch/seed 0/5/0 demos",
            "scratch/seed 0/5/1 demo",
        ]
    );
    let lines = metrics(&out);

    // Pretraining: 2 demos of each of the 3 training tasks, every step recorded (one env),
    // all of them before the first update, which saw them with empty extras and 6 episode ends.
    let pre = of_unit(&lines, "pretrain/3 train tasks/MT/seed 0");
    assert_eq!(num(pre[0], "env_steps"), 0.0);
    assert_eq!(num(pre[0], "demos"), 6.0, "{}", pre[0]);
    let steps = num(pre[0], "demo_steps");
    assert!(steps >= 6.0, "{}", pre[0]);
    assert_eq!(num(pre[0], "demo_rows"), steps, "one env: every demo step is a row");
    let first_update = pre.iter().find(|l| l.get("demo_rows_seen").is_some()).expect("an update");
    assert_eq!(num(first_update, "demo_rows_seen"), steps, "{first_update}");
    assert_eq!(num(first_update, "demo_ends_seen"), 6.0, "{first_update}");
    // The first update came after one rollout of 8 agent steps on top of the demos.
    assert_eq!(num(first_update, "recorded"), steps + 8.0, "{first_update}");

    // Adaptation and scratch: one demo of the held-out task with `1 demo`, none with `0 demos`.
    for unit in ["adapt/3 train tasks/MT/seed 0/5/1 demo", "scratch/seed 0/5/1 demo"] {
        let mine = of_unit(&lines, unit);
        assert_eq!(num(mine[0], "demos"), 1.0, "{unit}: {}", mine[0]);
        let steps = num(mine[0], "demo_steps");
        assert!(steps >= 1.0, "{unit}: {}", mine[0]);
        for l in &mine[1..] {
            assert_eq!(num(l, "demo_rows_seen"), steps, "{unit}: {l}");
            assert_eq!(num(l, "demo_ends_seen"), 1.0, "{unit}: {l}");
        }
    }
    for unit in ["adapt/3 train tasks/MT/seed 0/5/0 demos", "scratch/seed 0/5/0 demos"] {
        let mine = of_unit(&lines, unit);
        assert!(mine[0].get("demos").is_none(), "{unit}: {}", mine[0]);
        for l in &mine[1..] {
            assert_eq!(num(l, "demo_rows_seen"), 0.0, "{unit}: {l}");
        }
    }

    // Every count is a panel of its own.
    let curves: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(out.join("curves.json")).unwrap()).unwrap();
    let seen: Vec<(String, String)> =
        curves.iter().map(|c| (c["panel"].as_str().unwrap().into(), c["method"].as_str().unwrap().into())).collect();
    let want = [("3 train tasks, 0 demos", "MT"), ("3 train tasks, 1 demo", "MT"), ("3 train tasks, 0 demos", "scratch"), ("3 train tasks, 1 demo", "scratch")];
    assert_eq!(seen, want.map(|(p, m)| (p.to_string(), m.to_string())));
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(summary.contains("\"3 train tasks, 1 demo\",MT,"), "{summary}");
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(config.contains("pretrain_demos = 2") && config.contains("adapt_demos = [0, 1]"), "{config}");

    // `metarl report` rebuilds the same report from the saved run.
    let again = d.path().join("report");
    let o = metarl(&reg, &["report", out.to_str().unwrap(), "--out", again.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(again.join("summary.csv")).unwrap(), summary.as_bytes());
}

/// The line of the first occurrence of `needle` in `text`, 1-based.
fn line_of(text: &str, needle: &str) -> usize {
    text[..text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in the experiment"))].lines().count() + 1
}

#[test]
fn demos_are_refused_where_nothing_can_give_or_learn_from_them() {
    let (d, reg) = setup();
    let check = |text: &str, key: &str, needles: &[&str]| {
        let exp = d.path().join("bad.toml");
        std::fs::write(&exp, text).unwrap();
        let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--check"]);
        let at = format!("bad.toml:{}:", line_of(text, key));
        let mut all = vec![at.as_str()];
        all.extend(needles);
        assert_one_line_error(&o, &all);
    };
    let with_demos = "config = { uses_demos = true }";
    // An env without demonstrations.
    let no_env_demos = experiment(with_demos, "demos = 2", "")
        .replace("plugin = \"gridworld\"", "plugin = \"fx\"")
        .replace("gridworld:0..3", "parts:0..3")
        .replace("gridworld:5", "parts:3");
    check(&no_env_demos, "demos = 2", &["env plugin 'fx' has no expert demonstrations (it lacks demos); drop [pretrain] demos"]);
    // An algo that does not learn from them: the method's, or the scratch baseline's.
    check(
        &experiment("", "", "demos = [0, 1]"),
        "demos = [0, 1]",
        &["algo plugin 'const' (as configured for method 'MT') does not learn from demonstrations (it lacks uses-demos); drop [adapt] demos or choose an algo with it"],
    );
    let method_without = experiment(with_demos, "demos = 1", "").replace("meta = \"mt\"", "meta = \"mt\"\nalgo_config = { uses_demos = false }");
    check(&method_without, "demos = 1", &["as configured for method 'MT'", "drop [pretrain] demos"]);
    let scratch_without = experiment("", "", "demos = [2]").replace("[[method]]\nlabel = \"MT\"\nmeta = \"mt\"\n", "");
    check(&scratch_without, "demos = [2]", &["as configured for the scratch baseline", "lacks uses-demos"]);
    // Counts that are not a list of distinct counts.
    check(&experiment(with_demos, "", "demos = []"), "demos = []", &["adapt.demos: give at least one"]);
    check(&experiment(with_demos, "", "demos = [0, 2, 2]"), "demos = [0, 2, 2]", &["adapt.demos: 2 is listed twice"]);
    check(&experiment(with_demos, "", "demos = [0, -1]"), "demos = [0, -1]", &["adapt.demos: -1 is not a count"]);
    check(&experiment(with_demos, "demos = -2", ""), "demos = -2", &["pretrain.demos must be a count", "not -2"]);
}

#[test]
fn an_experiment_without_demos_is_unchanged() {
    let (d, reg) = setup();
    let run = |name: &str, text: &str| {
        let exp = d.path().join(format!("{name}.toml"));
        std::fs::write(&exp, text).unwrap();
        let out = d.path().join(name);
        let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        out
    };
    let plain = run("plain", &experiment("", "", ""));
    // The names (and so the seeds and files) of the units as before the keys existed.
    assert_eq!(unit_names(&plain), ["pretrain/3 train tasks/MT/seed 0", "adapt/3 train tasks/MT/seed 0/5", "scratch/seed 0/5"]);
    let config = std::fs::read_to_string(plain.join("config.toml")).unwrap();
    assert!(!config.contains("_demos"), "{config}");
    // The defaults written out give the very same files, config.toml included.
    let explicit = run("explicit", &experiment("", "demos = 0", "demos = [0]"));
    assert_same_files(&plain, &explicit);
}
