//! Tests against the real ALE compiled into the plugin and the ROMs of the `ale-py==0.12.1`
//! wheel in the repository's `.venv` (both installed by `bash .ci/setup`).

use std::path::PathBuf;
use std::process::Command;

use metarl_env_ale::ale::{Ale, Settings};
use metarl_env_ale::{games, roms, AlePlugin};
use metarl_plugin_api::env::{Env, EnvRequest, EpisodeStat, ResetBuffers, StepBuffers};
use metarl_plugin_api::prelude::*;

fn rom_dir() -> PathBuf {
    roms::find(None).unwrap_or_else(|e| panic!("{e}"))
}

fn request(games_: &[&str], num_envs: u32, seed: u64, extra: &str) -> EnvRequest {
    EnvRequest {
        family: "atari".into(),
        tasks: games_.iter().map(|g| games::index(g).unwrap()).collect::<Vec<_>>().into(),
        num_envs,
        trials: 1,
        seed,
        threads: 1,
        config: extra.into(),
    }
}

fn error(req: &EnvRequest) -> String {
    match AlePlugin::new_env(req) {
        Ok(_) => panic!("request {req:?} was accepted"),
        Err(e) => e.message.to_string(),
    }
}

/// An env plus the buffers it writes into, like the host's runner.
struct Run {
    env: Box<dyn Env>,
    n: usize,
    obs: Vec<u8>,
    final_obs: Vec<u8>,
    reward: Vec<f32>,
    terminated: Vec<u8>,
    truncated: Vec<u8>,
    success: Vec<u8>,
    task_end: Vec<u8>,
    task: Vec<u64>,
}

impl Run {
    fn new(req: &EnvRequest, reset_seed: u64) -> Self {
        let env = AlePlugin::new_env(req).unwrap();
        let n = req.num_envs as usize;
        let per = env.spec().obs.parts[0].numel();
        let mut run = Run {
            env,
            n,
            obs: vec![0; n * per],
            final_obs: vec![0; n * per],
            reward: vec![0.0; n],
            terminated: vec![0; n],
            truncated: vec![0; n],
            success: vec![0; n],
            task_end: vec![0; n],
            task: vec![0; n],
        };
        let mut obs = [ArrayMut::new(run.obs.as_mut_slice())];
        let out = ResetBuffers { obs: obs.as_mut_slice().into(), task: run.task.as_mut_slice().into() };
        run.env.reset(reset_seed, out).unwrap();
        run
    }

    fn step(&mut self, actions: &[i32]) -> Result<(), PluginError> {
        let mut obs = [ArrayMut::new(self.obs.as_mut_slice())];
        let mut final_obs = [ArrayMut::new(self.final_obs.as_mut_slice())];
        let out = StepBuffers {
            obs: obs.as_mut_slice().into(),
            final_obs: final_obs.as_mut_slice().into(),
            reward: self.reward.as_mut_slice().into(),
            terminated: self.terminated.as_mut_slice().into(),
            truncated: self.truncated.as_mut_slice().into(),
            success: self.success.as_mut_slice().into(),
            task_end: self.task_end.as_mut_slice().into(),
            task: self.task.as_mut_slice().into(),
        };
        self.env.step([ArrayRef::new(actions)].as_slice().into(), out)
    }
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Observations, rewards and flags of `steps` steps of `actions(t)`, the reset frame first.
fn rollout(
    req: &EnvRequest,
    reset_seed: u64,
    steps: usize,
    mut action: impl FnMut(usize) -> i32,
) -> (Vec<u8>, Vec<EpisodeStat>) {
    let mut run = Run::new(req, reset_seed);
    let mut all = run.obs.clone();
    for t in 0..steps {
        let a: Vec<i32> = (0..run.n).map(|_| action(t)).collect();
        run.step(&a).unwrap();
        all.extend_from_slice(&run.obs);
        all.extend(run.reward.iter().flat_map(|r| r.to_ne_bytes()));
        all.extend_from_slice(&run.terminated);
    }
    (all, run.env.take_episodes())
}

#[test]
fn descriptor_lists_every_rom_of_the_wheel_as_named_tasks() {
    let d = AlePlugin::descriptor();
    assert_eq!(d.kind, PluginKind::ENV);
    assert_eq!(d.families.len(), 1);
    let names = &d.families[0].tasks.names;
    assert_eq!(names.len(), games::GAMES.len());
    let dir = rom_dir();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".bin").map(str::to_string))
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk,
        games::GAMES.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
        "the wheel's ROMs in {}",
        dir.display()
    );
}

#[test]
fn minimal_action_sets_are_the_studys() {
    // Sizes recorded from the author's code (FACTS): the 18-action padding maps past them to NOOP.
    let dir = rom_dir();
    for (game, n) in [
        ("pong", 6),
        ("assault", 7),
        ("battle_zone", 18),
        ("ms_pacman", 9),
        ("beam_rider", 9),
        ("breakout", 4),
        ("demon_attack", 6),
        ("asteroids", 14),
        ("solaris", 18),
    ] {
        let ale = Ale::new(
            &roms::rom(&dir, game).unwrap(),
            Settings { seed: 0, repeat_action_probability: 0.0, max_frames: 0 },
        )
        .unwrap();
        assert_eq!(ale.minimal_actions().len(), n, "{game}");
        assert_eq!(ale.screen_size(), (210, 160), "{game}");
    }
}

#[test]
fn spec_is_an_84x84x4_stack_with_18_padded_actions_or_the_native_set() {
    let env = AlePlugin::new_env(&request(&["pong", "breakout"], 2, 0, "")).unwrap();
    let spec = env.spec();
    assert_eq!(spec.obs.parts[0].shape.as_slice(), &[84, 84, 4]);
    assert_eq!(spec.obs.parts[0].dtype, Dtype::U8);
    assert_eq!(spec.action.discrete_choices(), Some(18));
    assert!(spec.action.parts[0].padded);
    assert_eq!(spec.max_episode_steps, 27_000);
    assert!(spec.caps.contains(Caps::ENV_FINAL_OBS));
    let native = AlePlugin::new_env(&request(&["pong"], 1, 0, "actions = \"minimal\"")).unwrap().spec();
    assert_eq!(native.action.discrete_choices(), Some(6));
    assert!(!native.action.parts[0].padded);
}

#[test]
fn bad_requests_and_options_get_clear_errors() {
    let mut req = request(&["pong"], 1, 0, "");
    req.family = "atari2600".into();
    assert!(error(&req).contains("unknown task family 'atari2600' (valid: atari)"));
    let mut req = request(&["pong"], 1, 0, "");
    req.tasks = vec![9999].into();
    assert!(error(&req).contains("task 9999 is out of range"));
    let e = error(&request(&["pong"], 1, 0, "sticky_actions = 1.5"));
    assert!(e.contains("sticky_actions") && e.contains("probability"), "{e}");
    let e = error(&request(&["pong"], 1, 0, "frame_stack = 0"));
    assert!(e.contains("frame_stack"), "{e}");
    let e = error(&request(&["pong"], 1, 0, "frame_skip = \"four\""));
    assert!(e.contains("frame_skip"), "{e}");
    let e = error(&request(&["pong"], 1, 0, "stiky_actions = 0.25"));
    assert!(e.contains("stiky_actions"), "{e}");
    let e = error(&request(&["pong", "breakout"], 1, 0, "actions = \"minimal\""));
    assert!(e.contains("breakout has 4") && e.contains("pong has 6") && e.contains("padded"), "{e}");
    // A ROM directory without the game's ROM names the file and the command that installs it.
    let empty = std::env::temp_dir().join(format!("metarl-ale-no-roms-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let e = error(&request(&["pong"], 1, 0, &format!("rom_dir = {:?}", empty.display().to_string())));
    assert!(e.contains("ROM of 'pong' missing") && e.contains("pong.bin") && e.contains("bash .ci/setup"), "{e}");
    let e = error(&request(&["pong"], 1, 0, "rom_dir = \"/nonexistent/roms\""));
    assert!(e.contains("rom_dir /nonexistent/roms is not a directory"), "{e}");
    // Actions outside the space are refused, not played.
    let mut run = Run::new(&request(&["pong"], 1, 0, ""), 0);
    let e = run.step(&[18]).unwrap_err();
    assert!(e.message.contains("action 18 of env 0 is outside 0..18"), "{}", e.message);
}

#[test]
fn same_seeds_replay_and_other_seeds_differ() {
    let req = request(&["breakout", "pong"], 2, 7, "");
    let mut lcg = Lcg(1);
    let (a, _) = rollout(&req, 3, 300, |_| lcg.next(18) as i32);
    let mut lcg = Lcg(1);
    let (b, _) = rollout(&req, 3, 300, |_| lcg.next(18) as i32);
    assert!(a == b, "same seeds and actions gave different rollouts");
    let mut lcg = Lcg(1);
    let (c, _) = rollout(&req, 4, 300, |_| lcg.next(18) as i32);
    assert!(a != c, "another reset seed gave the same rollout (no-op starts or game draws ignore the seed)");
}

#[test]
fn padded_actions_past_the_games_set_are_noops() {
    // Pong has 6 actions: padded actions 6..18 all act as NOOP, i.e. exactly like action 0.
    let req = request(&["pong"], 1, 5, "");
    let (noop, _) = rollout(&req, 0, 200, |_| 0);
    for a in [6, 11, 17] {
        let (padded, _) = rollout(&req, 0, 200, |_| a);
        assert!(noop == padded, "padded action {a} did not behave as NOOP");
    }
    let (fire_right, _) = rollout(&req, 0, 200, |_| 2);
    assert!(noop != fire_right, "a real action behaved as NOOP");
}

#[test]
fn frames_stack_oldest_first_and_final_observations_are_the_last_stack() {
    let mut run = Run::new(&request(&["breakout"], 1, 1, ""), 0);
    // A fresh game: three black frames, then the first screen.
    for px in 0..84 * 84 {
        assert_eq!(&run.obs[px * 4..px * 4 + 3], &[0, 0, 0]);
    }
    assert!(run.obs.chunks(4).any(|c| c[3] > 0), "the first frame is black");
    let mut lcg = Lcg(9);
    let mut lost_life = false;
    let mut games_done = 0;
    let mut raw = 0.0f64;
    for _ in 0..20_000 {
        let prev = run.obs.clone();
        run.step(&[lcg.next(4) as i32]).unwrap();
        raw += run.reward[0] as f64;
        let ended = run.terminated[0] != 0 || run.truncated[0] != 0;
        if !ended {
            // Channels shift by one: k+1 of the previous stack is k of this one.
            for px in (0..84 * 84).step_by(97) {
                assert_eq!(&run.obs[px * 4..px * 4 + 3], &prev[px * 4 + 1..px * 4 + 4]);
            }
        } else {
            // The final observation is the stack the step produced; it too continues `prev`.
            for px in (0..84 * 84).step_by(97) {
                assert_eq!(&run.final_obs[px * 4..px * 4 + 3], &prev[px * 4 + 1..px * 4 + 4]);
            }
            let eps = run.env.take_episodes();
            if eps.is_empty() {
                // A lost life: the episode ends but the game (and the frame stack) goes on.
                lost_life = true;
                for px in (0..84 * 84).step_by(97) {
                    assert_eq!(&run.obs[px * 4..px * 4 + 3], &run.final_obs[px * 4 + 1..px * 4 + 4]);
                }
            } else {
                assert_eq!(eps.len(), 1);
                assert_eq!(eps[0].task, games::index("breakout").unwrap());
                // Breakout rewards are at most 7 a brick, clipped to 1 for training; the game's
                // reported score is the raw sum, so at least the clipped sum.
                assert!(eps[0].ret as f64 >= raw, "raw score {} below the clipped sum {raw}", eps[0].ret);
                raw = 0.0;
                games_done += 1;
                if games_done == 2 {
                    break;
                }
            }
        }
        assert!(run.reward[0].abs() <= 1.0);
    }
    assert!(lost_life, "no life was lost in two games of Breakout");
    assert_eq!(games_done, 2, "two games of Breakout did not end in 20000 random steps");
}

#[test]
fn without_life_loss_terminals_an_episode_is_a_whole_game() {
    let mut run = Run::new(&request(&["breakout"], 1, 1, "terminal_on_life_loss = false\nreward_clip = 0"), 0);
    let mut lcg = Lcg(3);
    let mut ret = 0.0;
    for _ in 0..20_000 {
        run.step(&[lcg.next(4) as i32]).unwrap();
        ret += run.reward[0];
        if run.terminated[0] != 0 {
            let eps = run.env.take_episodes();
            assert_eq!(eps.len(), 1, "terminated without a game over");
            assert_eq!(eps[0].ret, ret, "unclipped step rewards sum to the game's score");
            return;
        }
    }
    panic!("a game of Breakout did not end in 20000 random steps");
}

/// `ale_py.ALEInterface` is the reference: the same ROM, seed and action sequence give the
/// same rewards, lives, game-over flags and grey screens, frame by frame.
#[test]
fn frames_and_rewards_match_ale_py() {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(python.is_file(), "{} missing: run `bash .ci/setup` (ale-py is the reference)", python.display());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ale_py_reference.py");
    let dir = rom_dir();
    for (game, seed, frames) in [("pong", 11u64, 1500usize), ("breakout", 5, 3000)] {
        let rom = roms::rom(&dir, game).unwrap();
        let out = std::env::temp_dir().join(format!("metarl-ale-ref-{game}-{}.bin", std::process::id()));
        let status = Command::new(&python)
            .arg(&script)
            .arg(&rom)
            .arg(seed.to_string())
            .arg(frames.to_string())
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success(), "the ale-py reference run failed for {game}");
        let reference = std::fs::read(&out).unwrap();
        std::fs::remove_file(&out).ok();
        let mut ale =
            Ale::new(&rom, Settings { seed: seed as i32, repeat_action_probability: 0.0, max_frames: 108_000 })
                .unwrap();
        let actions = ale.minimal_actions().to_vec();
        let mut state = seed;
        let mut screen = vec![0u8; 210 * 160];
        let rec = 9 + screen.len();
        assert_eq!(reference.len(), frames * rec);
        let mut rewards = 0;
        for t in 0..frames {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let a = actions[((state >> 33) % actions.len() as u64) as usize];
            let r = ale.act(a);
            let row = &reference[t * rec..(t + 1) * rec];
            let want_r = i32::from_le_bytes(row[0..4].try_into().unwrap());
            let want_lives = i32::from_le_bytes(row[4..8].try_into().unwrap());
            assert_eq!((r, ale.lives(), ale.game_over() as u8), (want_r, want_lives, row[8]), "{game} frame {t}");
            ale.grayscale(&mut screen);
            assert!(screen == row[9..], "{game}: screens differ at frame {t}");
            rewards += r.abs();
            if ale.game_over() {
                ale.reset_game();
            }
        }
        assert!(rewards > 0, "{game}: no reward in {frames} frames, so rewards were not compared");
    }
}
