//! The Meta-World plugin against Meta-World itself, through the real server and Python.

use metarl_env_metaworld::MetaWorldPlugin;
use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::buf::{Data, SpaceBuf};
use metarl_plugin_kit::driver::EnvBatch;
use std::path::PathBuf;

fn python() -> PathBuf {
    metarl_sim_bridge::find_python(None, "metaworld").expect("the project venv with metaworld: run .ci/setup")
}

fn env(tasks: Vec<u64>, num_envs: u32, config: &str) -> Box<dyn Env> {
    let req = EnvRequest { family: "metaworld".into(), tasks: tasks.into(), num_envs, trials: 1, seed: 0, threads: 1, config: config.into() };
    MetaWorldPlugin::new_env(&req).unwrap_or_else(|e| panic!("{e}"))
}

fn task(name: &str) -> u64 {
    metarl_env_metaworld::tasks::index(name).unwrap()
}

/// The env behind the ABI's glue, stepped through the kit's `EnvBatch` (which owns the buffers).
fn batch(e: Box<dyn Env>) -> EnvBatch {
    EnvBatch::new(metarl_plugin_api::env::into_ffi(e)).unwrap()
}

fn u8s(b: &SpaceBuf, part: usize) -> &[u8] {
    match &b.parts[part] {
        Data::U8(v) => v,
        _ => panic!("part {part} is not u8"),
    }
}

fn f32s(b: &SpaceBuf, part: usize) -> &[f32] {
    match &b.parts[part] {
        Data::F32(v) => v,
        _ => panic!("part {part} is not f32"),
    }
}

/// The same episode played in Python against Meta-World directly: the server's sampling
/// rule written out again (task, then goal variation, then the reset seed, from
/// `default_rng([seed, copy])`), its renderer settings, and the same actions. Prints the
/// frames and hand positions as raw bytes to stdout.
const REFERENCE: &str = r#"
import os, sys
os.environ["MUJOCO_GL"] = "egl"
import metaworld, mujoco, numpy as np
task, seed, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng([seed, 0])
rng.integers(1)  # the task draw, from a one-task list
env = metaworld.ALL_V3_ENVIRONMENTS[task + "-v3"]()
variations = metaworld.ML1(task + "-v3", seed=0).train_tasks
env.set_task(variations[int(rng.integers(len(variations)))])
obs, _ = env.reset(seed=int(rng.integers(2**31)))
r = mujoco.Renderer(env.model, 64, 64)
def frame():
    r.update_scene(env.data, camera="corner")
    for f in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SKYBOX):
        r.scene.flags[f] = 0
    return r.render()
out = [frame().tobytes(), obs[:3].astype(np.float32).tobytes()]
for t in range(steps):
    a = np.array([np.sin(t / 3.0), np.cos(t / 5.0), -0.3, 0.5], dtype=np.float32)
    obs, _, _, _, info = env.step(a)
    out += [frame().tobytes(), obs[:3].astype(np.float32).tobytes(), bytes([int(info["success"])])]
sys.stdout.buffer.write(b"".join(out))
"#;

#[test]
fn frames_hand_positions_and_success_match_metaworld_in_python() {
    let steps = 12;
    let mut e = batch(env(vec![task("reach")], 1, "point_clouds = false"));
    e.reset(7).unwrap();
    let frame = 64 * 64 * 3;
    let mut ours = u8s(&e.obs, 0).to_vec();
    ours.extend(f32s(&e.obs, 3)[..3].iter().flat_map(|x| x.to_le_bytes()));
    for t in 0..steps {
        // Computed in f64 and rounded once, as numpy does.
        let a = [(t as f64 / 3.0).sin() as f32, (t as f64 / 5.0).cos() as f32, -0.3, 0.5];
        e.step(&[ArrayRef::new(&a[..])]).unwrap();
        ours.extend_from_slice(u8s(&e.obs, 0));
        ours.extend(f32s(&e.obs, 3)[..3].iter().flat_map(|x| x.to_le_bytes()));
        ours.push(e.reward[0] as u8); // sparse reward = success
    }
    let o = std::process::Command::new(python()).args(["-c", REFERENCE, "reach", "7", &steps.to_string()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let theirs = o.stdout;
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours.len(), (frame + 12) + steps * (frame + 12 + 1));
    // Frames and hand positions byte for byte (f64 hand positions rounded to f32 on both sides).
    assert!(ours == theirs, "the plugin's episode differs from Meta-World's");
}

#[test]
fn point_clouds_put_the_object_where_it_is() {
    // pick-place's puck (about 2 cm across), seen by the corner camera at 128 px: some point of
    // the cloud lies within 3 cm of its centre, which the state vector gives (obs[4:7]).
    let mut e = batch(env(vec![task("pick-place")], 1, "size = 128\nstate = true"));
    e.reset(3).unwrap();
    let (cloud, k, ext, state) = (f32s(&e.obs, 1), f32s(&e.obs, 2), f32s(&e.obs, 3), f32s(&e.obs, 5));
    let obj = [state[4], state[5], state[6]];
    let nearest = cloud.chunks_exact(3).map(|p| ((p[0] - obj[0]).powi(2) + (p[1] - obj[1]).powi(2) + (p[2] - obj[2]).powi(2)).sqrt()).fold(f32::INFINITY, f32::min);
    assert!(nearest < 0.03, "nearest cloud point {nearest} m from the object");
    // The intrinsics: f = 64 / tan(22.5°) for a 45° field of view, principal point at 64.
    assert!((k[0] - 64.0 / (22.5f32).to_radians().tan()).abs() < 1e-3 && k[2] == 64.0 && k[5] == 64.0 && k[8] == 1.0, "{k:?}");
    // The extrinsics are a rigid transform: orthonormal rotation, last row 0 0 0 1.
    let r = |i: usize, j: usize| ext[i * 4 + j];
    for i in 0..3 {
        let norm: f32 = (0..3).map(|j| r(i, j).powi(2)).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    assert_eq!(&ext[12..], &[0.0, 0.0, 0.0, 1.0]);
}

#[test]
fn experts_demonstrate_and_a_killed_server_is_reported_then_replaced() {
    let req = EnvRequest {
        family: "metaworld".into(),
        tasks: vec![task("reach")].into(),
        num_envs: 1,
        trials: 1,
        seed: 0,
        threads: 1,
        config: "point_clouds = false\nmax_steps = 200".into(),
    };
    let mut e = metarl_env_metaworld::MetaWorld::open(&req).unwrap();
    let demos = e.demos(task("reach"), 2, 5).unwrap();
    assert_eq!(demos.len(), 2, "reach's expert succeeds");
    for d in &demos {
        let len = d.rewards.len();
        assert!(d.success && len > 0 && len <= 200 && d.rewards[len - 1] == 1.0);
        assert_eq!(d.obs[0].as_ref().len(), (len + 1) * 64 * 64 * 3);
        assert_eq!(d.actions[0].as_ref().len(), len * 4);
    }
    let mut obs = SpaceBuf::zeros(&e.spec().obs, 1);
    let mut tasks = [0u64];
    let mut reset = |e: &mut metarl_env_metaworld::MetaWorld| {
        let mut views = obs.views_mut();
        e.reset(1, ResetBuffers { obs: views.as_mut_slice().into(), task: tasks.as_mut_slice().into() })
    };
    reset(&mut e).unwrap();
    let pid = e.server_pid().unwrap();
    // SAFETY: a plain kill(2) of the server this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let err = e.demos(task("reach"), 1, 0).unwrap_err();
    assert!(err.message.contains(&format!("metaworld server (pid {pid}) exited during 'demos' (signal 9)")), "{}", err.message);
    assert!(e.server_pid().is_none());
    // Nothing but a reset goes on: the copies' episodes died with the server.
    assert!(e.demos(task("reach"), 1, 0).unwrap_err().message.contains("metaworld server is dead"));
    // The next reset starts a new server.
    reset(&mut e).unwrap();
    assert!(e.server_pid().is_some_and(|p| p != pid));
}

#[test]
fn osmesa_renders_the_same_frame_and_no_camera_renders_nothing() {
    let frame = |gl: &str| {
        let mut e = batch(env(vec![task("reach")], 1, &format!("point_clouds = false\nmujoco_gl = \"{gl}\"")));
        e.reset(2).unwrap();
        u8s(&e.obs, 0).to_vec()
    };
    let (egl, osmesa) = (frame("egl"), frame("osmesa"));
    assert!(egl.iter().any(|&p| p > 0));
    // Both are Mesa's software rasteriser; allow a grey level of difference.
    let differ = egl.iter().zip(&osmesa).filter(|(a, b)| a.abs_diff(**b) > 1).count();
    assert!(differ * 100 < egl.len(), "{differ} of {} values differ by more than 1", egl.len());
    let e = env(vec![task("reach")], 1, "cameras = []\nstate = true");
    let names: Vec<String> = e.spec().obs.parts.iter().map(|p| p.name.to_string()).collect();
    assert_eq!(names, ["proprio", "state"]);
}

#[test]
fn bad_config_is_one_line_naming_the_key() {
    let req = |config: &str| EnvRequest { family: "metaworld".into(), tasks: vec![0].into(), num_envs: 1, trials: 1, seed: 0, threads: 1, config: config.into() };
    let e = MetaWorldPlugin::new_env(&req("cameras = [\"nose\"]")).err().unwrap();
    assert!(e.message.contains("unknown camera 'nose' (Meta-World's cameras: topview, corner"), "{}", e.message);
    let e = MetaWorldPlugin::new_env(&req("max_steps = 501")).err().unwrap();
    assert!(e.message.contains("max_steps must be within 1..=500"), "{}", e.message);
    let e = MetaWorldPlugin::new_env(&req("colour = 1")).err().unwrap();
    assert!(e.message.contains("colour"), "{}", e.message);
}


#[test]
fn a_keyframe_takes_the_hand_to_its_target_and_keyframe_demos_replay() {
    let mut e = batch(env(vec![task("window-close")], 1, "point_clouds = false\naction_mode = \"keyframe\""));
    let spec = e.spec.clone();
    let names: Vec<&str> = spec.action.parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["target", "gripper"]);
    assert_eq!(spec.max_episode_steps, 10);
    e.reset(4).unwrap();
    let target = [0.05f32, 0.6, 0.2];
    e.step(&[ArrayRef::new(&target[..]), ArrayRef::new(&[0i32][..])]).unwrap();
    let hand = &f32s(&e.obs, 3)[..3];
    let miss = hand.iter().zip(target).map(|(h, t)| (h - t).powi(2)).sum::<f32>().sqrt();
    assert!(miss < 0.005, "the hand stopped {miss} m from its target");
    assert!((f32s(&e.obs, 3)[4] - 0.1).abs() < 1e-6, "time is one keyframe of 10");
    // window-close's expert keyframes replay (10 of 10 in keyframe_replay_rate): 2 demos,
    // then their augmented trajectories (a start state every 10 physics steps).
    let demos = e.demos(task("window-close"), 2, 0).unwrap();
    assert!(demos.len() > 4, "2 demos and their augmented start states: {}", demos.len());
    let f = |a: &Array| a.as_ref().f32().unwrap().to_vec();
    for d in &demos {
        assert!(d.success && *d.rewards.last().unwrap() == 1.0 && d.rewards.len() <= 10);
        assert_eq!((d.actions[0].as_ref().len(), d.actions[1].as_ref().len()), (3 * d.rewards.len(), d.rewards.len()));
    }
    for a in &demos[2..] {
        // Its actions and rewards are the last ones of a demo, from the keyframe it was on its
        // way to; it starts where that demo was part-way there (time: the keyframes done).
        let n = a.rewards.len();
        let parent = demos[..2]
            .iter()
            .find(|d| d.rewards.len() >= n && f(&d.actions[0]).ends_with(&f(&a.actions[0])) && d.rewards.ends_with(&a.rewards))
            .expect("an augmented trajectory continues one of the demos");
        let j = parent.rewards.len() - n;
        let (start, parent_obs) = (&f(&a.obs[3])[..5], f(&parent.obs[3]));
        assert!((start[4] - j as f32 / 10.0).abs() < 1e-6, "starts at keyframe {j}: time {}", start[4]);
        assert_ne!(&start[..3], &parent_obs[5 * j..5 * j + 3], "a start state between keyframes");
        assert_eq!(&f(&a.obs[3])[5..], &parent_obs[5 * (j + 1)..], "then the demo's own keyframe states");
    }
    let mut plain = env(vec![task("window-close")], 1, "point_clouds = false\naction_mode = \"keyframe\"\ndemo_augmentation = 0");
    assert_eq!(plain.demos(task("window-close"), 2, 0).unwrap().len(), 2);
}

/// The keyframe demos' replay rate over ML10's training tasks plus six more (16 tasks, 10
/// episodes each). FACTS measured 127 of 158 expert successes re-succeeding with keyframes at
/// the experts' waypoint switches plus grasp settles; this plugin's rule and controller keep
/// 143 of 160 here (the experts themselves solve 155; see the README), where the plugin's
/// first rule kept 64. About a minute and a half:
/// `cargo test --release -p metarl-env-metaworld -- --ignored keyframe_replay`.
#[test]
#[ignore]
fn keyframe_replay_rate() {
    let names = [
        "reach", "push", "pick-place", "door-open", "drawer-close", "button-press-topdown", "peg-insert-side", "window-open",
        "sweep", "basketball", "drawer-open", "door-close", "shelf-place", "sweep-into", "lever-pull", "window-close",
    ];
    let (mut kept, mut total, mut weakest) = (0, 0, (usize::MAX, ""));
    for name in names {
        let mut e = env(vec![task(name)], 1, "cameras = []\naction_mode = \"keyframe\"\ndemo_augmentation = 0");
        let demos = e.demos(task(name), 10, 0).unwrap();
        eprintln!("{name}: {} of 10 keyframe demos kept, {:?} keyframes", demos.len(), demos.iter().map(|d| d.rewards.len()).collect::<Vec<_>>());
        for d in &demos {
            assert!(d.success && *d.rewards.last().unwrap() == 1.0 && d.rewards.len() <= 10);
        }
        kept += demos.len();
        total += 10;
        weakest = weakest.min((demos.len(), name));
    }
    eprintln!("keyframe demos kept: {kept} of {total}; fewest: {} of 10 ({})", weakest.0, weakest.1);
    // Measured 143 of 160, every task at least 2 of 10 (shelf-place); the bounds leave room for
    // MuJoCo's floating point on other CPUs, not for a rule that loses whole tasks again (the
    // first rule here kept 64, and none of five tasks).
    assert!(kept >= 130, "{kept} of {total} keyframe demos kept");
    assert!(weakest.0 >= 1, "no keyframe demo of {} kept", weakest.1);
}
