//! The RLBench plugin, through its real server code, against a STAND-IN for RLBench and PyRep.
//!
//! RLBench cannot be installed here, so `tests/standin/` imitates the shape of its API with
//! scripted behaviour (see its README): a task succeeds after a scripted number of steps, a
//! marked action raises the planning error, demos follow a known script. The tests put it on the
//! servers' `PYTHONPATH` through a wrapper script given as the plugin's `python`; the stand-in's
//! CoppeliaSim directory is an empty folder and its X server a listening socket. What this
//! checks is the mapping (spaces, parts, episodes, errors, keyframes), not RLBench.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use metarl_env_rlbench::{tasks, RlBench, RlBenchPlugin};
use metarl_plugin_api::prelude::*;
use metarl_plugin_kit::buf::{Data, SpaceBuf};

const STANDIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/standin");

/// The project venv's Python (numpy is all the server and the stand-in need).
fn venv_python() -> PathBuf {
    metarl_sim_bridge::find_python(None, "numpy").expect("the project venv with numpy: run .ci/setup")
}

/// A scratch folder of this test process, under cargo's target/tmp; those of earlier test
/// processes that are gone are removed.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for old in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = old.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("rlbench-test-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(old.path());
                }
            }
        }
        let d = tmp.join(format!("rlbench-test-{}", std::process::id()));
        std::fs::create_dir_all(d.join("coppeliasim-standin")).unwrap();
        d
    })
}

/// A Python wrapper script: `lines` of shell, then the venv's Python.
fn wrapper(name: &str, lines: &str) -> String {
    let path = scratch().join(format!("{name}.sh"));
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "#!/bin/sh\nexport PYTHONDONTWRITEBYTECODE=1\n{lines}\nexec '{}' \"$@\"", venv_python().display()).unwrap();
    drop(f);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

/// The wrapper that puts the STAND-IN RLBench on PYTHONPATH.
fn standin_python() -> String {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| wrapper("standin-python", &format!("export PYTHONPATH='{STANDIN}'"))).clone()
}

/// The address an X client on this machine tries for display `n` after the socket file.
fn x_socket(n: u32) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(format!("/tmp/.X11-unix/X{n}").as_bytes())?;
    std::os::unix::net::UnixListener::bind_addr(&addr)
}

/// A free display number (no socket file, abstract address free).
fn free_display(from: u32) -> u32 {
    (from..from + 1000).find(|n| !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() && x_socket(*n).is_ok()).expect("a free X display number")
}

/// The stand-in X server: a socket that accepts connections where an X client looks for
/// display `:N`. Nothing draws; it only makes the probe's connection succeed.
fn standin_display() -> String {
    static D: OnceLock<String> = OnceLock::new();
    D.get_or_init(|| {
        let n = free_display(5000 + std::process::id() % 4000);
        let listener = x_socket(n).unwrap();
        std::thread::spawn(move || for _ in listener.incoming() {});
        format!(":{n}")
    })
    .clone()
}

/// The config of a stand-in env, then `extra`.
fn config(extra: &str) -> String {
    format!(
        "python = \"{}\"\ncoppeliasim_root = \"{}\"\ndisplay = \"{}\"\ntimeout_s = 60\n{extra}",
        standin_python(),
        scratch().join("coppeliasim-standin").display(),
        standin_display()
    )
}

fn request(tasks: Vec<u64>, num_envs: u32, config: &str) -> EnvRequest {
    EnvRequest { family: "rlbench".into(), tasks: tasks.into(), num_envs, trials: 1, seed: 0, threads: 1, config: config.into() }
}

fn open(tasks: Vec<u64>, num_envs: u32, extra: &str) -> RlBench {
    RlBench::open(&request(tasks, num_envs, &config(extra))).unwrap_or_else(|e| panic!("{e}"))
}

fn task(name: &str) -> u64 {
    tasks::index(name).unwrap()
}

struct Out {
    obs: SpaceBuf,
    final_obs: SpaceBuf,
    reward: Vec<f32>,
    terminated: Vec<u8>,
    truncated: Vec<u8>,
    success: Vec<u8>,
    task_end: Vec<u8>,
    task: Vec<u64>,
}

impl Out {
    fn new(spec: &EnvSpec) -> Out {
        let n = spec.num_envs as usize;
        Out {
            obs: SpaceBuf::zeros(&spec.obs, n),
            final_obs: SpaceBuf::zeros(&spec.obs, n),
            reward: vec![0.0; n],
            terminated: vec![0; n],
            truncated: vec![0; n],
            success: vec![0; n],
            task_end: vec![0; n],
            task: vec![0; n],
        }
    }
    fn reset(&mut self, e: &mut dyn Env, seed: u64) -> Result<(), PluginError> {
        let mut obs = self.obs.views_mut();
        e.reset(seed, ResetBuffers { obs: obs.as_mut_slice().into(), task: self.task.as_mut_slice().into() })
    }
    /// One step with `pose` (7 per env) and `gripper` (one per env).
    fn step(&mut self, e: &mut dyn Env, pose: &[f32], gripper: &[i32]) -> Result<(), PluginError> {
        let mut obs = self.obs.views_mut();
        let mut fin = self.final_obs.views_mut();
        let a = [ArrayRef::new(pose), ArrayRef::new(gripper)];
        e.step(
            a.as_slice().into(),
            StepBuffers {
                obs: obs.as_mut_slice().into(),
                final_obs: fin.as_mut_slice().into(),
                reward: self.reward.as_mut_slice().into(),
                terminated: self.terminated.as_mut_slice().into(),
                truncated: self.truncated.as_mut_slice().into(),
                success: self.success.as_mut_slice().into(),
                task_end: self.task_end.as_mut_slice().into(),
                task: self.task.as_mut_slice().into(),
            },
        )
    }
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

/// C2F-ARM's time feature after `t` of `max_steps` macro-steps.
fn time(t: u32, max_steps: u32) -> f32 {
    ((1.0 - t as f64 / (max_steps - 1) as f64) * 2.0 - 1.0) as f32
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
}

/// A pose the stand-in can plan to: (x, 0, 1) with a quaternion of norm 2 (the server
/// normalises it).
fn pose(x: f32) -> [f32; 7] {
    [x, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0]
}

#[test]
fn the_family_offers_the_study_first_and_every_rlbench_task() {
    let d = RlBenchPlugin::descriptor();
    let fam = &d.families[0];
    assert_eq!(fam.name.as_str(), "rlbench");
    assert_eq!(fam.tasks.len(), 106);
    assert_eq!(fam.tasks.name(0), Some("push_button"));
    assert_eq!(fam.tasks.name(10), Some("reach_target"));
    assert!(d.caps.contains(Caps::ENV_DEMOS) && d.caps.contains(Caps::ENV_FINAL_OBS));
    let sets = RlBenchPlugin::task_sets();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].name.as_str(), "study-11");
    assert_eq!(sets[0].tasks.to_vec(), (0..11).collect::<Vec<u64>>());
}

#[test]
fn spaces_and_part_order_follow_the_cameras() {
    // Default: all five cameras in RLBench's order, 128 px, then low_dim.
    let e = open(vec![task("push_button")], 1, "");
    let spec = e.spec();
    let names: Vec<&str> = spec.obs.parts.iter().map(|p| p.name.as_str()).collect();
    let mut want = Vec::new();
    for c in ["front", "left_shoulder", "right_shoulder", "overhead", "wrist"] {
        for s in ["rgb", "point_cloud", "intrinsics", "extrinsics"] {
            want.push(format!("{c}_{s}"));
        }
    }
    want.push("low_dim".into());
    assert_eq!(names, want);
    let p = &spec.obs.parts;
    assert_eq!((p[0].role, p[0].dtype, p[0].shape.to_vec()), (Role::IMAGE, Dtype::U8, vec![128, 128, 3]));
    assert_eq!((p[1].role, p[1].dtype, p[1].shape.to_vec()), (Role::POINT_CLOUD, Dtype::F32, vec![128, 128, 3]));
    assert_eq!((p[2].role, p[2].shape.to_vec()), (Role::CAMERA_INTRINSICS, vec![3, 3]));
    assert_eq!((p[3].role, p[3].shape.to_vec()), (Role::CAMERA_EXTRINSICS, vec![4, 4]));
    assert_eq!((p[20].role, p[20].dtype, p[20].shape.to_vec()), (Role::VECTOR, Dtype::F32, vec![11]));
    let a = &spec.action.parts;
    assert_eq!(a.len(), 2);
    assert_eq!((a[0].name.as_str(), a[0].role, a[0].dtype, a[0].shape.to_vec()), ("pose", Role::POSE, Dtype::F32, vec![7]));
    assert_eq!((a[1].name.as_str(), a[1].role, a[1].dtype, a[1].choices), ("gripper", Role::DISCRETE, Dtype::I32, 2));
    spec.obs.validate().unwrap();
    spec.action.validate().unwrap();
    assert_eq!(spec.max_episode_steps, 10);

    // A subset, in the order given; each camera's parts come from its own RLBench camera (the
    // stand-in's focal length is 100 + the camera's index, its extrinsics shift x by it).
    let mut e = open(vec![task("push_button")], 1, "cameras = [\"wrist\", \"front\"]\nsize = 16");
    let spec = e.spec();
    let names: Vec<&str> = spec.obs.parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "wrist_rgb",
            "wrist_point_cloud",
            "wrist_intrinsics",
            "wrist_extrinsics",
            "front_rgb",
            "front_point_cloud",
            "front_intrinsics",
            "front_extrinsics",
            "low_dim"
        ]
    );
    let mut out = Out::new(&spec);
    out.reset(&mut e, 1).unwrap();
    assert_eq!(f32s(&out.obs, 2), &[104.0, 0.0, 8.0, 0.0, 104.0, 8.0, 0.0, 0.0, 1.0]);
    assert_eq!(f32s(&out.obs, 3)[3], 4.0);
    assert_eq!(f32s(&out.obs, 6)[0], 100.0);
    assert_eq!(f32s(&out.obs, 7)[3], 0.0);
    // The point clouds are RLBench's own (world frame): the wrist's is the front's plus 4.
    let (w, f) = (f32s(&out.obs, 1), f32s(&out.obs, 5));
    assert!(w.iter().zip(f).all(|(a, b)| (a - b - 4.0).abs() < 1e-5));
    // rgb: task code 1 (push_button), the variation, 0 steps.
    let rgb = u8s(&out.obs, 0);
    assert!(rgb.chunks(3).all(|px| px[0] == 1 && px[1] == rgb[1] && px[2] == 0));
    // low_dim: gripper open, pose (the stand-in starts at x = 0.1 × variation), the fingers
    // clipped to [0, 0.04], time 1.
    let v = rgb[1] as f32;
    let low = f32s(&out.obs, 8);
    assert!(close(low, &[1.0, 0.1 * v, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.04, 0.0, 1.0]), "{low:?}");
}

#[test]
fn episodes_succeed_truncate_and_reset_themselves_with_the_true_last_observation() {
    // push_button (stand-in): success on the 3rd step.
    let mut e = open(vec![task("push_button")], 1, "cameras = [\"front\"]\nsize = 16");
    let spec = e.spec();
    let mut out = Out::new(&spec);
    out.reset(&mut e, 7).unwrap();
    assert_eq!(out.task, [0]);
    for t in 1..=2u32 {
        out.step(&mut e, &pose(0.2), &[0]).unwrap();
        assert_eq!((out.reward[0], out.terminated[0], out.truncated[0], out.success[0], out.task_end[0]), (0.0, 0, 0, 0, 0));
        assert_eq!(u8s(&out.obs, 0)[2], t as u8, "the step count shows in the frame");
        // The gripper closed (action 0), the pose reached with a unit quaternion, time after t steps.
        assert!(close(f32s(&out.obs, 4), &[0.0, 0.2, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, time(t, 10)]), "{:?}", f32s(&out.obs, 4));
    }
    out.step(&mut e, &pose(0.3), &[1]).unwrap();
    assert_eq!((out.reward[0], out.terminated[0], out.truncated[0], out.success[0], out.task_end[0]), (1.0, 1, 0, 1, 1));
    // final_obs: the episode's true last observation; obs: the next episode's first.
    assert_eq!(u8s(&out.final_obs, 0)[2], 3);
    assert!(close(f32s(&out.final_obs, 4), &[1.0, 0.3, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.04, 0.0, time(3, 10)]));
    assert_eq!(u8s(&out.obs, 0)[2], 0);
    assert_eq!(f32s(&out.obs, 4)[10], 1.0);
    let eps = e.take_episodes();
    assert_eq!(eps.len(), 1);
    assert_eq!((eps[0].env, eps[0].task, eps[0].ret, eps[0].len, eps[0].success), (0, 0, 1.0, 3, true));

    // take_lid_off_saucepan (stand-in): never succeeds; truncated after max_steps = 4.
    let mut e = open(vec![task("take_lid_off_saucepan")], 1, "cameras = [\"front\"]\nsize = 16\nmax_steps = 4");
    let mut out = Out::new(&e.spec());
    out.reset(&mut e, 7).unwrap();
    for _ in 0..3 {
        out.step(&mut e, &pose(0.2), &[1]).unwrap();
        assert_eq!((out.terminated[0], out.truncated[0]), (0, 0));
    }
    out.step(&mut e, &pose(0.25), &[1]).unwrap();
    assert_eq!((out.reward[0], out.terminated[0], out.truncated[0], out.success[0], out.task_end[0]), (0.0, 0, 1, 0, 1));
    assert_eq!(u8s(&out.final_obs, 0)[2], 4);
    assert_eq!(f32s(&out.final_obs, 4)[1], 0.25);
    assert!((f32s(&out.final_obs, 4)[10] - time(4, 4)).abs() < 1e-6);
    assert_eq!(u8s(&out.obs, 0)[2], 0);
    let eps = e.take_episodes();
    assert_eq!((eps[0].task, eps[0].ret, eps[0].len, eps[0].success), (1, 0.0, 4, false));
}

#[test]
fn a_planning_failure_ends_the_episode_with_reward_zero() {
    let mut e = open(vec![task("push_button")], 1, "cameras = [\"front\"]\nsize = 16");
    let mut out = Out::new(&e.spec());
    out.reset(&mut e, 2).unwrap();
    // x > 10: the stand-in's planner fails (InvalidActionError, as RLBench 1.2 raises); x < -10:
    // PyRep's ConfigurationPathError itself (as RLBench before 1.2); a zero quaternion:
    // RLBench's own unit-quaternion check (InvalidActionError).
    for bad in [pose(11.0), pose(-11.0), [0.2, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]] {
        let start = f32s(&out.obs, 4).to_vec();
        out.step(&mut e, &bad, &[0]).unwrap();
        assert_eq!((out.reward[0], out.terminated[0], out.truncated[0], out.success[0], out.task_end[0]), (0.0, 1, 0, 0, 1), "{bad:?}");
        // The last observation is the scene as the failed action left it: nothing moved.
        let last = f32s(&out.final_obs, 4);
        assert!(close(&last[..10], &start[..10]), "{last:?} vs {start:?}");
        assert_eq!(u8s(&out.final_obs, 0)[2], 0);
        assert!((last[10] - time(1, 10)).abs() < 1e-6);
        assert_eq!(u8s(&out.obs, 0)[2], 0, "a new episode started");
    }
    let eps = e.take_episodes();
    assert_eq!(eps.len(), 3);
    assert!(eps.iter().all(|ep| ep.ret == 0.0 && ep.len == 1 && !ep.success));
    // The env goes on: the task still succeeds on its 3rd good step.
    for _ in 0..3 {
        out.step(&mut e, &pose(0.2), &[1]).unwrap();
    }
    assert_eq!((out.reward[0], out.success[0]), (1.0, 1));
}

#[test]
fn copies_run_one_server_each_and_sample_tasks_and_variations_by_seed() {
    let ids = vec![task("push_button"), task("take_lid_off_saucepan"), task("open_drawer")];
    let first = |seed: u64| {
        let mut e = open(ids.clone(), 2, "cameras = [\"front\"]\nsize = 16");
        let mut out = Out::new(&e.spec());
        out.reset(&mut e, seed).unwrap();
        let pids = e.server_pids();
        (out.obs.clone(), out.task.clone(), pids)
    };
    let (a, ta, pids) = first(3);
    let (b, tb, _) = first(3);
    assert_eq!((a.clone(), ta.clone()), (b, tb), "the same seed gives the same first observations");
    assert!(pids[0].is_some() && pids[1].is_some() && pids[0] != pids[1], "one server per copy: {pids:?}");
    assert_eq!(pids[2], None, "the demo server starts only when demos are asked for");
    // Over seeds, both copies draw every task and more than one variation; the object placement
    // (numpy's global generator, seeded per episode) differs between seeds.
    let mut seen_tasks = std::collections::BTreeSet::new();
    let mut seen_variations = std::collections::BTreeSet::new();
    let mut e = open(ids.clone(), 2, "cameras = [\"front\"]\nsize = 16");
    let mut out = Out::new(&e.spec());
    let mut clouds = Vec::new();
    for seed in 0..12 {
        out.reset(&mut e, seed).unwrap();
        for i in 0..2 {
            let px = &u8s(&out.obs, 0)[i * 16 * 16 * 3..][..3];
            let code = match out.task[i] {
                0 => 1,
                1 => 2,
                40 => 41,
                t => panic!("task {t} is not one of the request's"),
            };
            assert_eq!(px[0], code, "the frame is the sampled task's");
            seen_tasks.insert(out.task[i]);
            seen_variations.insert((out.task[i], px[1]));
        }
        clouds.push(f32s(&out.obs, 1)[..3].to_vec());
    }
    assert_eq!(seen_tasks.into_iter().collect::<Vec<_>>(), ids);
    assert!(seen_variations.len() > 3, "{seen_variations:?}");
    assert!(clouds.windows(2).all(|w| w[0] != w[1]));
    // Copies step independently: copy 0 fails its plan, copy 1 goes on.
    let mut poses = pose(11.0).to_vec();
    poses.extend(pose(0.2));
    out.step(&mut e, &poses, &[1, 1]).unwrap();
    assert_eq!((out.terminated.clone(), out.reward[0]), (vec![1, 0], 0.0));
    assert_eq!(u8s(&out.obs, 0)[16 * 16 * 3 + 2], 1);
}

#[test]
fn demos_become_keyframe_transitions() {
    // The stand-in's scripted demo has 20 steps; by C2F-ARM's rule its keyframes are 3 (a stop),
    // 6 (the gripper closes), 10 (a stop), 14 (it opens) and 19 (the last).
    let keys = [3usize, 6, 10, 14, 19];
    let open_at = |i: usize| if (6..14).contains(&i) { 0 } else { 1 };
    let ids = vec![task("push_button"), task("open_drawer")];
    let mut e = open(ids, 1, "cameras = [\"front\"]\nsize = 16");
    let spec = e.spec();
    let mut out = Out::new(&spec);
    out.reset(&mut e, 0).unwrap();
    out.step(&mut e, &pose(0.2), &[1]).unwrap();
    let demos = e.demos(task("open_drawer"), 2, 9).unwrap();
    assert_eq!(demos.len(), 2);
    for d in &demos {
        assert_eq!((d.task, d.success), (task("open_drawer"), true));
        assert_eq!(d.rewards.to_vec(), vec![0.0, 0.0, 0.0, 0.0, 1.0]);
        let pose = d.actions[0].as_ref().f32().unwrap().to_vec();
        let grip = d.actions[1].as_ref().i32().unwrap().to_vec();
        assert_eq!(pose.len(), 5 * 7);
        for (j, &k) in keys.iter().enumerate() {
            // The gripper pose at the keyframe, its quaternion (0, 0, 1.2, -1.6) made unit with w >= 0.
            assert!(close(&pose[j * 7..(j + 1) * 7], &[k as f32 / 100.0, 0.0, 1.0, 0.0, 0.0, -0.6, 0.8]), "{:?}", &pose[j * 7..]);
        }
        assert_eq!(grip, keys.iter().map(|&k| open_at(k)).collect::<Vec<i32>>());
        // Observations: step 0, then each keyframe, with time 0, 1, ..., 5.
        for (p, part) in spec.obs.parts.iter().enumerate() {
            assert_eq!(d.obs[p].as_ref().len(), 6 * part.numel(), "{}", part.name);
        }
        let rgb = d.obs[0].as_ref().u8().unwrap();
        let low = d.obs[4].as_ref().f32().unwrap();
        for (j, step) in [0usize, 3, 6, 10, 14, 19].into_iter().enumerate() {
            assert_eq!(rgb[j * 16 * 16 * 3 + 2], step as u8);
            assert_eq!(rgb[j * 16 * 16 * 3], 41, "open_drawer's frames");
            let l = &low[j * 11..(j + 1) * 11];
            assert_eq!(l[0], open_at(step) as f32);
            assert!((l[1] - step as f32 / 100.0).abs() < 1e-6);
            assert!((l[10] - time(j as u32, 10)).abs() < 1e-6);
        }
    }
    // A demo server of its own: copy 0's episode goes on undisturbed.
    let pids = e.server_pids();
    assert!(pids[1].is_some() && pids[1] != pids[0]);
    out.step(&mut e, &pose(0.2), &[1]).unwrap();
    // (open_drawer, if copy 0 drew it, succeeds on this 2nd step.)
    let steps = if out.terminated[0] == 1 { u8s(&out.final_obs, 0)[2] } else { u8s(&out.obs, 0)[2] };
    assert_eq!(steps, 2);
    // Only the env's own tasks.
    let err = e.demos(task("reach_target"), 1, 0).unwrap_err();
    assert!(err.message.contains("'reach_target' is not one of this env's tasks"), "{}", err.message);
}

#[test]
fn demo_augmentation_adds_later_start_states() {
    // The stand-in's demo (keyframes 3, 6, 10, 14, 19) with a start every 4 steps: steps 4, 8,
    // 12 and 16, after 1, 2, 3 and 4 keyframes, each leading through the keyframes after it.
    let mut e = open(vec![task("open_drawer")], 1, "cameras = [\"front\"]\nsize = 16\ndemo_augmentation = 4");
    let demos = e.demos(task("open_drawer"), 1, 9).unwrap();
    assert_eq!(demos.iter().map(|d| d.rewards.len()).collect::<Vec<_>>(), [5, 4, 3, 2, 1]);
    let pose = |d: &Trajectory| d.actions[0].as_ref().f32().unwrap().to_vec();
    for (a, (start, done)) in demos[1..].iter().zip([(4u8, 1u32), (8, 2), (12, 3), (16, 4)]) {
        assert!(pose(&demos[0]).ends_with(&pose(a)) && demos[0].rewards.ends_with(&a.rewards), "the demo's later keyframes");
        let (rgb, low) = (a.obs[0].as_ref().u8().unwrap(), a.obs[4].as_ref().f32().unwrap());
        assert_eq!(rgb[2], start, "starts at step {start}");
        assert!((low[10] - time(done, 10)).abs() < 1e-6, "after {done} keyframes");
        assert!((low[11 + 10] - time(done + 1, 10)).abs() < 1e-6);
    }
}

#[test]
fn stored_demos_come_from_the_dataset_root() {
    // RLBench's layout: <root>/<task>/variation<v>/episodes/episode<k>/ (the stand-in reads
    // only the folder names; its stored demos have y = 0.5 and z = 1 + k / 1000).
    let root = scratch().join("dataset");
    for v in 0..3 {
        for k in 0..4 {
            std::fs::create_dir_all(root.join(format!("push_button/variation{v}/episodes/episode{k}"))).unwrap();
        }
    }
    let mut e = open(vec![task("push_button")], 1, &format!("cameras = []\ndataset_root = \"{}\"", root.display()));
    assert_eq!(e.spec().obs.parts.len(), 1, "no camera: low_dim only");
    let demos = e.demos(task("push_button"), 3, 4).unwrap();
    assert_eq!(demos.len(), 3);
    for d in &demos {
        let pose = d.actions[0].as_ref().f32().unwrap();
        assert_eq!(pose.len(), 5 * 7);
        assert_eq!(pose[1], 0.5, "a stored demo");
        assert!([1.0f32, 1.001, 1.002, 1.003].iter().any(|z| (pose[2] - z).abs() < 1e-6), "{}", pose[2]);
    }
}

#[test]
fn the_keyframe_rule_passes_its_unit_test() {
    let o = std::process::Command::new(venv_python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/test_keyframes.py"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

/// The error of opening an env, which must be one line.
fn open_error(config: &str) -> PluginError {
    let e = RlBench::open(&request(vec![0], 1, config)).err().expect("the env must not open");
    assert!(!e.message.contains('\n'), "one line: {}", e.message);
    e
}

#[test]
fn where_rlbench_cannot_run_construction_fails_in_one_line_naming_what_is_missing() {
    let readme = "the README's RLBench section explains the install (CoppeliaSim 4.1 with COPPELIASIM_ROOT, PyRep, RLBench, and an X server or Xvfb)";
    // The project venv has no rlbench.
    let plain = wrapper("plain-python", "unset PYTHONPATH");
    let e = open_error(&format!("python = \"{plain}\""));
    assert_eq!(e.kind, ErrorKind::FAILED);
    assert!(e.message.starts_with(&format!("rlbench: cannot run RLBench with {plain}: the Python package 'rlbench' is not installed in ")), "{}", e.message);
    assert!(e.message.ends_with(readme), "{}", e.message);
    // The stand-in, without COPPELIASIM_ROOT.
    let no_root = wrapper("standin-no-root", &format!("export PYTHONPATH='{STANDIN}'\nunset COPPELIASIM_ROOT"));
    let e = open_error(&format!("python = \"{no_root}\"\ndisplay = \"{}\"", standin_display()));
    assert!(e.message.contains(": COPPELIASIM_ROOT is not set; the README's RLBench section"), "{}", e.message);
    // The stand-in, without an X server.
    let nobody = free_display(9000);
    let e = open_error(&config("").replace(&format!("display = \"{}\"", standin_display()), &format!("display = \":{nobody}\"")));
    assert!(e.message.contains(&format!(": no X server answers at DISPLAY=:{nobody}; the README's")), "{}", e.message);
    // No Python with rlbench at all.
    if std::env::var_os("METARL_PYTHON").is_none() {
        let e = RlBench::open(&request(vec![0], 1, "")).err().unwrap();
        assert!(e.message.contains("no Python with the 'rlbench' package found") && e.message.ends_with(readme), "{}", e.message);
    }
}

#[test]
fn a_task_missing_from_the_installed_rlbench_is_named() {
    // lamp_on is one of the family's tasks, but the stand-in has no such file.
    let e = RlBench::open(&request(vec![task("lamp_on")], 1, &config(""))).err().unwrap();
    assert!(!e.message.contains('\n'));
    assert!(e.message.contains("rlbench server: init: ValueError: task 'lamp_on' is not in the installed RLBench (ModuleNotFoundError"), "{}", e.message);
}

#[test]
fn bad_config_is_refused_before_any_server_starts() {
    // A `python` that does not exist: any error about it would mean a server was started.
    let req = |c: &str| request(vec![0], 1, &format!("python = \"/nonexistent/python\"\n{c}"));
    let e = RlBench::open(&req("cameras = [\"front\", \"nose\"]")).err().unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_INPUT);
    assert_eq!(e.message.as_str(), "rlbench config: unknown camera 'nose' (RLBench's cameras: front, left_shoulder, right_shoulder, overhead, wrist)");
    let e = RlBench::open(&req("cameras = [\"front\", \"front\"]")).err().unwrap();
    assert!(e.message.contains("camera 'front' is listed twice"), "{}", e.message);
    let e = RlBench::open(&req("max_steps = 1")).err().unwrap();
    assert!(e.message.contains("max_steps must be at least 2"), "{}", e.message);
    let e = RlBench::open(&req("colour = 1")).err().unwrap();
    assert!(e.message.contains("colour"), "{}", e.message);
    let e = RlBench::open(&EnvRequest { trials: 2, ..req("") }).err().unwrap();
    assert!(e.message.contains("trials must be 1"), "{}", e.message);
    let e = RlBench::open(&EnvRequest { tasks: vec![106].into(), ..req("") }).err().unwrap();
    assert!(e.message.contains("task 106 is out of range"), "{}", e.message);
}

#[test]
fn bad_actions_are_refused_and_a_killed_server_is_replaced() {
    let mut e = open(vec![task("push_button")], 1, "cameras = []");
    let mut out = Out::new(&e.spec());
    out.reset(&mut e, 0).unwrap();
    let err = out.step(&mut e, &pose(0.2), &[2]).unwrap_err();
    assert!(err.message.contains("gripper must be 0 (close) or 1 (open), got 2"), "{}", err.message);
    let mut nan = pose(0.2);
    nan[0] = f32::NAN;
    assert!(out.step(&mut e, &nan, &[1]).unwrap_err().message.contains("not finite"));
    let pid = e.server_pids()[0].unwrap();
    // SAFETY: a plain kill(2) of the server this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let err = out.step(&mut e, &pose(0.2), &[1]).unwrap_err();
    assert!(err.message.contains(&format!("rlbench server (pid {pid}) exited during 'step' (signal 9)")), "{}", err.message);
    out.reset(&mut e, 0).unwrap();
    assert!(e.server_pids()[0].is_some_and(|p| p != pid));
    out.step(&mut e, &pose(0.2), &[1]).unwrap();
}
