//! The TensorBoard event files of `metarl run`, read back with TensorBoard's own reader (the
//! pinned `tensorboard` package of `.ci/requirements.txt`, in the project venv): one directory
//! per unit, the `train/*` scalars equal to `metrics.jsonl`, the `eval/*` points equal to the
//! unit's curve; a restarted unit starts its directory anew, and a run whose event files
//! cannot be written still finishes, with the same results.

mod common;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

fn setup() -> (tempfile::TempDir, PathBuf) {
    registry_of(&[
        ("gridworld", "env", "metarl-env-gridworld"),
        ("ppo", "algo", "metarl-algo-ppo"),
        ("mt", "meta", "metarl-meta-mt"),
    ])
}

/// PPO on the small toy env (real, varied losses), with pretraining, adaptation and scratch
/// units; a few seconds.
const EXPERIMENT: &str = r#"seeds = [0]
num_envs = 4
threads = 1
[env]
plugin = "gridworld"
train = "gridworld:0..12"
test = "gridworld:12..13"
config = { size = 4, frame = 16, shared_goal_colour = true }
[algo]
plugin = "ppo"
config = { preset = "cpu-small", num_steps = 32 }
[pretrain]
env_steps = 1024
[adapt]
env_steps = 512
eval_every = 128
eval_episodes = 8
[[method]]
label = "MT"
meta = "mt"
[report]
bootstrap_resamples = 100
"#;

/// Reads every unit directory under `sys.argv[1]`: the records through TensorBoard's
/// CRC-checking record reader (a bad CRC raises, where the accumulator would silently stop at
/// it), then the scalars through `EventAccumulator`, keeping every point.
const READER: &str = r#"
import json, os, sys
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow

root = sys.argv[1]
out = {}
for unit in sorted(os.listdir(root)):
    d = os.path.join(root, unit)
    files = sorted(os.listdir(d))
    records = 0
    for f in files:
        reader = pywrap_tensorflow.PyRecordReader_New(os.path.join(d, f))
        while True:
            try:
                reader.GetNext()
            except errors.OutOfRangeError:
                break
            records += 1
    acc = event_accumulator.EventAccumulator(d, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    out[unit] = {
        "files": files,
        "records": records,
        "file_version": acc.file_version,
        "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]},
    }
json.dump(out, sys.stdout)
"#;

/// The project venv's Python: `$METARL_PYTHON` (set by `.ci/setup`), else `.venv/bin/python`.
fn python() -> PathBuf {
    std::env::var_os("METARL_PYTHON").map(PathBuf::from).unwrap_or_else(|| root().join(".venv/bin/python"))
}

/// What TensorBoard reads from one unit's directory.
#[derive(Debug)]
struct UnitEvents {
    files: Vec<String>,
    records: u64,
    file_version: f64,
    scalars: BTreeMap<String, Vec<(u64, f32)>>,
}

fn read_events(tensorboard: &Path) -> BTreeMap<String, UnitEvents> {
    let py = python();
    let o = Command::new(&py).arg("-c").arg(READER).arg(tensorboard).output().unwrap_or_else(|e| {
        panic!("cannot run {} ({e}): run `bash .ci/setup`, which installs the pinned tensorboard into .venv", py.display())
    });
    assert!(o.status.success(), "TensorBoard's reader failed on {}:\n{}", tensorboard.display(), stderr(&o));
    let json: BTreeMap<String, Value> = serde_json::from_slice(&o.stdout).unwrap();
    json.into_iter()
        .map(|(unit, v)| {
            let scalars = v["scalars"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(tag, points)| {
                    let points = points.as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap() as f32));
                    (tag.clone(), points.collect())
                })
                .collect();
            let files = v["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
            let events = UnitEvents {
                files,
                records: v["records"].as_u64().unwrap(),
                file_version: v["file_version"].as_f64().unwrap_or(f64::NAN),
                scalars,
            };
            (unit, events)
        })
        .collect()
}

/// The units of a run, by id: the stems of `units/*.jsonl` (every unit writes one).
fn unit_ids(out: &Path) -> BTreeSet<String> {
    std::fs::read_dir(out.join("units"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_string())
        .collect()
}

fn run(reg: &Path, exp: &Path, out: &Path, resume: bool) -> std::process::Output {
    let mut args = vec!["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()];
    if resume {
        args.push("--resume");
    }
    let o = metarl(reg, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

#[test]
fn event_files_hold_the_metrics_and_curves_of_every_unit() {
    let (d, reg) = setup();
    let exp = d.path().join("tb.toml");
    std::fs::write(&exp, EXPERIMENT).unwrap();
    let out = d.path().join("out");
    run(&reg, &exp, &out, false);

    let ids = unit_ids(&out);
    assert_eq!(ids.len(), 3, "pretraining, adaptation and scratch: {ids:?}");
    let events = read_events(&out.join("tensorboard"));
    // (a) One directory per unit, named by its id, with one event file.
    assert_eq!(events.keys().cloned().collect::<BTreeSet<_>>(), ids);
    for (id, e) in &events {
        assert_eq!(e.files.len(), 1, "{id}: {:?}", e.files);
        let f = &e.files[0];
        let stamp = f.strip_prefix("events.out.tfevents.").and_then(|r| r.strip_suffix(".metarl"));
        assert!(stamp.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())), "{id}: {f}");
        assert_eq!(e.file_version, 2.0, "{id}: the first event says brain.Event:2");
        assert!(e.records > 1, "{id}: {} records", e.records);
    }

    let mut train_points = 0;
    let mut eval_points = 0;
    for (id, e) in &events {
        // (b) train/<name> at env_steps = every finite scalar of the unit's metrics.jsonl.
        let jsonl = std::fs::read_to_string(out.join("units").join(format!("{id}.jsonl"))).unwrap();
        let mut want: BTreeMap<String, Vec<(u64, f32)>> = BTreeMap::new();
        let mut report_steps = BTreeSet::new();
        for line in jsonl.lines() {
            let v: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
            let steps = v["env_steps"].as_u64().unwrap();
            report_steps.insert(steps);
            for (k, x) in &v {
                if k != "unit" && k != "env_steps" {
                    want.entry(format!("train/{k}")).or_default().push((steps, x.as_f64().unwrap() as f32));
                }
            }
        }
        let got: BTreeMap<String, Vec<(u64, f32)>> =
            e.scalars.iter().filter(|(t, _)| t.starts_with("train/")).map(|(t, p)| (t.clone(), p.clone())).collect();
        assert!(!want.is_empty(), "{id}: PPO reports its losses");
        assert_eq!(got, want, "{id}: train/* against {id}.jsonl");
        train_points += got.values().map(Vec::len).sum::<usize>();

        // Throughput at the reports, after the first.
        let perf = &e.scalars["perf/env_steps_per_s"];
        assert_eq!(perf.len(), report_steps.len() - 1, "{id}: {perf:?}");
        assert!(perf.iter().all(|(s, v)| report_steps.contains(s) && *s > 0 && v.is_finite() && *v > 0.0), "{id}: {perf:?}");

        // (c) eval/return and eval/success = the curve of units/<id>.json; none for pretraining.
        let curve = out.join("units").join(format!("{id}.json"));
        let (want_ret, want_success): (Vec<(u64, f32)>, Vec<(u64, f32)>) = if curve.exists() {
            let c: Value = serde_json::from_slice(&std::fs::read(&curve).unwrap()).unwrap();
            let points = c["points"].as_array().unwrap();
            let pick = |key: &str| -> Vec<(u64, f32)> {
                points
                    .iter()
                    .filter(|p| !p[key].is_null())
                    .map(|p| (p["env_steps"].as_u64().unwrap(), p[key].as_f64().unwrap() as f32))
                    .collect()
            };
            (pick("ret"), pick("success"))
        } else {
            assert!(id.starts_with("pretrain-"), "{id} has no curve file");
            (Vec::new(), Vec::new())
        };
        if !want_ret.is_empty() {
            assert_eq!(want_ret.len(), 5, "{id}: 0, 128, 256, 384, 512");
        }
        let tag = |t: &str| e.scalars.get(t).cloned().unwrap_or_default();
        assert_eq!(tag("eval/return"), want_ret, "{id}: eval/return against the curve");
        assert_eq!(tag("eval/success"), want_success, "{id}: eval/success against the curve");
        eval_points += want_ret.len();

        let known = |t: &str| t.starts_with("train/") || t.starts_with("eval/") || t == "perf/env_steps_per_s";
        assert!(e.scalars.keys().all(|t| known(t)), "{id}: {:?}", e.scalars.keys());
    }
    eprintln!("{} units, {train_points} train/* points and {eval_points} eval/return points read back", events.len());
    assert_eq!(eval_points, 10, "adaptation and scratch, 5 points each");
}

/// A unit run again (its result removed, as after an interruption) starts its event directory
/// anew; the run's result files do not depend on the event files, which may even be impossible
/// to write (a warning, and the run goes on).
#[test]
fn a_restarted_unit_starts_its_events_anew_and_event_failures_only_warn() {
    let (d, reg) = setup();
    let exp = d.path().join("tb.toml");
    std::fs::write(&exp, EXPERIMENT).unwrap();
    let out = d.path().join("out");
    run(&reg, &exp, &out, false);
    let before = run_files(&out);
    let scratch = unit_ids(&out).into_iter().find(|id| id.starts_with("scratch-")).unwrap();
    let dir = out.join("tensorboard").join(&scratch);

    // The scratch unit redone: what its directory held is gone, one new event file is there.
    std::fs::remove_file(out.join("units").join(format!("{scratch}.json"))).unwrap();
    std::fs::write(dir.join("events.out.tfevents.1.metarl"), b"half-written by an interrupted run").unwrap();
    let o = run(&reg, &exp, &out, true);
    assert!(!stderr(&o).contains("TensorBoard"), "{}", stderr(&o));
    let files: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_ne!(files[0], "events.out.tfevents.1.metarl");
    assert_eq!(run_files(&out), before, "redoing a unit changes no result file");

    // Event files that cannot be written: one warning, and the same results.
    std::fs::remove_dir_all(out.join("tensorboard")).unwrap();
    std::fs::write(out.join("tensorboard"), b"a file where the event directories should go").unwrap();
    std::fs::remove_file(out.join("units").join(format!("{scratch}.json"))).unwrap();
    run(&reg, &exp, &out, true);
    // The unit ran in a worker process, whose log holds its warnings.
    let log = std::fs::read_to_string(out.join("logs").join(format!("{scratch}.log"))).unwrap();
    assert_eq!(log.matches("cannot write TensorBoard events").count(), 1, "{log}");
    std::fs::remove_file(out.join("tensorboard")).unwrap();
    assert_eq!(run_files(&out), before, "the results do not depend on the event files");
}
