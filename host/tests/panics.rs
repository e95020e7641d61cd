//! A plugin that panics inside any call gives an error naming the plugin and the call; the
//! host keeps running. Also: a meta plugin drives an env and an algo from two other
//! libraries through the host, and plugin log records reach the host's logger.

mod common;
use abi_stable::std_types::RSlice;
use metarl::loader::{check, Plugin};
use metarl::registry::Registry;
use metarl::services::PhaseServices;
use metarl_plugin_api::algo::{ActInput, ActOutput, AlgoBox, AlgoRequest, Transitions, UpdatePlan};
use metarl_plugin_api::env::{EnvRequest, ResetBuffers, StepBuffers};
use metarl_plugin_api::meta::MetaContext;
use metarl_plugin_api::types::*;

use common::*;

fn load(package: &str, name: &str, kind: &str) -> Plugin {
    let lib = plugin(package);
    let reg = Registry::parse(std::path::Path::new("/test/registry.toml"), &entry(name, kind, &lib)).unwrap();
    Plugin::load(&reg.entries[0]).unwrap()
}

fn panic_config(call: &str) -> abi_stable::std_types::RString {
    format!("panic_in = \"{call}\"\n").into()
}

fn assert_panicked<T>(r: Result<T, metarl::loader::CallError>, plugin: &str, call: &str) {
    let Err(e) = r else { panic!("{call} should have failed") };
    assert_eq!(e.error.kind, ErrorKind::PANICKED, "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("plugin '{plugin}': {call} failed: panicked: in {call}: fixture panics in {call} as asked")), "{msg}");
}

fn env_request(config: &str) -> EnvRequest {
    EnvRequest { family: "count".into(), tasks: vec![0].into(), num_envs: 2, trials: 1, seed: 0, threads: 1, config: config.into() }
}

#[test]
fn env_panics_are_caught_in_every_call() {
    let p = load("metarl-fixture-env", "fx-env", "env");
    assert_panicked(p.new_env(&env_request(&panic_config("new_env"))), "fx-env", "new_env");
    for call in ["spec", "reset", "step", "take_episodes", "demos"] {
        let mut env = p.new_env(&env_request(&panic_config(call))).unwrap();
        let mut obs_data = [0f32; 4];
        let mut obs = [ArrayMut::new(obs_data.as_mut_slice())];
        let mut task = [0u64; 2];
        let (mut r, mut a, mut b, mut c, mut d, mut t) = ([0f32; 2], [0u8; 2], [0u8; 2], [0u8; 2], [0u8; 2], [0u64; 2]);
        let actions = [0i32; 2];
        let res = match call {
            "spec" => check("fx-env", "spec", env.spec()).map(drop),
            "reset" => check("fx-env", "reset", env.reset(0, ResetBuffers { obs: obs.as_mut_slice().into(), task: task.as_mut_slice().into() })),
            "step" => check(
                "fx-env",
                "step",
                env.step(
                    [ArrayRef::new(actions.as_slice())].as_slice().into(),
                    StepBuffers {
                        obs: obs.as_mut_slice().into(),
                        final_obs: Default::default(),
                        reward: r.as_mut_slice().into(),
                        terminated: a.as_mut_slice().into(),
                        truncated: b.as_mut_slice().into(),
                        success: c.as_mut_slice().into(),
                        task_end: d.as_mut_slice().into(),
                        task: t.as_mut_slice().into(),
                    },
                ),
            ),
            "take_episodes" => check("fx-env", "take_episodes", env.take_episodes()).map(drop),
            _ => check("fx-env", "demos", env.demos(0, 1, 0)).map(drop),
        };
        assert_panicked(res, "fx-env", call);
        // A panicked object refuses further calls instead of running on broken state; `spec`
        // too, though it borrows the env immutably.
        let again = check("fx-env", "take_episodes", env.take_episodes()).unwrap_err().to_string();
        assert!(again.contains("refused, an earlier call panicked"), "after a panic in {call}: {again}");
    }
}

fn algo_request(config: &str) -> AlgoRequest {
    AlgoRequest {
        obs: ObsSpace::vector(2),
        action: ActionSpace::discrete(2),
        num_envs: 2,
        context_dim: 0,
        seed: 0,
        device: "cpu".into(),
        threads: 1,
        config: config.into(),
    }
}

#[test]
fn algo_panics_are_caught_in_every_call() {
    let p = load("metarl-fixture-algo", "fx-algo", "algo");
    assert_panicked(p.new_algo(&algo_request(&panic_config("new_algo"))), "fx-algo", "new_algo");
    let calls = ["info", "act", "record", "update", "params", "set_params", "save", "load", "reset_heads", "clear", "load_pretrained"];
    for call in calls {
        let mut algo = p.new_algo(&algo_request(&panic_config(call))).unwrap();
        let obs = [0f32; 4];
        let (rew, flags, tasks) = ([0f32; 2], [0u8; 2], [0u64; 2]);
        let mut actions = [0i32; 2];
        let mut extras = [0f32; 2];
        let prev = [0i32; 2];
        let res = match call {
            "info" => check("fx-algo", "info", algo.info()).map(drop),
            "act" => check(
                "fx-algo",
                "act",
                algo.act(
                    ActInput {
                        obs: [ArrayRef::new(obs.as_slice())].as_slice().into(),
                        state: Default::default(),
                        prev_action: [ArrayRef::new(prev.as_slice())].as_slice().into(),
                        prev_reward: rew.as_slice().into(),
                        first: flags.as_slice().into(),
                        context: RSlice::from_slice(&[]),
                        deterministic: false,
                    },
                    ActOutput { actions: [ArrayMut::new(actions.as_mut_slice())].as_mut_slice().into(), extras: extras.as_mut_slice().into() },
                ),
            ),
            "record" => check(
                "fx-algo",
                "record",
                algo.record(Transitions {
                    obs: [ArrayRef::new(obs.as_slice())].as_slice().into(),
                    actions: [ArrayRef::new(prev.as_slice())].as_slice().into(),
                    extras: extras.as_slice().into(),
                    rewards: rew.as_slice().into(),
                    terminated: flags.as_slice().into(),
                    truncated: flags.as_slice().into(),
                    next_obs: [ArrayRef::new(obs.as_slice())].as_slice().into(),
                    task: tasks.as_slice().into(),
                    ..Default::default()
                }),
            ),
            "update" => check(
                "fx-algo",
                "update",
                algo.update(&UpdatePlan::on_policy(1)),
            )
            .map(drop),
            "params" => check("fx-algo", "params", algo.params()).map(drop),
            "set_params" => check("fx-algo", "set_params", algo.set_params(RSlice::from_slice(&[0.0; 8]))),
            "save" => check("fx-algo", "save", algo.save()).map(drop),
            "load" => check("fx-algo", "load", algo.load(RSlice::from_slice(&[0u8; 32]))),
            "reset_heads" => check("fx-algo", "reset_heads", algo.reset_heads(0)),
            "load_pretrained" => check("fx-algo", "load_pretrained", algo.load_pretrained(RSlice::from_slice(&[0u8; 32]))),
            _ => check("fx-algo", "clear", algo.clear()),
        };
        assert_panicked(res, "fx-algo", call);
        // Poisoned, whichever call panicked (`info`, `params` and `save` borrow immutably).
        let again = check("fx-algo", "clear", algo.clear()).unwrap_err().to_string();
        assert!(again.contains("refused, an earlier call panicked"), "after a panic in {call}: {again}");
    }
}

fn run_phase(meta_cfg: &str, budget: u64) -> (Result<(), metarl::loader::CallError>, u64, AlgoBox) {
    let env = load("metarl-env-gridworld", "gridworld", "env");
    let algo_p = load("metarl-fixture-algo", "fx-algo", "algo");
    let meta_p = load("metarl-fixture-meta", "fx-meta", "meta");
    let mut algo = algo_p
        .new_algo(&AlgoRequest { obs: ObsSpace::image(64, 64, 3), action: ActionSpace::discrete(5), num_envs: 4, ..algo_request("") })
        .unwrap();
    let mut meta = meta_p.new_meta(&meta_request(1, meta_cfg)).unwrap();
    let mut last = 0;
    let mut services = PhaseServices::new(
        &env,
        "gridworld",
        String::new(),
        vec![0, 1, 2],
        1,
        None,
        Box::new(|_algo, steps, _| {
            last = steps;
            Ok(true)
        }),
    );
    let ctx = MetaContext { host: services.handle(), algo: &mut algo, tasks: RSlice::from_slice(&[0, 1, 2]), budget_env_steps: budget, num_envs: 4, seed: 3 };
    let res = check("fx-meta", "pretrain", meta.pretrain(ctx));
    drop(services);
    (res, last, algo)
}

#[test]
fn a_meta_plugin_drives_env_and_algo_from_other_libraries() {
    // 8 steps per env per update, 4 envs: 12 updates of 32 env steps.
    let (res, steps, algo) = run_phase("", 384);
    res.unwrap();
    assert_eq!(steps, 384, "progress reports after every update, up to the budget");
    // The algo saw every step the meta-method recorded (fixture's update reports the count).
    let mut algo = algo;
    let stats = check("fx-algo", "update", algo.update(&UpdatePlan::on_policy(1))).unwrap();
    let recorded = stats.scalars.iter().find(|s| s.name.as_str() == "recorded").unwrap().value;
    assert_eq!(recorded, 384.0);
}

#[test]
fn meta_panics_are_caught() {
    let (res, steps, _) = run_phase(&panic_config("pretrain"), 384);
    assert_panicked(res, "fx-meta", "pretrain");
    assert_eq!(steps, 0);
}

#[test]
fn plugin_log_records_reach_the_host_logger() {
    let lib = plugin("metarl-fixture-env");
    let text = format!("{}[plugin.config]\nlog = \"hello from inside the plugin\"\n", entry("fx", "env", &lib));
    let (_d, reg) = registry(&text);
    let o = metarl(&reg, &["env", "bench", "fx", "--task", "count", "--envs", "2", "--steps", "20"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.lines().any(|l| l.contains("metarl_fixture_env") && l.contains("hello from inside the plugin")), "{err}");
}

#[test]
fn a_panic_in_a_cli_command_exits_cleanly() {
    let lib = plugin("metarl-fixture-env");
    let text = format!("{}[plugin.config]\npanic_in = \"step\"\n", entry("fx", "env", &lib));
    let (_d, reg) = registry(&text);
    let o = metarl(&reg, &["env", "bench", "fx", "--task", "count", "--envs", "2", "--steps", "20"]);
    assert_one_line_error(&o, &["plugin 'fx': step failed: panicked: in step: fixture panics in step as asked"]);
}
