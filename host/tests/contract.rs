//! The plugin-api 0.2 contract through the real boundary, with fixture plugins whose
//! behaviour is known: observations of several parts and composite actions, true final
//! observations where episodes are cut off, the training loop's learning-starts, and
//! per-task context rows in with dL/dz out, checked against finite differences.

mod common;
use abi_stable::std_types::RSlice;
use metarl::loader::{check, Plugin};
use metarl::registry::Registry;
use metarl::services::PhaseServices;
use metarl_plugin_api::algo::{AlgoBox, AlgoRequest, UpdatePlan};
use metarl_plugin_api::env::EnvRequest;
use metarl_plugin_api::meta::MetaContext;
use metarl_plugin_api::types::*;

use common::*;

fn load(package: &str, name: &str, kind: &str) -> Plugin {
    let reg = Registry::parse(std::path::Path::new("/t/registry.toml"), &entry(name, kind, &plugin(package))).unwrap();
    Plugin::load(&reg.entries[0]).unwrap()
}

fn scalar(scalars: &[Scalar], name: &str) -> f64 {
    scalars.iter().find(|s| s.name.as_str() == name).unwrap_or_else(|| panic!("no scalar {name}")).value
}

/// An algo of the fixture plugin for `spec`'s spaces.
fn fixture_algo(p: &Plugin, obs: Space, action: Space, context_dim: u32, config: &str) -> AlgoBox {
    let req = AlgoRequest { obs, action, num_envs: 4, context_dim, seed: 0, device: "cpu".into(), threads: 1, config: config.into() };
    p.new_algo(&req).unwrap()
}

/// Pretrains the fixture algo with MT on `family` for `budget` env steps; returns the scalars
/// of every update.
fn mt_pretrain(family: &str, algo: &mut AlgoBox, tasks: &[u64], budget: u64) -> Vec<Vec<Scalar>> {
    let env = load("metarl-fixture-env", "fx-env", "env");
    let mt = load("metarl-meta-mt", "mt", "meta");
    let mut meta = mt.new_meta(&meta_request(5, "tasks_per_update = 2")).unwrap();
    let mut updates = Vec::new();
    let mut services = PhaseServices::new(
        &env,
        family,
        String::new(),
        tasks.to_vec(),
        1,
        None,
        Box::new(|_, _, scalars| {
            if !scalars.is_empty() {
                updates.push(scalars.to_vec());
            }
            Ok(true)
        }),
    );
    let ctx = MetaContext { host: services.handle(), algo, tasks: RSlice::from_slice(tasks), budget_env_steps: budget, num_envs: 4, seed: 1 };
    check("mt", "pretrain", meta.pretrain(ctx)).unwrap();
    drop(services);
    updates
}

#[test]
fn multi_part_observations_composite_actions_and_final_observations_cross_the_boundary() {
    let env_p = load("metarl-fixture-env", "fx-env", "env");
    let req = EnvRequest { family: "parts".into(), tasks: vec![0].into(), num_envs: 1, trials: 1, seed: 0, threads: 1, config: "".into() };
    let spec = check("fx-env", "spec", env_p.new_env(&req).unwrap().spec()).unwrap();
    // The spaces a manipulation env would have.
    let roles: Vec<(String, Role, Dtype)> = spec.obs.parts.iter().map(|p| (p.name.to_string(), p.role, p.dtype)).collect();
    assert_eq!(
        roles,
        [
            ("rgb".to_string(), Role::IMAGE, Dtype::U8),
            ("point_cloud".to_string(), Role::POINT_CLOUD, Dtype::F32),
            ("proprio".to_string(), Role::VECTOR, Dtype::F32),
            ("intrinsics".to_string(), Role::CAMERA_INTRINSICS, Dtype::F32),
        ]
    );
    assert_eq!(spec.action.parts.len(), 2);
    assert!(spec.action.parts[0].role == Role::POSE && spec.action.parts[1].is_discrete());
    assert!(spec.caps.contains(Caps::ENV_FINAL_OBS));

    // Off-policy MT over four tasks: every act and record is checked part by part against the
    // spaces by both fixtures (a wrong part, dtype or length would fail the phase).
    let algo_p = load("metarl-fixture-algo", "fx-algo", "algo");
    let mut algo = fixture_algo(&algo_p, spec.obs.clone(), spec.action.clone(), 0, "off_policy = true\nsteps_per_update = 1");
    let updates = mt_pretrain("parts", &mut algo, &[0, 1, 2, 3], 4 * 40);
    let last = updates.last().unwrap();
    // Episodes are cut off after 4 steps: 10 per env in 40 steps, minus those still running.
    let rows = scalar(last, "final_rows");
    assert!(rows >= 4.0 * 9.0, "truncated rows with a final observation: {rows}");
    // The final observation is the episode's last (step count 4), not the next episode's
    // first (step count 0), which is what next_obs holds on those rows.
    assert_eq!(scalar(last, "final_first_sum"), 4.0 * rows);
    assert_eq!(scalar(last, "next_first_sum"), 0.0);
}

#[test]
fn the_training_loop_waits_for_learning_starts_then_updates_every_steps_per_update() {
    let algo_p = load("metarl-fixture-algo", "fx-algo", "algo");
    let cfg = "off_policy = true\nsteps_per_update = 2\nlearning_starts = 64";
    let mut algo = fixture_algo(&algo_p, ObsSpace::vector(2), ActionSpace::discrete(2), 0, cfg);
    // 4 envs x 2 steps = 8 env steps per update; nothing before 64 are recorded; 160 in all.
    let updates = mt_pretrain("count", &mut algo, &[0], 160);
    let recorded: Vec<f64> = updates.iter().map(|u| scalar(u, "recorded")).collect();
    assert_eq!(recorded.first(), Some(&64.0), "{recorded:?}");
    assert_eq!(recorded.last(), Some(&160.0), "the budget is spent exactly");
    assert_eq!(updates.len(), (160 - 64) / 8 + 1);
    assert!(updates.iter().all(|u| scalar(u, "plan_tasks") == 1.0 && scalar(u, "plan_samples_per_task") == 32.0));
}

#[test]
fn context_gradient_is_the_first_steps_and_matches_finite_differences() {
    let algo_p = load("metarl-fixture-algo", "fx-algo", "algo");
    let mut algo = fixture_algo(&algo_p, ObsSpace::vector(2), ActionSpace::discrete(2), 3, "off_policy = true");
    assert!(check("fx-algo", "info", algo.info()).unwrap().caps.contains(Caps::CONTEXT_GRAD));
    let tasks = vec![2u64, 0];
    let z: Vec<f32> = vec![0.3, -1.2, 0.7, 1.5, 0.25, -0.4];
    let plan = |context: &[f32], grad_steps: u32, want: bool| UpdatePlan {
        context: context.to_vec().into(),
        want_context_grad: want,
        ..UpdatePlan::off_policy(tasks.clone(), 4, grad_steps)
    };
    let mut eval = |context: &[f32], grad_steps: u32| check("fx-algo", "update", algo.update(&plan(context, grad_steps, true))).unwrap();

    // grad_steps = 0 computes the loss and its gradient and changes nothing.
    let probe = eval(&z, 0);
    let g = probe.context_grad.to_vec();
    assert_eq!(g.len(), tasks.len() * 3, "one row per plan task");
    assert_eq!(probe.grad_steps, 0);
    let again = eval(&z, 0);
    assert_eq!(scalar(&probe.scalars, "param0"), scalar(&again.scalars, "param0"));
    // Central differences of the loss, element by element.
    let h = 1e-2f32;
    for i in 0..z.len() {
        let (mut up, mut down) = (z.clone(), z.clone());
        up[i] += h;
        down[i] -= h;
        let fd = (scalar(&eval(&up, 0).scalars, "loss") - scalar(&eval(&down, 0).scalars, "loss")) / (2.0 * h as f64);
        assert!((fd - g[i] as f64).abs() < 1e-3 * (1.0 + fd.abs()), "element {i}: finite difference {fd}, reported {}", g[i]);
    }
    // Row i belongs to plan.tasks[i] (the fixture's target for task t is t + 1): the finite
    // differences above checked each row against its own task's loss.
    assert_ne!(g[..3], g[3..]);

    // Three gradient steps move the weights; the reported gradient is still the first step's.
    let stepped = eval(&z, 3);
    assert_eq!(stepped.grad_steps, 3);
    assert_ne!(scalar(&stepped.scalars, "param0"), scalar(&probe.scalars, "param0"), "the weights moved");
    assert_eq!(stepped.context_grad.to_vec(), g, "the gradient at the parameters before the update");
}
