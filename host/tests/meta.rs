//! Meta plugins over the plugin interface alone, with a test algo whose updates are known.

mod common;
use abi_stable::std_types::RSlice;
use metarl::loader::{check, Plugin};
use metarl::registry::Registry;
use metarl::services::PhaseServices;
use metarl_plugin_api::algo::AlgoRequest;
use metarl_plugin_api::meta::MetaContext;
use metarl_plugin_api::types::*;

use common::*;

fn load(package: &str, name: &str, kind: &str) -> Plugin {
    let reg = Registry::parse(std::path::Path::new("/t/registry.toml"), &entry(name, kind, &plugin(package))).unwrap();
    Plugin::load(&reg.entries[0]).unwrap()
}

/// An algo request for 4 gridworld envs, with `config` for the fixture algo.
fn gridworld_request(config: &str) -> AlgoRequest {
    AlgoRequest {
        obs: ObsSpace::image(64, 64, 3),
        action: ActionSpace::discrete(5),
        num_envs: 4,
        context_dim: 0,
        seed: 0,
        device: "cpu".into(),
        threads: 1,
        config: config.into(),
    }
}

#[test]
fn reptile_outer_update_is_exact_through_the_plugin_interface() {
    let env = load("metarl-env-gridworld", "gridworld", "env");
    let algo_p = load("metarl-fixture-algo", "adder", "algo");
    let reptile = load("metarl-meta-reptile", "reptile", "meta");
    // Each update adds 1 to every parameter: after k = 3 inner updates θ_k = θ_old + 3, so with
    // ε = 0.5 one outer iteration must leave θ_old + 1.5.
    let mut algo = algo_p.new_algo(&gridworld_request("update_adds = 1.0")).unwrap();
    let before = check("adder", "params", algo.params()).unwrap().into_vec();
    let cfg = "inner_updates = 3\nepsilon = 0.5\nepsilon_end = 0.5\n";
    let mut meta = reptile.new_meta(&meta_request(7, cfg)).unwrap();
    let mut reports = Vec::new();
    let mut services = PhaseServices::new(
        &env,
        "gridworld",
        String::new(),
        vec![3, 5, 9],
        1,
        None,
        Box::new(|_, steps, scalars| {
            let eps = scalars.iter().find(|s| s.name.as_str() == "reptile_epsilon").map(|s| s.value);
            let task = scalars.iter().find(|s| s.name.as_str() == "reptile_task").map(|s| s.value);
            reports.push((steps, eps, task));
            Ok(true)
        }),
    );
    // The fixture wants 8 steps per env per update: one outer iteration is 3 x 8 x 4 env steps.
    let ctx = MetaContext { host: services.handle(), algo: &mut algo, tasks: RSlice::from_slice(&[3, 5, 9]), budget_env_steps: 96, num_envs: 4, seed: 1 };
    check("reptile", "pretrain", meta.pretrain(ctx)).unwrap();
    assert_eq!(services.envs_built, 1, "one env per outer iteration, on one task");
    drop(services);
    let after = check("adder", "params", algo.params()).unwrap().into_vec();
    let expected: Vec<f32> = before.iter().map(|p| p + 1.5).collect();
    assert_eq!(after, expected);
    // One report as the phase starts, one after the outer iteration.
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0], (0, None, None));
    let (steps, eps, task) = reports[1];
    assert_eq!((steps, eps), (96, Some(0.5)));
    assert!([3.0, 5.0, 9.0].contains(&task.unwrap()), "the sampled task is a training task");
}

/// Off-policy Reptile as the study's Atari code runs it: one env on all training tasks, and
/// every update an outer iteration (one task's buffer, k inner steps, then the outer step with
/// ε ramped 0 → 1 over pretraining).
#[test]
fn reptile_off_policy_makes_every_update_an_outer_iteration_over_one_task_buffer() {
    let env = load("metarl-env-gridworld", "gridworld", "env");
    let algo_p = load("metarl-fixture-algo", "offpol", "algo");
    let reptile = load("metarl-meta-reptile", "reptile", "meta");
    // Each gradient step adds 1 to every parameter.
    let mut algo = algo_p.new_algo(&gridworld_request("off_policy = true\nupdate_adds = 1.0")).unwrap();
    let before = check("offpol", "params", algo.params()).unwrap().into_vec();
    let mut meta = reptile.new_meta(&meta_request(3, "inner_updates = 3\nepsilon = 0.0\nepsilon_end = 1.0\n")).unwrap();
    let train: Vec<u64> = vec![2, 4, 6, 8];
    let mut reports: Vec<(u64, Vec<(String, f64)>)> = Vec::new();
    let mut services = PhaseServices::new(
        &env,
        "gridworld",
        String::new(),
        train.clone(),
        1,
        None,
        Box::new(|_, steps, scalars| {
            if steps > 0 {
                reports.push((steps, scalars.iter().map(|s| (s.name.to_string(), s.value)).collect()));
            }
            Ok(true)
        }),
    );
    // 8 steps per env per update, 4 envs: an update (outer iteration) every 32 env steps.
    let ctx = MetaContext { host: services.handle(), algo: &mut algo, tasks: RSlice::from_slice(&train), budget_env_steps: 320, num_envs: 4, seed: 1 };
    check("reptile", "pretrain", meta.pretrain(ctx)).unwrap();
    assert_eq!(services.envs_built, 1, "one env plays all training tasks");
    drop(services);

    let get = |p: &[(String, f64)], k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| *v).unwrap();
    assert_eq!(reports.len(), 10);
    let mut expected_gain = 0.0;
    let mut chosen = std::collections::BTreeSet::new();
    for (i, (steps, p)) in reports.iter().enumerate() {
        assert_eq!(*steps, 32 * (i as u64 + 1));
        assert_eq!((get(p, "plan_tasks"), get(p, "plan_grad_steps")), (1.0, 3.0), "one task's buffer, k = 3 inner steps");
        let task = get(p, "reptile_task") as u64;
        assert_eq!(get(p, "plan_task_0") as u64, task);
        assert!(train.contains(&task) && get(p, "plan_tasks_recorded") == 1.0, "a training task with data: {task}");
        chosen.insert(task);
        // ε = T / T_max after this update's env steps; θ moves ε of the inner updates' +3.
        let eps = get(p, "reptile_epsilon");
        assert!((eps - *steps as f64 / 320.0).abs() < 1e-12, "{eps} at {steps}");
        expected_gain += 3.0 * eps;
    }
    assert!(chosen.len() > 1, "the task is re-drawn each outer iteration: {chosen:?}");
    let after = check("offpol", "params", algo.params()).unwrap().into_vec();
    for (a, b) in after.iter().zip(&before) {
        assert!((a - b - expected_gain as f32).abs() < 1e-4, "{a} - {b} != {expected_gain}");
    }
}

/// An off-policy update that takes no step (Rainbow, when the drawn game was just begun and
/// has no complete n-step window) is no outer iteration: θ stays, and no ε is reported.
#[test]
fn reptile_off_policy_makes_no_outer_step_for_an_update_that_took_none() {
    let env = load("metarl-env-gridworld", "gridworld", "env");
    let algo_p = load("metarl-fixture-algo", "offpol", "algo");
    let reptile = load("metarl-meta-reptile", "reptile", "meta");
    let mut algo = algo_p.new_algo(&gridworld_request("off_policy = true\nupdate_adds = 1.0\nskip_updates = 2")).unwrap();
    let before = check("offpol", "params", algo.params()).unwrap().into_vec();
    let mut meta = reptile.new_meta(&meta_request(3, "inner_updates = 3\nepsilon = 0.0\nepsilon_end = 1.0\n")).unwrap();
    let train: Vec<u64> = vec![2, 4];
    let mut eps: Vec<Option<f64>> = Vec::new();
    let mut services = PhaseServices::new(
        &env,
        "gridworld",
        String::new(),
        train.clone(),
        1,
        None,
        Box::new(|_, steps, scalars| {
            if steps > 0 {
                eps.push(scalars.iter().find(|s| s.name.as_str() == "reptile_epsilon").map(|s| s.value));
            }
            Ok(true)
        }),
    );
    // An update every 32 env steps: 5 updates, the first two of which take no step.
    let ctx = MetaContext { host: services.handle(), algo: &mut algo, tasks: RSlice::from_slice(&train), budget_env_steps: 160, num_envs: 4, seed: 1 };
    check("reptile", "pretrain", meta.pretrain(ctx)).unwrap();
    drop(services);
    assert_eq!(eps.len(), 5);
    assert_eq!(eps[..2], [None, None], "no outer step for the updates that took none");
    let gain: f64 = eps[2..].iter().map(|e| 3.0 * e.expect("an outer step")).sum();
    assert!((gain - 3.0 * (96.0 + 128.0 + 160.0) / 160.0).abs() < 1e-9, "{gain}");
    let after = check("offpol", "params", algo.params()).unwrap().into_vec();
    for (a, b) in after.iter().zip(&before) {
        assert!((a - b - gain as f32).abs() < 1e-4, "{a} - {b} != {gain}");
    }
}

#[test]
fn reptile_refuses_bad_config() {
    let reptile = load("metarl-meta-reptile", "reptile", "meta");
    let err = reptile.new_meta(&meta_request(0, "epsilon = 1.5")).err().unwrap().to_string();
    assert!(err.contains("epsilon and epsilon_end must be within [0, 1]"), "{err}");
    let err = reptile.new_meta(&meta_request(0, "inner = 3")).err().unwrap().to_string();
    assert!(err.contains("reptile config: unknown field `inner`"), "{err}");
}

#[test]
fn mt_off_policy_updates_sample_k_distinct_training_task_buffers() {
    let env = load("metarl-env-gridworld", "gridworld", "env");
    let algo_p = load("metarl-fixture-algo", "offpol", "algo");
    let mt = load("metarl-meta-mt", "mt", "meta");
    let mut algo = algo_p.new_algo(&gridworld_request("off_policy = true")).unwrap();
    let cfg = "tasks_per_update = 3\nsamples_per_task = 16\ngrad_steps = 2\n";
    let mut meta = mt.new_meta(&meta_request(5, cfg)).unwrap();
    let train: Vec<u64> = (0..8).collect();
    let mut plans: Vec<Vec<(String, f64)>> = Vec::new();
    let mut services = PhaseServices::new(
        &env,
        "gridworld",
        String::new(),
        train.clone(),
        1,
        None,
        Box::new(|_, steps, scalars| {
            // The report as the phase starts carries no update.
            if steps > 0 {
                plans.push(scalars.iter().map(|s| (s.name.to_string(), s.value)).collect());
            }
            Ok(true)
        }),
    );
    // 8 steps per env per update (the fixture's steps_per_update), 4 envs: 40 updates.
    let ctx = MetaContext { host: services.handle(), algo: &mut algo, tasks: RSlice::from_slice(&train), budget_env_steps: 1280, num_envs: 4, seed: 1 };
    check("mt", "pretrain", meta.pretrain(ctx)).unwrap();
    assert_eq!(services.envs_built, 1, "one env sampling all training tasks");
    drop(services);

    assert_eq!(plans.len(), 40);
    let get = |p: &[(String, f64)], k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| *v).unwrap();
    let mut chosen = std::collections::BTreeSet::new();
    for p in &plans {
        assert_eq!((get(p, "plan_tasks"), get(p, "plan_samples_per_task"), get(p, "plan_grad_steps")), (3.0, 16.0, 2.0));
        let tasks: std::collections::BTreeSet<u64> = (0..3).map(|i| get(p, &format!("plan_task_{i}")) as u64).collect();
        assert_eq!(tasks.len(), 3, "K distinct tasks per update: {tasks:?}");
        assert!(tasks.iter().all(|t| train.contains(t)), "only training tasks: {tasks:?}");
        chosen.extend(tasks);
    }
    // The env samples every training task, and the chosen buffers are ones with data.
    assert_eq!(get(plans.last().unwrap(), "tasks_seen"), 8.0);
    assert_eq!(get(plans.last().unwrap(), "plan_tasks_recorded"), 3.0);
    // K tasks are re-drawn each update: over 40 updates every training task gets its turn.
    assert_eq!(chosen.len(), 8, "{chosen:?}");
}

/// Pretrains `mt` (config `cfg`) with the fixture off-policy algo on gridworld tasks 0..8,
/// then adapts a meta-method loaded from its state to task 9 with `algo` (the pretrained one
/// unless `fresh_algo`); returns the adaptation's update reports, or its error.
fn mt_adapt_plans(cfg: &str, fresh_algo: bool) -> Result<Vec<Vec<(String, f64)>>, String> {
    let env = load("metarl-env-gridworld", "gridworld", "env");
    let algo_p = load("metarl-fixture-algo", "offpol", "algo");
    let mt = load("metarl-meta-mt", "mt", "meta");
    let algo_cfg = "off_policy = true\nrefuse_unrecorded = true";
    let mut algo = algo_p.new_algo(&gridworld_request(algo_cfg)).unwrap();
    let mut meta = mt.new_meta(&meta_request(5, cfg)).unwrap();
    let train: Vec<u64> = (0..8).collect();
    let mut services = PhaseServices::new(&env, "gridworld", String::new(), train.clone(), 1, None, Box::new(|_, _, _| Ok(true)));
    let ctx = MetaContext { host: services.handle(), algo: &mut algo, tasks: RSlice::from_slice(&train), budget_env_steps: 640, num_envs: 4, seed: 1 };
    check("mt", "pretrain", meta.pretrain(ctx)).unwrap();
    drop(services);
    // The adaptation unit's meta-method comes from the pretrained state, as the host does it.
    let state = check("mt", "save", meta.save()).unwrap();
    let mut meta = mt.new_meta(&meta_request(5, cfg)).unwrap();
    check("mt", "load", meta.load(state.as_slice().into())).unwrap();
    if fresh_algo {
        algo = algo_p.new_algo(&gridworld_request(algo_cfg)).unwrap();
    }
    let held_out = [9u64];
    let mut plans: Vec<Vec<(String, f64)>> = Vec::new();
    let mut services = PhaseServices::new(
        &env,
        "gridworld",
        String::new(),
        held_out.to_vec(),
        1,
        None,
        Box::new(|_, steps, scalars| {
            if steps > 0 {
                plans.push(scalars.iter().map(|s| (s.name.to_string(), s.value)).collect());
            }
            Ok(true)
        }),
    );
    let ctx = MetaContext { host: services.handle(), algo: &mut algo, tasks: RSlice::from_slice(&held_out), budget_env_steps: 320, num_envs: 4, seed: 2 };
    let r = check("mt", "adapt", meta.adapt(ctx)).map_err(|e| e.to_string());
    drop(services);
    r.map(|()| plans)
}

#[test]
fn mt_fine_tunes_in_isolation_or_with_the_training_tasks_stored_data() {
    let get = |p: &[(String, f64)], k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| *v).unwrap();
    // 320 steps over 4 envs at 8 steps per env per update: 10 updates.
    let isolated = mt_adapt_plans("tasks_per_update = 3", false).unwrap();
    assert_eq!(isolated.len(), 10);
    for p in &isolated {
        assert_eq!((get(p, "plan_tasks"), get(p, "plan_task_0")), (1.0, 9.0), "the held-out task alone");
    }

    let joint = mt_adapt_plans("tasks_per_update = 3\nsamples_per_task = 16\nfine_tune = \"with-training-tasks\"", false).unwrap();
    assert_eq!(joint.len(), 10);
    let mut training = std::collections::BTreeSet::new();
    for p in &joint {
        assert_eq!((get(p, "plan_tasks"), get(p, "plan_samples_per_task")), (3.0, 16.0));
        assert_eq!(get(p, "plan_task_0"), 9.0, "the held-out task is in every batch");
        let others = [get(p, "plan_task_1") as u64, get(p, "plan_task_2") as u64];
        assert!(others[0] != others[1] && others.iter().all(|t| *t < 8), "two distinct training tasks: {others:?}");
        // Every planned task has recorded rows in the algo (the pretrained buffers).
        assert_eq!(get(p, "plan_tasks_recorded"), 3.0);
        training.extend(others);
    }
    assert!(training.len() >= 6, "training tasks are re-drawn each update: {training:?}");

    // An algo without the training tasks' data (a checkpoint saved without replay) is refused
    // before any step, in one line naming the option and the cause.
    let e = mt_adapt_plans("fine_tune = \"with-training-tasks\"", true).unwrap_err();
    assert!(e.contains("fine_tune = \"with-training-tasks\"") && e.contains("save_replay") && e.contains("nothing recorded for task 0"), "{e}");
    assert!(!e.contains('\n'), "{e}");

    // On-policy algos have nothing stored to fine-tune with.
    let env = load("metarl-env-gridworld", "gridworld", "env");
    let algo_p = load("metarl-fixture-algo", "onpol", "algo");
    let mt = load("metarl-meta-mt", "mt", "meta");
    let mut algo = algo_p.new_algo(&gridworld_request("")).unwrap();
    let mut meta = mt.new_meta(&meta_request(5, "fine_tune = \"with-training-tasks\"")).unwrap();
    let held_out = [9u64];
    let mut services = PhaseServices::new(&env, "gridworld", String::new(), held_out.to_vec(), 1, None, Box::new(|_, _, _| Ok(true)));
    let ctx = MetaContext { host: services.handle(), algo: &mut algo, tasks: RSlice::from_slice(&held_out), budget_env_steps: 64, num_envs: 4, seed: 2 };
    let e = check("mt", "adapt", meta.adapt(ctx)).unwrap_err().to_string();
    assert!(e.contains("needs an off-policy algo"), "{e}");
    assert!(mt.new_meta(&meta_request(5, "fine_tune = \"jointly\"")).is_err());
}
