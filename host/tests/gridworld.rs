//! The toy env through the real plugin boundary: determinism, visible vs hidden tasks,
//! trials, episode boundaries, demonstrations and bad input.

mod common;
use std::collections::BTreeSet;

use metarl::envrun::{self, EnvBatch, RandomActions};
use metarl::loader::Plugin;
use metarl::registry::Registry;
use metarl_plugin_api::env::EnvRequest;
use metarl_plugin_api::types::*;
use metarl_plugin_kit::buf::Data;

use common::*;

fn gridworld() -> Plugin {
    let lib = plugin("metarl-env-gridworld");
    let reg = Registry::parse(std::path::Path::new("/t/registry.toml"), &entry("gridworld", "env", &lib)).unwrap();
    Plugin::load(&reg.entries[0]).unwrap()
}

fn request(family: &str, tasks: &[u64], num_envs: u32, trials: u32, seed: u64) -> EnvRequest {
    EnvRequest { family: family.into(), tasks: tasks.to_vec().into(), num_envs, trials, seed, threads: 1, config: "".into() }
}

fn frames(env: &EnvBatch) -> Vec<u8> {
    match env.obs.parts.as_slice() {
        [Data::U8(v)] => v.to_vec(),
        _ => panic!("gridworld renders one u8 image part"),
    }
}

fn rollout(p: &Plugin, seed: u64, steps: usize) -> Vec<Vec<u8>> {
    let mut env = envrun::open(p, &request("gridworld", &[], 8, 1, seed)).unwrap();
    let mut actions = RandomActions::new(&env.spec.action, 8, 7);
    env.reset(1).unwrap();
    let mut out = vec![frames(&env)];
    for _ in 0..steps {
        env.step(&actions.sample()).unwrap();
        out.push(frames(&env));
    }
    out
}

#[test]
fn observations_are_64x64x3_u8_with_5_actions() {
    let p = gridworld();
    let env = envrun::open(&p, &request("gridworld", &[], 3, 1, 0)).unwrap();
    assert_eq!(env.spec.obs, ObsSpace::image(64, 64, 3));
    assert_eq!(env.spec.action, ActionSpace::discrete(5));
    assert_eq!(env.spec.num_envs, 3);
    assert_eq!(env.obs.parts[0].len(), 3 * 64 * 64 * 3);
}

#[test]
fn small_frames_for_fast_learning_tests() {
    let p = gridworld();
    let req = EnvRequest { config: "size = 4\nframe = 16".into(), ..request("gridworld", &[], 2, 1, 0) };
    let mut env = envrun::open(&p, &req).unwrap();
    assert_eq!(env.spec.obs, ObsSpace::image(16, 16, 3));
    assert_eq!(env.spec.max_episode_steps, 16);
    env.reset(0).unwrap();
    assert_eq!(goal_colours(&frames(&env)[..16 * 16 * 3]).len(), 1, "the goal is still visible");
}

#[test]
fn same_seed_same_frames_other_seed_other_frames() {
    let p = gridworld();
    let a = rollout(&p, 42, 200);
    assert_eq!(a, rollout(&p, 42, 200));
    assert_ne!(a, rollout(&p, 43, 200));
}

/// Colours in a frame other than background, border and agent.
fn goal_colours(frame: &[u8]) -> BTreeSet<[u8; 3]> {
    frame
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .filter(|p| *p != [24, 24, 24] && *p != [0, 0, 0] && *p != [255, 255, 255])
        .collect()
}

#[test]
fn each_task_is_identifiable_from_one_frame_unless_hidden() {
    let p = gridworld();
    let mut seen = BTreeSet::new();
    for task in 0..16 {
        let mut env = envrun::open(&p, &request("gridworld", &[task], 1, 1, 0)).unwrap();
        env.reset(0).unwrap();
        assert_eq!(env.task, vec![task]);
        let colours = goal_colours(&frames(&env));
        assert_eq!(colours.len(), 1, "task {task} shows exactly one goal colour");
        seen.insert((colours.into_iter().next().unwrap(), frames(&env).iter().position(|&b| b != 0 && b != 24 && b != 255)));
        let mut hidden = envrun::open(&p, &request("gridworld-hidden", &[task], 1, 1, 0)).unwrap();
        hidden.reset(0).unwrap();
        assert!(goal_colours(&frames(&hidden)).is_empty(), "hidden task {task} shows no goal");
    }
    assert_eq!(seen.len(), 16, "16 tasks, 16 distinct goal colours");
}

#[test]
fn episodes_end_on_goal_or_time_limit_and_are_reported() {
    let p = gridworld();
    let mut env = envrun::open(&p, &request("gridworld", &[], 16, 1, 5)).unwrap();
    let max = env.spec.max_episode_steps;
    assert_eq!(max, 32);
    let mut actions = RandomActions::new(&env.spec.action, 16, 9);
    env.reset(0).unwrap();
    let (mut ended, mut solved) = (0, 0);
    let mut returns = 0.0;
    for _ in 0..500 {
        env.step(&actions.sample()).unwrap();
        for i in 0..16 {
            assert!(env.terminated[i] == 0 || env.truncated[i] == 0, "never both");
            assert_eq!(env.success[i], env.terminated[i], "terminal means goal reached");
            assert_eq!(env.reward[i], env.terminated[i] as f32, "sparse reward exactly on reaching the goal");
            assert_eq!(env.task_end[i], env.terminated[i] | env.truncated[i], "one trial per task");
            ended += (env.terminated[i] | env.truncated[i]) as usize;
            solved += env.terminated[i] as usize;
            returns += env.reward[i];
        }
    }
    let episodes = env.take_episodes().unwrap();
    assert_eq!(episodes.len(), ended);
    assert!(solved > 0 && solved < ended, "random play solves some episodes, not all ({solved}/{ended})");
    for e in episodes.iter() {
        assert!(e.len >= 1 && e.len <= max);
        assert_eq!(e.success, e.ret == 1.0);
        if !e.success {
            assert_eq!(e.len, max, "unsolved episodes are truncated at the limit");
        }
    }
    assert_eq!(episodes.iter().map(|e| e.ret).sum::<f32>(), returns);
}

#[test]
fn trials_keep_the_task_and_flag_the_last_one() {
    let p = gridworld();
    let mut env = envrun::open(&p, &request("gridworld-hidden", &[], 4, 3, 11)).unwrap();
    let mut actions = RandomActions::new(&env.spec.action, 4, 1);
    env.reset(0).unwrap();
    let mut trial = [0u32; 4];
    let mut task = env.task.clone();
    let mut switches = 0;
    for _ in 0..2000 {
        env.step(&actions.sample()).unwrap();
        for i in 0..4 {
            if env.terminated[i] == 1 || env.truncated[i] == 1 {
                trial[i] += 1;
                if trial[i] == 3 {
                    assert_eq!(env.task_end[i], 1, "the third trial ends the task");
                    trial[i] = 0;
                    task[i] = env.task[i];
                    switches += 1;
                } else {
                    assert_eq!(env.task_end[i], 0);
                    assert_eq!(env.task[i], task[i], "same task between trials");
                }
            } else {
                assert_eq!(env.task[i], task[i]);
            }
        }
    }
    assert!(switches > 10, "tasks were resampled after their trials ({switches})");
}

#[test]
fn expert_demonstrations_reach_the_goal() {
    let p = gridworld();
    let env = p.new_env(&request("gridworld", &[3, 4], 1, 1, 0)).unwrap();
    let mut env = env;
    let demos = env.demos(4, 5, 99).into_result().unwrap();
    assert_eq!(demos.len(), 5);
    for d in demos.iter() {
        let a = d.actions[0].as_ref().i32().expect("discrete actions").to_vec();
        let o = d.obs[0].as_ref().u8().expect("u8 frames").to_vec();
        assert!(d.success && d.task == 4);
        assert_eq!(o.len(), (a.len() + 1) * 64 * 64 * 3);
        assert_eq!(d.rewards.last(), Some(&1.0));
        assert!(a.len() <= 14, "shortest path on an 8x8 grid");
    }
    let err = env.demos(5, 1, 0).into_result().unwrap_err();
    assert!(err.message.contains("task 5 is not one of this env's tasks"));
}

#[test]
fn bad_requests_are_refused_with_clear_messages() {
    let p = gridworld();
    let msg = |r: EnvRequest| p.new_env(&r).err().expect("refused").to_string();
    assert!(msg(request("maze", &[], 1, 1, 0)).contains("unknown task family 'maze' (valid: gridworld, gridworld-hidden)"));
    assert!(msg(request("gridworld", &[16], 1, 1, 0)).contains("task 16 out of range"));
    assert!(msg(request("gridworld", &[], 0, 1, 0)).contains("num_envs must be at least 1"));
    assert!(msg(request("gridworld", &[], 1, 0, 0)).contains("trials must be at least 1"));
    let bad_cfg = EnvRequest { config: "size = 5".into(), ..request("gridworld", &[], 1, 1, 0) };
    assert!(msg(bad_cfg).contains("frame (64) must be a multiple of size (5) with at least 3 pixels per cell"));
    let unknown = EnvRequest { config: "colour = 1".into(), ..request("gridworld", &[], 1, 1, 0) };
    assert!(msg(unknown).contains("gridworld config: unknown field `colour`"));
}
