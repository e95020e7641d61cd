//! `metarl run` refuses bad experiments before any training starts, in one line that names the
//! file, line and key (or the plugins and capability at fault), and loses nothing on disk.

mod common;
use std::path::{Path, PathBuf};

use common::*;

/// A registry with the toy env, MT, and the test-only algo and meta plugins.
fn setup() -> (tempfile::TempDir, PathBuf) {
    registry_of(&[
        ("gridworld", "env", "metarl-env-gridworld"),
        ("mt", "meta", "metarl-meta-mt"),
        ("const", "algo", "metarl-fixture-algo"),
        ("fx-meta", "meta", "metarl-fixture-meta"),
    ])
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
env_steps = 192
eval_every = 64
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
    // Not on a terminal: a line per unit as it starts and as it ends, in order.
    let log = stderr(&o);
    let done: Vec<&str> = log.lines().filter(|l| l.contains(": unit ") && l.contains(" done in ")).collect();
    assert_eq!(done.len(), 10, "2 pretraining, 4 adaptation and 4 scratch units: {log}");
    assert!(done[0].contains("unit 1/10 done in") && done[9].contains("unit 10/10 done in"), "{log}");
    assert!(log.contains("unit 1/10 started: pretrain/"), "{log}");
    let out = d.path().join("out");
    for f in ["config.toml", "metrics.jsonl", "curves.json", "summary.md", "summary.csv", "curves.svg", "curves.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for f in ["success-curves.json", "success-summary.md", "success-summary.csv", "success-curves.svg", "success-curves.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // One checkpoint per pretraining unit, named after it.
    let mut ckpts: Vec<String> =
        std::fs::read_dir(out.join("checkpoints")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    ckpts.sort();
    assert_eq!(ckpts.len(), 2, "{ckpts:?}");
    assert!(ckpts[0].starts_with("pretrain-12-train-tasks-mt-seed-0-") && ckpts[0].ends_with(".safetensors"), "{ckpts:?}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("| MT |") && summary.contains("| scratch |"), "{summary}");
    // Every curve point is an evaluation of eval_episodes episodes, with return and success.
    let curves: Vec<serde_json::Value> = std::fs::read_dir(out.join("units"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    assert_eq!(curves.len(), 2 * 2 * 2, "adapt and scratch, 2 seeds, 2 held-out tasks");
    for c in &curves {
        let points = c["points"].as_array().unwrap();
        let steps: Vec<u64> = points.iter().map(|p| p["env_steps"].as_u64().unwrap()).collect();
        assert_eq!(steps, [0, 64, 128, 192], "{c}");
        for p in points {
            assert_eq!(p["episodes"], 4, "{p}");
            let success = p["success"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&success) && p["ret"].as_f64().is_some(), "{p}");
        }
    }
}

/// Fewer evaluation episodes than envs: the evaluation env still has the agent's `num_envs`
/// envs (the fixture algo refuses any other batch), and only `eval_episodes` of them count.
#[test]
fn fewer_evaluation_episodes_than_envs_evaluate_with_the_agents_batch() {
    let (d, reg) = setup();
    let o = run_exp(d.path(), &reg, &GOOD.replace("eval_episodes = 4", "eval_episodes = 3").replace("seeds = [0, 1]", "seeds = [0]"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut points = 0;
    for entry in std::fs::read_dir(d.path().join("out/units")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "json") {
            let c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            for p in c["points"].as_array().unwrap() {
                assert_eq!(p["episodes"], 3, "{p}");
                points += 1;
            }
        }
    }
    assert_eq!(points, 4 * 2 * 2, "4 points, adapt and scratch, 2 held-out tasks");
}

/// `[adapt] scratch_env_config` gives the scratch baseline its own env config, spaces
/// included (the study's Atari scratch runs use each game's own action set): here 32-pixel
/// frames where the pretrained methods see 64. The fixture algo refuses observations of any
/// other size than it was built for, so the run only succeeds if each side gets its spaces.
#[test]
fn the_scratch_baseline_can_have_its_own_env_config_and_spaces() {
    let (d, reg) = setup();
    let text = GOOD.replace("eval_episodes = 4", "eval_episodes = 4\nscratch_env_config = { frame = 32 }").replace("seeds = [0, 1]", "seeds = [0]");
    let o = run_exp(d.path(), &reg, &text, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config = std::fs::read_to_string(d.path().join("out/config.toml")).unwrap();
    assert!(config.contains("scratch_env_config") && config.contains("frame = 32"), "{config}");
    let summary = std::fs::read_to_string(d.path().join("out/summary.md")).unwrap();
    assert!(summary.contains("| MT |") && summary.contains("| scratch |"), "{summary}");
    // A scratch env config the env refuses is an error naming the key.
    let bad = GOOD.replace("eval_episodes = 4", "eval_episodes = 4\nscratch_env_config = { frame = \"big\" }");
    assert_refused(&bad, &["exp.toml:15:", "adapt.scratch_env_config", "frame"]);
}

#[test]
fn a_scratch_only_experiment_needs_no_training_tasks_or_pretraining() {
    let (d, reg) = setup();
    let text = GOOD.replace("train = \"gridworld:0..12\"\n", "").replace("[pretrain]\nenv_steps = 400\n", "");
    let text = &text[..text.find("[[method]]").unwrap()];
    let o = run_exp(d.path(), &reg, text, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("unit 4/4 done in"), "2 seeds x 2 held-out tasks: {}", stderr(&o));
    let csv = std::fs::read_to_string(d.path().join("out/summary.csv")).unwrap();
    assert_eq!(csv.lines().nth(1).unwrap().split(',').take(3).collect::<Vec<_>>(), ["no pretraining", "scratch", "2"], "{csv}");
    // Methods still need their pretraining budget.
    assert_refused(&GOOD.replace("[pretrain]\nenv_steps = 400\n", ""), &["exp.toml:", "missing [pretrain] (env_steps): the methods pretrain"]);
}

/// `[report] reference_scores` adds scores normalised per held-out task, (s − low) / (high − low)
/// (Atari: random and human), and several held-out tasks get a figure and table each.
#[test]
fn reference_scores_normalise_and_each_held_out_task_gets_its_own_report() {
    let (d, reg) = setup();
    let text = GOOD.replace("seeds = [0, 1]", "seeds = [0]") + "[report]\nreference_scores = { \"12\" = [1.0, 3.0], \"13\" = [1.0, 3.0] }\n";
    let o = run_exp(d.path(), &reg, &text, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = d.path().join("out");
    let column = |file: &str, method: &str, col: usize| -> f64 {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        let row = text.lines().find(|l| l.contains(method)).unwrap_or_else(|| panic!("{method} not in {text}"));
        row.split(',').nth(col).unwrap().parse().unwrap()
    };
    let header = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let header: Vec<&str> = header.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "final_mean").unwrap();
    for method in ["MT", "scratch"] {
        let (raw, norm) = (column("summary.csv", method, col), column("normalised-summary.csv", method, col));
        assert!((norm - (raw - 1.0) / 2.0).abs() < 1e-9, "{method}: raw {raw}, normalised {norm}");
    }
    for f in ["normalised-curves.png", "normalised-summary.md"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let per_task: Vec<String> =
        std::fs::read_dir(out.join("per-task")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    for task in ["12", "13"] {
        assert!(per_task.iter().any(|f| f.starts_with(&format!("{task}-")) && f.ends_with("curves.png")), "{per_task:?}");
        assert!(per_task.iter().any(|f| f.starts_with(&format!("{task}-")) && f.ends_with("summary.md")), "{per_task:?}");
    }
    // Every held-out task needs a pair, and only held-out tasks may have one.
    assert_refused(
        &(GOOD.to_string() + "[report]\nreference_scores = { \"12\" = [1.0, 3.0] }\n"),
        &["exp.toml:", "report.reference_scores: held-out task '13' has no [low, high] pair"],
    );
    assert_refused(
        &(GOOD.to_string() + "[report]\nreference_scores = { \"12\" = [1.0, 3.0], \"13\" = [0.0, 1.0], \"3\" = [0.0, 1.0] }\n"),
        &["exp.toml:", "'3' is not a held-out task (they are: 12, 13)"],
    );
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
        let pretrained = *param0_of(&out, "pretrain/12 train tasks/MT/seed 0").last().unwrap();
        let adapted = param0_of(&out, "adapt/12 train tasks/MT/seed 0/12");
        assert!(pretrained >= 10.0, "pretraining made {pretrained} updates");
        let start = if reset { 0.0 } else { pretrained };
        assert_eq!(adapted[0], start + 1.0, "fine-tuning {label}: {adapted:?}");
    }
}

#[test]
fn adaptation_starts_through_load_pretrained() {
    // plugin-api 0.2.5: the host starts an adaptation with `load_pretrained`, not `load` (which
    // only continues a unit from its own checkpoint). The fixture panics in it when asked:
    // pretraining is unharmed and every adaptation fails naming the call.
    let (d, reg) = setup();
    let text = GOOD.replace("seeds = [0, 1]", "seeds = [0]").replace("plugin = \"const\"", "plugin = \"const\"\nconfig = { panic_in = \"load_pretrained\" }");
    let o = run_exp(d.path(), &reg, &text, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("plugin 'const': load_pretrained failed: panicked"), "{err}");
    assert!(err.contains("2 of 5 units failed"), "{err}");
    let units: Vec<String> =
        std::fs::read_dir(d.path().join("out/units")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(units.iter().any(|u| u.starts_with("pretrain-")), "{units:?}");
    assert!(!units.iter().any(|u| u.starts_with("adapt-")), "{units:?}");
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
    assert_refused(&GOOD.replace("eval_every = 64", "eval_every = 500"), &["exp.toml:13:", "adapt.eval_every must be between 1 and adapt.env_steps (192)"]);
    // Evaluations happen between updates: 8 steps x 4 envs of the fixture algo.
    assert_refused(
        &GOOD.replace("eval_every = 64", "eval_every = 48"),
        &["exp.toml:13:", "adapt.eval_every (48) must be a multiple of the update interval of algo plugin 'const' (32 env steps"],
    );
    assert_refused(&GOOD.replace("eval_episodes = 4", "eval_episodes = 4\neval_policy = \"best\""), &["exp.toml:15:", "adapt.eval_policy 'best' must be sample or greedy"]);
    assert_refused(
        &GOOD.replace("eval_episodes = 4", "eval_episodes = 4\neval_envs = 2"),
        &["exp.toml:15:", "adapt.eval_envs (2) must equal num_envs (4): the agent acts for num_envs envs at once"],
    );
    assert_refused(&GOOD.replace("num_envs = 4", "num_envs = 4\nthreads = 0"), &["exp.toml:3:", "threads must be at least 1"]);
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
    let o = run_exp(d.path(), &reg, &GOOD.replace("env_steps = 192", "env_steps = 256"), &["--resume"]);
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

/// Each unit's result files, by unit name (what the curve and metrics files hold).
fn unit_results(run_dir: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(run_dir.join("units")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let c: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            out.insert(c["unit"].as_str().unwrap().to_string(), c.to_string());
        }
    }
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    for line in metrics.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        out.entry(format!("metrics {}", v["unit"].as_str().unwrap())).or_default().push_str(line);
    }
    out
}

#[test]
fn reordering_methods_leaves_every_methods_numbers_unchanged() {
    // Seeds come from unit names (labels), never from positions in the file.
    let two = GOOD.replace("plugin = \"const\"", "plugin = \"const\"\nconfig = { update_adds = 0.5 }")
        + "[[method]]\nlabel = \"loop\"\nmeta = \"fx-meta\"\n";
    let swapped = two.replace(
        "[[method]]\nlabel = \"MT\"\nmeta = \"mt\"\n[[method]]\nlabel = \"loop\"\nmeta = \"fx-meta\"\n",
        "[[method]]\nlabel = \"loop\"\nmeta = \"fx-meta\"\n[[method]]\nlabel = \"MT\"\nmeta = \"mt\"\n",
    );
    assert_ne!(two, swapped);
    let (d1, reg1) = setup();
    let o = run_exp(d1.path(), &reg1, &two, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (d2, reg2) = setup();
    let o = run_exp(d2.path(), &reg2, &swapped, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (unit_results(&d1.path().join("out")), unit_results(&d2.path().join("out")));
    assert_eq!(a.len(), b.len());
    for (unit, result) in &a {
        assert_eq!(Some(result), b.get(unit), "unit {unit} changed when the methods were swapped");
    }
    // The comparison can tell units apart: another seed gives other numbers.
    assert_ne!(a["adapt/12 train tasks/MT/seed 0/12"], a["adapt/12 train tasks/MT/seed 1/12"].replace("seed 1", "seed 0"));
}

#[test]
fn a_damaged_checkpoint_is_a_one_line_error_naming_it() {
    let (d, reg) = setup();
    let one_seed = GOOD.replace("seeds = [0, 1]", "seeds = [0]");
    assert!(run_exp(d.path(), &reg, &one_seed, &[]).status.success());
    let out = d.path().join("out");
    let ckpt = std::fs::read_dir(out.join("checkpoints")).unwrap().next().unwrap().unwrap().path();
    let good = std::fs::read(&ckpt).unwrap();
    let redo_adaptation = || {
        for e in std::fs::read_dir(out.join("units")).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().starts_with("adapt-") {
                std::fs::remove_file(p).unwrap();
            }
        }
    };
    // One flipped byte in the algo state: caught by its SHA-256, not loaded.
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    for (bytes, needle) in [(flipped, "does not match its SHA-256"), (good[..good.len() / 2].to_vec(), "truncated"), (b"junk".to_vec(), "shorter than its header")] {
        std::fs::write(&ckpt, &bytes).unwrap();
        redo_adaptation();
        let o = run_exp(d.path(), &reg, &one_seed, &["--resume"]);
        assert_one_line_error(&o, &[&ckpt.display().to_string(), "damaged or not a metarl checkpoint", needle]);
    }
}

#[test]
fn a_meta_plugin_that_skips_an_evaluation_is_refused() {
    let text = GOOD.replace("meta = \"mt\"", "meta = \"fx-meta\"\nconfig = { ignore_eval = true }");
    let (d, reg) = setup();
    let o = run_exp(d.path(), &reg, &text, &[]);
    assert_one_line_error(&o, &["the meta plugin did not carry out the evaluation the host asked for"]);
}

#[test]
fn evaluation_policy_reaches_the_agent() {
    // The fixture algo counts the acts it was asked to make greedily and reports the count
    // with its next update, so the adaptation unit's metrics show what evaluations asked for.
    let greedy_acts = |policy: &str| -> f64 {
        let text = GOOD.replace("seeds = [0, 1]", "seeds = [0]").replace("eval_episodes = 4", &format!("eval_episodes = 4\neval_policy = \"{policy}\""));
        let (d, reg) = setup();
        let o = run_exp(d.path(), &reg, &text, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let metrics = std::fs::read_to_string(d.path().join("out/metrics.jsonl")).unwrap();
        metrics
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["unit"].as_str().unwrap().starts_with("adapt/"))
            .filter_map(|v| v["acted_deterministic"].as_f64())
            .fold(0.0, f64::max)
    };
    assert!(greedy_acts("greedy") > 0.0);
    assert_eq!(greedy_acts("sample"), 0.0);
}
