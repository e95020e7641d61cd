//! `metarl report`: the tables and figures of finished run directories rebuilt from their saved
//! curves, merged across runs of one experiment, and refused when the directories are not one
//! finished study.

mod common;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// A registry with the toy env, MT and the fast test-only algo.
fn setup() -> (tempfile::TempDir, PathBuf) {
    registry_of(&[
        ("gridworld", "env", "metarl-env-gridworld"),
        ("mt", "meta", "metarl-meta-mt"),
        ("const", "algo", "metarl-fixture-algo"),
    ])
}

/// Two held-out tasks (so per-task reports too), reference scores (so normalised reports and
/// normalised aggregates), and few resamples to keep the test quick. `name` is fixed: every
/// part of the study has the same title, whatever its file is called.
fn experiment(seeds: &str) -> String {
    format!(
        r#"name = "split"
seeds = {seeds}
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
env_steps = 192
eval_every = 64
eval_episodes = 4
[[method]]
label = "MT"
meta = "mt"
[report]
reference_scores = {{ "12" = [0.0, 2.0], "13" = [0.0, 2.0] }}
bootstrap_resamples = 500
"#
    )
}

/// Runs `text` into `dir/out`, writing the experiment as `dir/file`.
fn run(dir: &Path, reg: &Path, file: &str, text: &str, out: &str) -> PathBuf {
    let exp = dir.join(file);
    std::fs::write(&exp, text).unwrap();
    let out = dir.join(out);
    let o = metarl(reg, &["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

/// Every file under `dir`, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The files `metarl report` writes: everything of a run but its config, metrics, curves,
/// units and checkpoints.
fn report_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let saved = ["config.toml", "metrics.jsonl", "curves.json", "success-curves.json"];
    tree(dir)
        .into_iter()
        .filter(|(name, _)| {
            // Saved by `metarl run` and never written by `metarl report`; TensorBoard's files and
            // the workers' logs are diagnostics with wall times in them.
            !saved.contains(&name.as_str()) && !["units/", "checkpoints/", "tensorboard/", "logs/"].iter().any(|d| name.starts_with(d))
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    for (name, bytes) in tree(from) {
        let path = to.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn the_report_of_two_merged_runs_equals_the_report_of_one_run_that_did_both() {
    let (d, reg) = setup();
    let a = run(d.path(), &reg, "both.toml", &experiment("[0, 1]"), "a");
    let b = run(d.path(), &reg, "first.toml", &experiment("[0]"), "b");
    let c = run(d.path(), &reg, "second.toml", &experiment("[1]"), "c");
    let out = d.path().join("d");
    let o = metarl(&reg, &["report", b.to_str().unwrap(), c.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("| MT |") && stdout(&o).contains(&format!("results in {}", out.display())), "{}", stdout(&o));

    let (want, got) = (report_files(&a), report_files(&out));
    for f in ["summary.md", "summary.csv", "aggregates.md", "aggregates.csv", "curves.svg", "curves.png", "success-summary.csv", "normalised-curves.svg"] {
        assert!(want.contains_key(f), "{f} missing from the run: {:?}", want.keys());
    }
    assert!(want.keys().any(|f| f.starts_with("per-task/")), "{:?}", want.keys());
    assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>());
    for (name, bytes) in &want {
        assert!(got[name] == *bytes, "{name} differs between the run of both seeds and the report of its two halves");
    }
    // The aggregates are over normalised final scores, with the experiment's resamples, and
    // compare MT with scratch both ways.
    let md = String::from_utf8(want["aggregates.md"].clone()).unwrap();
    assert!(md.contains("Scores: normalised") && md.contains("500 stratified bootstrap resamples"), "{md}");
    assert!(md.contains("| 12 train tasks | MT | 2 × 2 |") && md.contains("| 12 train tasks | scratch | MT |"), "{md}");
    // The halves' own reports differ from the whole's: the comparison above can fail.
    assert_ne!(report_files(&b)["aggregates.csv"], want["aggregates.csv"]);

    // Reporting a run in place rewrites its report as it was, and touches nothing else.
    let before = tree(&a);
    let o = metarl(&reg, &["report", a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(tree(&a) == before, "metarl report A changed A's files");
    // Without a registry too: a report needs no plugin.
    let o = metarl(&d.path().join("no-registry.toml"), &["report", a.to_str().unwrap(), "--out", d.path().join("e").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn report_refuses_what_is_not_one_finished_study() {
    let (d, reg) = setup();
    let b = run(d.path(), &reg, "first.toml", &experiment("[0]"), "b");
    let report = |dirs: &[&Path], out: &Path| {
        let mut args = vec!["report".to_string()];
        args.extend(dirs.iter().map(|p| p.display().to_string()));
        args.extend(["--out".to_string(), out.display().to_string()]);
        metarl(&reg, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let out = d.path().join("out");

    let missing = d.path().join("nothing");
    assert_one_line_error(&report(&[&missing], &out), &["run directory", "nothing does not exist"]);
    let plain = d.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    assert_one_line_error(&report(&[&b, &plain], &out), &["plain is not a metarl run directory (no config.toml)"]);

    // A run that never finished has no curves.json yet.
    let unfinished = d.path().join("unfinished");
    copy_dir(&b, &unfinished);
    std::fs::remove_file(unfinished.join("curves.json")).unwrap();
    assert_one_line_error(&report(&[&unfinished], &out), &["unfinished is not a finished run (no curves.json)", "--resume"]);

    // The same curve twice is fine; two different curves under one name are not.
    let twin = d.path().join("twin");
    copy_dir(&b, &twin);
    let o = report(&[&b, &twin], &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let changed = d.path().join("changed");
    copy_dir(&b, &changed);
    let mut curves: serde_json::Value = serde_json::from_slice(&std::fs::read(changed.join("curves.json")).unwrap()).unwrap();
    curves[0]["points"][1][1] = serde_json::json!(123.0);
    std::fs::write(changed.join("curves.json"), serde_json::to_vec(&curves).unwrap()).unwrap();
    assert_one_line_error(
        &report(&[&b, &changed], &out),
        &["b/curves.json and ", "changed/curves.json hold different curves of panel '12 train tasks', method 'MT', seed 0, task '12'"],
    );

    // Parts of one study differ in their seeds only.
    let other = d.path().join("other");
    copy_dir(&b, &other);
    let config = std::fs::read_to_string(other.join("config.toml")).unwrap();
    assert!(config.contains("eval_episodes = 4"), "{config}");
    std::fs::write(other.join("config.toml"), config.replace("eval_episodes = 4", "eval_episodes = 5")).unwrap();
    assert_one_line_error(&report(&[&b, &other], &out), &["are runs of different experiments: `eval_episodes` differs"]);

    // --out never overwrites another run's results.
    assert_one_line_error(&report(&[&b], &twin), &["twin is the directory of another run"]);

    // [report] bootstrap_resamples is checked with the experiment, naming its line.
    let exp = d.path().join("zero.toml");
    std::fs::write(&exp, experiment("[0]").replace("bootstrap_resamples = 500", "bootstrap_resamples = 0")).unwrap();
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", d.path().join("z").to_str().unwrap()]);
    assert_one_line_error(&o, &["zero.toml:21:", "report.bootstrap_resamples must be between 1 and 1000000, not 0"]);
}

/// Without `[report] reference_scores`, the env plugin's own references normalise the scores
/// (0.2.2), and every report names them; the experiment's own references win over them.
#[test]
fn the_env_plugins_reference_scores_normalise_and_are_named() {
    let d = tempfile::tempdir().unwrap();
    let text = [
        entry("fixture", "env", &plugin("metarl-fixture-env")),
        entry("mt", "meta", &plugin("metarl-meta-mt")),
        entry("qlearn", "algo", &plugin("metarl-fixture-qlearn")),
    ]
    .join("\n");
    let reg = d.path().join("registry.toml");
    std::fs::write(&reg, text).unwrap();
    let exp = |report: &str| {
        format!(
            "seeds = [0]\nnum_envs = 2\n[env]\nplugin = \"fixture\"\ntrain = \"bandit2:1..15\"\ntest = \"bandit2:0,15\"\n\
             [algo]\nplugin = \"qlearn\"\n[pretrain]\nenv_steps = 200\n[adapt]\nenv_steps = 40\neval_every = 20\n\
             eval_episodes = 4\nscratch = false\n[[method]]\nlabel = \"MT\"\nmeta = \"mt\"\n[report]\nbootstrap_resamples = 200\n{report}"
        )
    };
    let out = run(d.path(), &reg, "plugin-refs.toml", &exp(""), "plugin-refs");
    let aggregates = std::fs::read_to_string(out.join("aggregates.md")).unwrap();
    assert!(
        aggregates.contains("Scores: fraction of the best return, (return − low) / (high − low) with the fixture plugin's references: 0 rewards = 0, 10 of 10 = 1"),
        "{aggregates}"
    );
    assert!(std::fs::read_to_string(out.join("config.toml")).unwrap().contains("fraction of the best return"));
    // The normalised summary is the raw one divided by 10 (low 0, high 10).
    let value = |file: &str| -> f64 {
        let csv = std::fs::read_to_string(out.join(file)).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == "final_mean").unwrap();
        csv.lines().nth(1).unwrap().split(',').nth(col).unwrap().parse().unwrap()
    };
    let (raw, normalised) = (value("summary.csv"), value("normalised-summary.csv"));
    assert!(raw > 0.0 && (normalised - raw / 10.0).abs() < 1e-9, "raw {raw}, normalised {normalised}");
    // `metarl report` needs no plugin to say the same.
    std::fs::remove_file(out.join("aggregates.md")).unwrap();
    let o = metarl(&reg, &["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(out.join("aggregates.md")).unwrap(), aggregates);
    // The experiment's references take precedence, and say so.
    let own = run(d.path(), &reg, "own-refs.toml", &exp("reference_scores = { \"0\" = [0.0, 5.0], \"15\" = [0.0, 5.0] }\n"), "own-refs");
    let aggregates = std::fs::read_to_string(own.join("aggregates.md")).unwrap();
    assert!(aggregates.contains("with each held-out task's `[report] reference_scores`"), "{aggregates}");
}
