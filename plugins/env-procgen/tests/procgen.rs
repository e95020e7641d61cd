//! Tests against the real Procgen libenv installed in the repository's `.venv`.

use std::collections::HashSet;
use std::path::PathBuf;

use metarl_env_procgen::{games, libenv, locate, state, ProcgenPlugin, LEVELS};
use metarl_plugin_api::env::{Env, EnvRequest, EpisodeStat, ResetBuffers, StepBuffers};
use metarl_plugin_api::prelude::*;

const FRAME: usize = 64 * 64 * 3;

fn procgen_dir() -> PathBuf {
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/lib");
    let entries = std::fs::read_dir(&lib).unwrap_or_else(|e| panic!("{}: {e}; run `bash .ci/setup`", lib.display()));
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/procgen"))
        .filter(|p| p.join("data/prebuilt/libenv.so").is_file())
        .collect();
    found.sort();
    found.pop().expect("procgen2==0.10.7 is not installed in .venv; run `bash .ci/setup`")
}

fn request(family: &str, tasks: Vec<u64>, num_envs: u32, trials: u32, seed: u64, extra: &str) -> EnvRequest {
    EnvRequest {
        family: family.into(),
        tasks: tasks.into(),
        num_envs,
        trials,
        seed,
        threads: 1,
        config: format!("procgen_dir = {:?}\nnum_threads = 2\n{extra}", procgen_dir().display().to_string()).into(),
    }
}

fn build(req: &EnvRequest) -> Result<Box<dyn Env>, PluginError> {
    ProcgenPlugin::new_env(req)
}

fn error(req: &EnvRequest) -> PluginError {
    match build(req) {
        Ok(_) => panic!("request {req:?} was accepted"),
        Err(e) => e,
    }
}

/// An env plus the buffers it writes into, like the host's runner.
struct Run {
    env: Box<dyn Env>,
    n: usize,
    obs: Vec<u8>,
    reward: Vec<f32>,
    terminated: Vec<u8>,
    truncated: Vec<u8>,
    success: Vec<u8>,
    task_end: Vec<u8>,
    task: Vec<u64>,
    rng: u64,
}

impl Run {
    fn new(req: &EnvRequest, reset_seed: u64) -> Self {
        let env = build(req).unwrap();
        let n = req.num_envs as usize;
        let mut run = Run {
            env,
            n,
            obs: vec![0; n * FRAME],
            reward: vec![0.0; n],
            terminated: vec![0; n],
            truncated: vec![0; n],
            success: vec![0; n],
            task_end: vec![0; n],
            task: vec![0; n],
            rng: 12345,
        };
        run.reset(reset_seed);
        run
    }

    fn reset(&mut self, seed: u64) {
        let mut obs = [ArrayMut::new(self.obs.as_mut_slice())];
        let out = ResetBuffers { obs: obs.as_mut_slice().into(), task: self.task.as_mut_slice().into() };
        self.env.reset(seed, out).unwrap();
    }

    fn step_with(&mut self, actions: &[i32]) {
        self.try_step(actions).unwrap();
    }

    fn try_step(&mut self, actions: &[i32]) -> Result<(), PluginError> {
        let mut obs = [ArrayMut::new(self.obs.as_mut_slice())];
        let out = StepBuffers {
            obs: obs.as_mut_slice().into(),
            final_obs: Default::default(),
            reward: self.reward.as_mut_slice().into(),
            terminated: self.terminated.as_mut_slice().into(),
            truncated: self.truncated.as_mut_slice().into(),
            success: self.success.as_mut_slice().into(),
            task_end: self.task_end.as_mut_slice().into(),
            task: self.task.as_mut_slice().into(),
        };
        self.env.step([ArrayRef::new(actions)].as_slice().into(), out)
    }

    fn step_random(&mut self) {
        let actions: Vec<i32> = (0..self.n)
            .map(|_| {
                self.rng = self.rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((self.rng >> 33) % 15) as i32
            })
            .collect();
        self.step_with(&actions);
    }

    fn frame(&self, i: usize) -> &[u8] {
        &self.obs[i * FRAME..(i + 1) * FRAME]
    }

    fn done(&self, i: usize) -> bool {
        self.terminated[i] != 0 || self.truncated[i] != 0
    }
}

/// Observations of `steps` random steps (the reset frame first).
fn rollout(req: &EnvRequest, reset_seed: u64, steps: usize) -> Vec<u8> {
    let mut run = Run::new(req, reset_seed);
    let mut all = run.obs.clone();
    for _ in 0..steps {
        run.step_random();
        all.extend_from_slice(&run.obs);
        all.extend(run.reward.iter().flat_map(|r| r.to_ne_bytes()));
    }
    all
}

#[test]
fn descriptor_lists_the_16_games() {
    let d = ProcgenPlugin::descriptor();
    assert_eq!(d.kind, PluginKind::ENV);
    assert!(d.caps.contains(Caps::ENV_TRIALS) && !d.caps.contains(Caps::ENV_DEMOS));
    let names: Vec<&str> = d.families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names.len(), 16);
    assert!(names.contains(&"coinrun") && names.contains(&"starpilot"));
    assert!(d.families.iter().all(|f| f.tasks == TaskSet::indexed((1 << 31) - 1)));
}

#[test]
fn spec_and_observations() {
    let req = request("coinrun", vec![], 3, 1, 1, "");
    let run = Run::new(&req, 0);
    let spec = run.env.spec();
    assert_eq!(spec.obs, ObsSpace::image(64, 64, 3));
    assert_eq!(spec.action, ActionSpace::discrete(15));
    assert_eq!((spec.num_envs, spec.max_episode_steps), (3, 1000));
    for i in 0..3 {
        let f = run.frame(i);
        assert!(f.iter().any(|&b| b != f[0]), "env {i} rendered a blank frame");
        assert!(run.task[i] < LEVELS);
    }
}

#[test]
fn distribution_modes() {
    let run = Run::new(&request("coinrun", vec![], 2, 1, 1, "distribution_mode = \"exploration\""), 0);
    assert_eq!(run.task, vec![1949448038; 2]);
    assert_eq!(run.env.spec().max_episode_steps, 1000);
    let run = Run::new(&request("jumper", vec![4], 1, 1, 1, "distribution_mode = \"memory\""), 0);
    assert_eq!((run.task[0], run.env.spec().max_episode_steps), (4, 2000));
    let easy = Run::new(&request("maze", vec![4], 1, 1, 1, ""), 0);
    let hard = Run::new(&request("maze", vec![4], 1, 1, 1, "distribution_mode = \"hard\""), 0);
    assert_ne!(easy.frame(0), hard.frame(0));
    Run::new(&request("starpilot", vec![4], 1, 1, 1, "distribution_mode = \"extreme\""), 0).step_random();
}

#[test]
fn same_seeds_same_frames() {
    let req = request("coinrun", vec![], 4, 1, 7, "");
    let a = rollout(&req, 3, 50);
    assert_eq!(a, rollout(&req, 3, 50), "same seeds, different frames");
    assert_ne!(a, rollout(&req, 4, 50), "a different reset seed gave the same frames");
    assert_ne!(
        a,
        rollout(&request("coinrun", vec![], 4, 1, 8, ""), 3, 50),
        "a different request seed gave the same frames"
    );
    // Steered levels are deterministic too.
    let req = request("coinrun", vec![3, 9, 27, 81], 4, 2, 7, "");
    assert_eq!(rollout(&req, 1, 50), rollout(&req, 1, 50));
}

#[test]
fn episodes_are_consistent_with_step_outputs() {
    // Leaper's step limit is 500, so every env ends an episode in 520 steps.
    let req = request("leaper", (0..50).collect(), 8, 1, 2, "");
    let mut run = Run::new(&req, 0);
    assert_eq!(run.env.spec().max_episode_steps, 500);
    let mut mine: Vec<EpisodeStat> = Vec::new();
    let (mut ret, mut len, mut start) = (vec![0f64; 8], vec![0u32; 8], run.task.clone());
    for _ in 0..520 {
        run.step_random();
        for i in 0..8 {
            ret[i] += run.reward[i] as f64;
            len[i] += 1;
            assert!(!(run.terminated[i] != 0 && run.truncated[i] != 0));
            assert!(run.success[i] == 0 || run.terminated[i] != 0, "success without a terminal step");
            if run.done(i) {
                assert!(len[i] <= 500);
                assert_eq!(run.truncated[i] != 0, len[i] == 500 && run.success[i] == 0);
                assert_eq!(run.task_end[i], 1, "trials = 1 ends the task with every episode");
                mine.push(EpisodeStat {
                    env: i as u32,
                    task: start[i],
                    ret: ret[i] as _,
                    len: len[i],
                    success: run.success[i] != 0,
                });
                ret[i] = 0.0;
                len[i] = 0;
                start[i] = run.task[i];
            } else {
                assert_eq!(run.task_end[i], 0);
                assert_eq!(run.task[i], start[i], "level changed within an episode");
            }
        }
    }
    let reported = run.env.take_episodes();
    assert!(run.env.take_episodes().is_empty(), "episodes reported twice");
    assert_eq!(reported, mine);
    for i in 0..8u32 {
        assert!(reported.iter().any(|e| e.env == i), "env {i} never finished an episode");
    }
    // Leaper pays 10 for reaching the goal and nothing else.
    for e in &reported {
        assert_eq!(e.success, e.ret == 10.0, "{e:?}");
    }
}

fn levels_seen(req: &EnvRequest, steps: usize) -> HashSet<u64> {
    let mut run = Run::new(req, 0);
    let mut seen: HashSet<u64> = run.task.iter().copied().collect();
    for _ in 0..steps {
        run.step_random();
        seen.extend(run.task.iter().copied());
    }
    seen.extend(run.env.take_episodes().iter().map(|e| e.task));
    seen
}

#[test]
fn tasks_stay_within_the_requested_levels() {
    // Chaser episodes end quickly under random actions, so many levels get drawn.
    let train = levels_seen(&request("chaser", (0..100).collect(), 8, 1, 1, ""), 400);
    let test = levels_seen(&request("chaser", (100..120).collect(), 8, 1, 1, ""), 400);
    assert!(train.iter().all(|&t| t < 100), "{train:?}");
    assert!(test.iter().all(|&t| (100..120).contains(&t)), "{test:?}");
    assert!(train.is_disjoint(&test));
    assert!(train.len() > 8 && test.len() > 8, "too few episodes to tell: {train:?} {test:?}");

    // An explicit, non-contiguous list (steered by the plugin).
    let list = vec![5, 17, 1_000_003, 42, 2_147_483_646];
    let seen = levels_seen(&request("chaser", list.clone(), 8, 1, 1, ""), 400);
    assert!(seen.iter().all(|t| list.contains(t)), "{seen:?}");
    assert_eq!(seen.len(), list.len(), "{seen:?}");

    // One level.
    let seen = levels_seen(&request("chaser", vec![777], 4, 1, 1, ""), 200);
    assert_eq!(seen, HashSet::from([777]));
}

#[test]
fn steered_levels_are_the_real_levels() {
    // The first frame of a level reached by steering (at reset and at later episode starts)
    // equals that level's first frame when an env runs it natively (a one-level request), so
    // `task` names the level actually played.
    let list = vec![11, 500, 90_001];
    let mut run = Run::new(&request("chaser", list.clone(), 4, 1, 3, ""), 0);
    let mut firsts: Vec<(u64, Vec<u8>)> = (0..4).map(|i| (run.task[i], run.frame(i).to_vec())).collect();
    for _ in 0..300 {
        run.step_random();
        firsts.extend((0..4).filter(|&i| run.done(i)).map(|i| (run.task[i], run.frame(i).to_vec())));
    }
    assert!(firsts.len() > 12, "only {} episodes", firsts.len());
    for &l in &list {
        let native = Run::new(&request("chaser", vec![l], 1, 1, 99, ""), 5);
        let mine: Vec<&Vec<u8>> = firsts.iter().filter(|f| f.0 == l).map(|f| &f.1).collect();
        assert!(!mine.is_empty(), "level {l} never played");
        assert!(mine.iter().all(|f| f.as_slice() == native.frame(0)), "level {l}");
    }
    assert!(firsts.iter().all(|f| list.contains(&f.0)));
}

#[test]
fn trials_replay_the_same_level() {
    let trials = 3;
    let req = request("chaser", (0..40).map(|l| l * 7).collect(), 4, trials, 5, "");
    let mut run = Run::new(&req, 0);
    // Per env: (task, first frame) of each episode, and which episode ends carried task_end.
    let mut episodes: Vec<Vec<(u64, Vec<u8>)>> = (0..4).map(|i| vec![(run.task[i], run.frame(i).to_vec())]).collect();
    let mut task_ends: Vec<Vec<bool>> = vec![Vec::new(); 4];
    for _ in 0..1200 {
        run.step_random();
        for i in 0..4 {
            if run.done(i) {
                task_ends[i].push(run.task_end[i] != 0);
                episodes[i].push((run.task[i], run.frame(i).to_vec()));
            } else {
                assert_eq!(run.task_end[i], 0);
            }
        }
    }
    let mut tasks_done = 0;
    for i in 0..4 {
        for (k, end) in task_ends[i].iter().enumerate() {
            assert_eq!(*end, k as u32 % trials == trials - 1, "env {i} episode {k}");
        }
        for group in episodes[i].chunks(trials as usize) {
            for (task, frame) in group {
                assert_eq!(*task, group[0].0, "env {i}: level changed between trials");
                assert!(frame == &group[0].1, "env {i}: trial of level {task} starts with a different frame");
            }
            tasks_done += (group.len() == trials as usize) as usize;
        }
        let distinct: HashSet<u64> = episodes[i].iter().map(|e| e.0).collect();
        assert!(distinct.iter().all(|t| t % 7 == 0 && *t < 280));
    }
    assert!(tasks_done >= 8, "only {tasks_done} complete tasks");
    // A single level with trials: native bounds, task_end every `trials` episodes.
    let mut run = Run::new(&request("chaser", vec![8], 2, 2, 5, ""), 0);
    let mut ends = 0;
    for _ in 0..600 {
        run.step_random();
        for i in 0..2 {
            assert_eq!(run.task[i], 8);
            if run.done(i) {
                ends += 1;
            }
        }
    }
    let stats = run.env.take_episodes();
    assert_eq!(stats.len(), ends);
}

#[test]
fn bad_requests_are_refused_with_clear_messages() {
    let msg = |req: EnvRequest| {
        let e = error(&req);
        assert_eq!(e.kind, ErrorKind::INVALID_INPUT, "{e}");
        assert!(!e.message.contains('\n'));
        e.message.to_string()
    };
    let m = msg(request("coinrunn", vec![], 1, 1, 0, ""));
    assert!(m.contains("unknown Procgen game 'coinrunn'") && m.contains("bigfish") && m.contains("starpilot"), "{m}");
    let m = msg(request("coinrun", vec![3, LEVELS], 1, 1, 0, ""));
    assert!(m.contains("level 2147483647 is out of range"), "{m}");
    assert!(msg(request("coinrun", vec![], 0, 1, 0, "")).contains("num_envs must be at least 1"));
    assert!(msg(request("coinrun", vec![], 1, 0, 0, "")).contains("trials must be at least 1"));
    let m = msg(request("coinrun", vec![], 1, 1, 0, "distribution_mode = \"memory\""));
    assert!(m.contains("no memory distribution mode") && m.contains("maze"), "{m}");
    let m = msg(request("coinrun", vec![], 1, 1, 0, "distribution_mode = \"insane\""));
    assert!(m.contains("unknown variant") && m.contains("easy"), "{m}");
    let m = msg(request("coinrun", vec![], 1, 1, 0, "frame_skip = 4"));
    assert!(m.contains("frame_skip"), "{m}");
    let m = msg(request("coinrun", vec![1, 2], 1, 1, 0, "use_sequential_levels = true"));
    assert!(m.contains("use_sequential_levels"), "{m}");
    let m = msg(request("coinrun", vec![5], 1, 1, 0, "distribution_mode = \"exploration\""));
    assert!(m.contains("exploration"), "{m}");
    let m =
        msg(EnvRequest { config: "procgen_dir = \"/nonexistent\"".into(), ..request("coinrun", vec![], 1, 1, 0, "") });
    assert!(m.contains("not a Procgen install"), "{m}");

    // Bad calls on a built env.
    let mut run = Run::new(&request("coinrun", vec![], 2, 1, 0, ""), 0);
    let e = run.try_step(&[0, 15]).unwrap_err();
    assert!(e.message.contains("action 15 is out of range"), "{e}");
    let e = run.try_step(&[0]).unwrap_err();
    assert!(e.message.contains("action buffer has 1 elements, expected 2"), "{e}");
    run.step_with(&[0, 14]);
}

#[test]
fn procgen_is_found_without_configuration() {
    if std::env::var_os(locate::ENV_VAR).is_some() {
        return;
    }
    // Found above the test binary (target/debug/deps/...), as above the plugin library.
    let found = locate::find(None).unwrap();
    assert_eq!(found.dir.canonicalize().unwrap(), procgen_dir().canonicalize().unwrap());
    assert_eq!(found.version().as_deref(), Some("0.10.7"));
}

#[test]
fn step_limits_match_procgen() {
    // The timeouts the plugin reports are Procgen's own, read from each game's state.
    let dir = locate::find(Some(&procgen_dir())).unwrap();
    let lib = libenv::load(&dir.libenv()).unwrap();
    for g in games::GAMES.iter() {
        for mode in [games::DistributionMode::Easy, games::DistributionMode::Memory] {
            if !g.supports(mode) {
                continue;
            }
            let opts = vec![
                ("env_name", libenv::Opt::Str(g.name.into())),
                ("num_levels", libenv::Opt::Int(0)),
                ("start_level", libenv::Opt::Int(0)),
                ("num_actions", libenv::Opt::Int(15)),
                ("rand_seed", libenv::Opt::Int(1)),
                ("num_threads", libenv::Opt::Int(0)),
                ("distribution_mode", libenv::Opt::Int(mode.libenv_value())),
                ("resource_root", libenv::Opt::Str(dir.resource_root())),
            ];
            let mut venv = libenv::VecEnv::new(lib, 1, &opts).unwrap();
            let mut head = None;
            venv.edit_state(0, |s| {
                assert!(s.len() < 1 << 18, "{}: state of {} bytes", g.name, s.len());
                state::parse(s, g.name).map(|h| head = Some(h)).map(|()| false)
            })
            .unwrap();
            let head = head.unwrap();
            assert_eq!(head.timeout as u32, g.timeout(mode), "{} {mode:?}", g.name);
            assert_eq!((head.low, head.high), (0, i32::MAX));
            assert_eq!(head.current_level_seed, venv.level_seed()[0]);
        }
    }
}

/// Raw speed of native, steered and trial levels, for comparison with `benches/procgen.sh`
/// (`cargo test --release -p metarl-env-procgen --test procgen -- --ignored bench --nocapture`).
#[test]
#[ignore]
fn bench_coinrun_64() {
    let cases: [(&str, Vec<u64>, u32); 3] = [
        ("native 0..200", (0..200).collect(), 1),
        ("steered, every 2nd of 0..400", (0..200).map(|l| 2 * l).collect(), 1),
        ("trials 4 on 0..200", (0..200).collect(), 4),
    ];
    let game = std::env::var("BENCH_GAME").unwrap_or_else(|_| "coinrun".into());
    for (name, tasks, trials) in cases {
        let mut req = request(&game, tasks, 64, trials, 0, "");
        req.config = format!("procgen_dir = {:?}", procgen_dir().display().to_string()).into();
        let mut run = Run::new(&req, 0);
        for _ in 0..50 {
            run.step_random();
        }
        let steps = 1000;
        let t = std::time::Instant::now();
        for _ in 0..steps {
            run.step_random();
        }
        let rate = (steps * 64) as f64 / t.elapsed().as_secs_f64();
        let episodes = run.env.take_episodes().len();
        println!("{name}: {rate:.0} steps/s ({episodes} episodes)");
    }
}

/// Our frames are Procgen's: the same options and `rand_seed` give Python's exact frames.
/// Runs the Python package from `.venv` as a reference, so it is not part of the fast suite.
#[test]
#[ignore]
fn frames_match_python() {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let script = r#"
import sys, numpy as np
from procgen import ProcgenGym3Env
env = ProcgenGym3Env(num=4, env_name="chaser", num_levels=50, start_level=10, distribution_mode="easy", rand_seed=1234)
out = sys.stdout.buffer
out.write(env.observe()[1]["rgb"].tobytes())
for t in range(300):
    env.act(np.array([(t * 7 + i * 3) % 15 for i in range(4)], dtype=np.int32))
    rew, ob, first = env.observe()
    out.write(ob["rgb"].tobytes()); out.write(rew.astype(np.float32).tobytes()); out.write(first.astype(np.uint8).tobytes())
"#;
    let py = std::process::Command::new(&python).args(["-c", script]).output().expect("run .venv/bin/python");
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let req = request("chaser", (10..60).collect(), 4, 1, 0, "rand_seed = 1234");
    let mut run = Run::new(&req, 77);
    let mut ours = run.obs.clone();
    for t in 0..300 {
        run.step_with(&(0..4).map(|i| (t * 7 + i * 3) % 15).collect::<Vec<i32>>());
        ours.extend_from_slice(&run.obs);
        ours.extend(run.reward.iter().flat_map(|r| r.to_ne_bytes()));
        ours.extend((0..4).map(|i| run.done(i) as u8));
    }
    assert_eq!(ours.len(), py.stdout.len());
    assert!(ours == py.stdout, "frames differ from Python's");
    assert!(!run.env.take_episodes().is_empty(), "no episode ended; the check missed resets");
}

#[test]
#[ignore]
fn bench_state_patch() {
    let dir = locate::find(Some(&procgen_dir())).unwrap();
    let lib = libenv::load(&dir.libenv()).unwrap();
    for game in ["coinrun", "chaser", "bigfish", "maze"] {
        let opts = vec![
            ("env_name", libenv::Opt::Str(game.into())),
            ("num_levels", libenv::Opt::Int(0)),
            ("start_level", libenv::Opt::Int(0)),
            ("num_actions", libenv::Opt::Int(15)),
            ("rand_seed", libenv::Opt::Int(1)),
            ("num_threads", libenv::Opt::Int(0)),
            ("distribution_mode", libenv::Opt::Int(0)),
            ("resource_root", libenv::Opt::Str(dir.resource_root())),
        ];
        let mut venv = libenv::VecEnv::new(lib, 1, &opts).unwrap();
        let n = 500;
        let t = std::time::Instant::now();
        let mut size = 0;
        for _ in 0..n {
            venv.edit_state(0, |s| {
                size = s.len();
                Ok::<bool, ()>(true)
            })
            .unwrap();
        }
        let patch = t.elapsed().as_secs_f64() / n as f64;
        let t = std::time::Instant::now();
        for _ in 0..n {
            venv.step();
        }
        let step = t.elapsed().as_secs_f64() / n as f64;
        println!("{game}: state {size} bytes, get+set {:.0} us, step {:.0} us", patch * 1e6, step * 1e6);
    }
}
