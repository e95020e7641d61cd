//! The agent end to end through the ABI's types, on a synthetic keyframe task: a scene of grey
//! points in the unit box with a small red blob at a goal; an episode is one keyframe, which
//! succeeds (reward 1, terminal) when the target lands within 0.125 of the goal on every axis.
//! The spaces are named as env-metaworld names them (`cam_rgb`, `cam_point_cloud`, `proprio`;
//! `target` and `gripper`).

use metarl_plugin_api::algo::{ActInput, ActOutput, Algo, AlgoRequest, Transitions, UpdatePlan};
use metarl_plugin_api::types::*;
use metarl_plugin_kit::seeds::SeedStream;

use crate::agent::C2fArmAgent;

const SIDE: u32 = 8;
const POINTS: usize = (SIDE * SIDE) as usize;
const BLOB: usize = 8;
const SMALL: &str = "preset = \"cpu-small\"\ngrid = 4\nkernels = 8\nlatent = 8\ndense = 16\nbounds_offset = 0.25\nbatch_size = 16\nlearning_starts = 0";

fn obs_space() -> Space {
    Space::of(vec![
        Part::new("cam_rgb", Role::IMAGE, Dtype::U8, &[SIDE, SIDE, 3]),
        Part::new("cam_point_cloud", Role::POINT_CLOUD, Dtype::F32, &[SIDE, SIDE, 3]),
        Part::new("cam_extrinsics", Role::CAMERA_EXTRINSICS, Dtype::F32, &[4, 4]),
        Part::new("proprio", Role::VECTOR, Dtype::F32, &[2]),
    ])
}

fn action_space(dim: u32) -> Space {
    let (low, high) = if dim == 3 { (vec![0.0; 3], vec![1.0; 3]) } else { ([vec![0.0; 3], vec![-1.0; 4]].concat(), [vec![1.0; 3], vec![1.0; 4]].concat()) };
    Space::of(vec![
        Part { low: low.into(), high: high.into(), ..Part::new("target", Role::POSE, Dtype::F32, &[dim]) },
        Part { choices: 2, ..Part::new("gripper", Role::DISCRETE, Dtype::I32, &[]) },
    ])
}

fn request(num_envs: u32, config: &str, seed: u64) -> AlgoRequest {
    AlgoRequest {
        obs: obs_space(),
        action: action_space(3),
        num_envs,
        context_dim: 0,
        seed,
        device: "cpu".into(),
        threads: 1,
        config: config.into(),
    }
}

fn agent(num_envs: u32, config: &str, seed: u64) -> C2fArmAgent {
    tch::set_num_threads(1);
    C2fArmAgent::new(&request(num_envs, config, seed)).expect("the synthetic spaces are usable")
}

/// Observations of one batch: a scene per goal.
struct Obs {
    rgb: Vec<u8>,
    pts: Vec<f32>,
    ext: Vec<f32>,
    proprio: Vec<f32>,
}

impl Obs {
    fn new(goals: &[[f32; 3]], rng: &mut SeedStream) -> Obs {
        let mut o = Obs { rgb: Vec::new(), pts: Vec::new(), ext: vec![0.0; 16 * goals.len()], proprio: Vec::new() };
        for g in goals {
            for k in 0..POINTS {
                if k < POINTS - BLOB {
                    o.pts.extend([0; 3].map(|_| rng.uniform() as f32));
                    o.rgb.extend([128, 128, 128]);
                } else {
                    o.pts.extend(g.map(|x| x + (rng.uniform() as f32 - 0.5) * 0.02));
                    o.rgb.extend([255, 0, 0]);
                }
            }
            o.proprio.extend([0.5, 0.0]);
        }
        o
    }
    fn views(&self) -> Vec<ArrayRef<'_>> {
        vec![ArrayRef::new(&self.rgb[..]), ArrayRef::new(&self.pts[..]), ArrayRef::new(&self.ext[..]), ArrayRef::new(&self.proprio[..])]
    }
}

fn goals(n: usize, rng: &mut SeedStream) -> Vec<[f32; 3]> {
    (0..n).map(|_| [0; 3].map(|_| 0.1 + 0.8 * rng.uniform() as f32)).collect()
}

/// Acts in `obs`: targets, grippers and extras.
fn act(a: &mut C2fArmAgent, obs: &Obs, n: usize, deterministic: bool) -> (Vec<f32>, Vec<i32>, Vec<f32>) {
    let (mut target, mut grip, mut extras) = (vec![0f32; 3 * n], vec![0i32; n], vec![0f32; n * a.info().extras_dim as usize]);
    let views = obs.views();
    let mut out = [ArrayMut::new(&mut target[..]), ArrayMut::new(&mut grip[..])];
    a.act(ActInput::observations(views.as_slice().into(), deterministic), ActOutput { actions: out.as_mut_slice().into(), extras: extras.as_mut_slice().into() })
        .unwrap();
    (target, grip, extras)
}

fn success(target: &[f32], goal: &[f32; 3]) -> bool {
    (0..3).all(|k| (target[k] - goal[k]).abs() < 0.125)
}

/// Records one-keyframe episodes: `target` (and `extras`, empty for demonstrations) in the
/// scenes of `goals`, rewarded by [`success`], all terminal (or all going on, with the same
/// scene as the next observation).
fn record(a: &mut C2fArmAgent, obs: &Obs, goals: &[[f32; 3]], target: &[f32], extras: &[f32], task: u64) {
    record_as(a, obs, goals, target, extras, task, true);
}

fn record_as(a: &mut C2fArmAgent, obs: &Obs, goals: &[[f32; 3]], target: &[f32], extras: &[f32], task: u64, terminal: bool) {
    let n = goals.len();
    let grip = vec![1i32; n];
    let rewards: Vec<f32> = goals.iter().enumerate().map(|(i, g)| success(&target[3 * i..3 * i + 3], g) as u8 as f32).collect();
    let ones = vec![terminal as u8; n];
    let zeros = vec![0u8; n];
    let tasks = vec![task; n];
    let views = obs.views();
    let actions = [ArrayRef::new(target), ArrayRef::new(&grip[..])];
    a.record(Transitions {
        obs: views.as_slice().into(),
        actions: actions.as_slice().into(),
        rewards: rewards.as_slice().into(),
        terminated: ones.as_slice().into(),
        truncated: zeros.as_slice().into(),
        next_obs: views.as_slice().into(),
        task: tasks.as_slice().into(),
        extras: extras.into(),
        ..Default::default()
    })
    .unwrap();
}

/// Demonstrations: the goal itself as the target, one batch of `n` per task.
fn demos(a: &mut C2fArmAgent, n: usize, tasks: &[u64], rng: &mut SeedStream) {
    for &t in tasks {
        let g = goals(n, rng);
        let obs = Obs::new(&g, rng);
        let target: Vec<f32> = g.iter().flatten().copied().collect();
        record(a, &obs, &g, &target, &[], t);
    }
}

/// Greedy success over `batches` batches of `n` fresh scenes.
fn success_rate(a: &mut C2fArmAgent, n: usize, batches: usize, rng: &mut SeedStream) -> f64 {
    let mut hits = 0;
    for _ in 0..batches {
        let g = goals(n, rng);
        let (t, _, _) = act(a, &Obs::new(&g, rng), n, true);
        hits += g.iter().enumerate().filter(|(i, goal)| success(&t[3 * i..3 * i + 3], goal)).count();
    }
    hits as f64 / (n * batches) as f64
}

#[test]
fn spaces_it_cannot_use_are_refused_in_one_line() {
    tch::set_num_threads(1);
    let native = Space::of(vec![Part { low: vec![-1.0; 4].into(), high: vec![1.0; 4].into(), ..Part::new("delta", Role::CONTINUOUS, Dtype::F32, &[4]) }]);
    let e = C2fArmAgent::new(&AlgoRequest { action: native, ..request(1, "", 0) }).err().unwrap();
    assert!(e.message.contains("keyframe") && !e.message.contains('\n'), "{}", e.message);
    let e = C2fArmAgent::new(&AlgoRequest { obs: Space::vector(39), ..request(1, "", 0) }).err().unwrap();
    assert!(e.message.contains("point cloud") && !e.message.contains('\n'), "{}", e.message);
    let e = C2fArmAgent::new(&request(1, "preset = \"cpu-small\"\ngrid = 10", 0)).err().unwrap();
    assert!(e.message.contains("grid size 10"), "{}", e.message);
}

#[test]
fn greedy_actions_are_voxel_centres_and_exploration_is_real() {
    let mut a = agent(4, SMALL, 1);
    let mut rng = SeedStream::new(2);
    let obs = Obs::new(&goals(4, &mut rng), &mut rng);
    let geo = a.geometry();
    let (t1, g1, x1) = act(&mut a, &obs, 4, true);
    let (t2, g2, x2) = act(&mut a, &obs, 4, true);
    assert_eq!((&t1, &g1, &x1), (&t2, &g2, &x2), "greedy acting is deterministic and draws nothing");
    for i in 0..4 {
        let x = &x1[10 * i..10 * (i + 1)];
        let voxels: Vec<[i64; 3]> = (0..2).map(|l| [x[3 * l] as i64, x[3 * l + 1] as i64, x[3 * l + 2] as i64]).collect();
        let p = geo.position(&voxels, &[]);
        assert!((0..3).all(|k| (p[k] as f32 - t1[3 * i + k]).abs() < 1e-6), "the target is the last voxel's centre");
        assert_eq!(&x[6..9], &[36.0, 36.0, 36.0], "no rotation control: the identity's bins");
        assert_eq!(x[9] as i32, g1[i]);
    }
    // ε = 1: every level's voxel is uniform, so targets spread over the box.
    let mut explorer = agent(4, &format!("{SMALL}\nepsilon_start = 1.0\nepsilon_end = 1.0"), 1);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let (t, _, _) = act(&mut explorer, &obs, 4, false);
        seen.extend(t.chunks(3).map(|c| c.iter().map(|x| (x * 1000.0) as i64).collect::<Vec<_>>()));
    }
    assert!(seen.len() > 30, "{} distinct targets of 40", seen.len());
    // Gaussian voxel noise alone moves some voxels off the greedy ones, never out of the grid.
    let mut noisy = agent(4, &format!("{SMALL}\nepsilon_start = 0.0\nepsilon_end = 0.0\nvoxel_noise = 1.0"), 1);
    let (_, _, greedy) = act(&mut noisy, &obs, 4, true);
    let moved = (0..10).filter(|_| act(&mut noisy, &obs, 4, false).2 != greedy).count();
    assert!(moved >= 8, "{moved} of 10 noisy acts differ from the greedy one");
}

#[test]
fn demos_fill_the_replay_and_an_update_splits_the_batch_over_tasks() {
    let mut a = agent(4, SMALL, 3);
    let mut rng = SeedStream::new(4);
    demos(&mut a, 4, &[0, 5], &mut rng);
    assert_eq!((a.replay().buffer(0).unwrap().len(), a.replay().buffer(5).unwrap().len()), (4, 4));
    // A demo row's action is the goal's voxel at each level (the target's position).
    let s = &a.replay().buffer(0).unwrap().sample(1, 0.5, || 0.0)[0];
    let p = a.geometry().position(&s.action.voxels, s.shifts);
    assert_eq!(s.reward, 1.0);
    assert!(s.next.is_none(), "terminal rows do not bootstrap");
    assert!((0..3).all(|k| (p[k] - s.obs.points[3 * (POINTS - 1) + k] as f64).abs() < 0.0625 + 0.02), "{p:?}");
    let before = a.params().unwrap();
    let plan = UpdatePlan::off_policy(vec![0, 5], 3, 2);
    let stats = a.update(&plan).unwrap();
    assert_eq!((stats.grad_steps, stats.samples), (2, 12), "2 steps of 3 samples from each of 2 tasks");
    assert!(stats.scalars.iter().any(|s| s.name.as_str() == "loss" && s.value.is_finite()));
    assert_ne!(a.params().unwrap(), before);
    let priorities: Vec<f64> = (0..4).map(|s| a.replay().buffer(5).unwrap().priority(s)).collect();
    assert!(priorities.iter().any(|&p| p != 1.0), "sampled rows got new priorities: {priorities:?}");
    // grad_steps = 0 evaluates without changing anything.
    let params = a.params().unwrap();
    a.update(&UpdatePlan::off_policy(vec![0], 4, 0)).unwrap();
    assert_eq!(a.params().unwrap(), params);
    let e = a.update(&UpdatePlan::off_policy(vec![9], 4, 1)).unwrap_err();
    assert!(e.message.contains("task 9"), "{}", e.message);
}

#[test]
fn the_agents_own_choices_come_back_through_extras() {
    let mut a = agent(2, &format!("{SMALL}\nepsilon_start = 1.0\nepsilon_end = 1.0"), 5);
    let mut rng = SeedStream::new(6);
    let g = goals(2, &mut rng);
    let obs = Obs::new(&g, &mut rng);
    let (t, _, x) = act(&mut a, &obs, 2, false);
    record(&mut a, &obs, &g, &t, &x, 0);
    let buf = a.replay().buffer(0).unwrap();
    // Equal priorities: one sample per half of the total is one per slot.
    let mut stored: Vec<Vec<[i64; 3]>> = buf.sample(2, 0.5, || 0.5).iter().map(|s| s.action.voxels.clone()).collect();
    stored.sort();
    let mut chosen: Vec<Vec<[i64; 3]>> = x.chunks(10).map(|c| (0..2).map(|l| [c[3 * l] as i64, c[3 * l + 1] as i64, c[3 * l + 2] as i64]).collect()).collect();
    chosen.sort();
    // Level 0's voxel need not hold the final position (the level-1 box is wider than it), so
    // the relabelled path of a demonstration could differ: what was chosen is what is stored.
    assert_eq!(stored, chosen);
}

#[test]
fn save_and_load_resume_exactly() {
    let cfg = format!("{SMALL}\nvoxel_noise = 0.5");
    let mut a = agent(2, &cfg, 7);
    let mut rng = SeedStream::new(8);
    demos(&mut a, 2, &[0, 1], &mut rng);
    a.update(&UpdatePlan::off_policy(vec![0, 1], 2, 1)).unwrap();
    let bytes = a.save().unwrap();
    let mut b = agent(2, &cfg, 99);
    b.load(&bytes).unwrap();
    assert_eq!(b.save().unwrap(), bytes, "a loaded agent saves the same bytes");
    let obs = Obs::new(&goals(2, &mut rng), &mut rng);
    let plan = UpdatePlan::off_policy(vec![0, 1], 2, 2);
    for _ in 0..2 {
        assert_eq!(act(&mut a, &obs, 2, false), act(&mut b, &obs, 2, false));
        let (sa, sb) = (a.update(&plan).unwrap(), b.update(&plan).unwrap());
        assert_eq!(sa.scalars, sb.scalars);
    }
    assert_eq!(a.params().unwrap(), b.params().unwrap());
    assert!(b.load(&bytes[..bytes.len() - 5]).unwrap_err().message.contains("truncated"));
    let mut other = agent(2, "preset = \"cpu-small\"\ngrid = 4\nkernels = 8\nlatent = 8\ndense = 16\nbounds_offset = 0.2", 7);
    assert!(other.load(&bytes).unwrap_err().message.contains("another network"));
}

#[test]
fn adaptation_restarts_the_exploration_schedule_and_a_continued_unit_does_not() {
    let eps = |a: &C2fArmAgent| (a.epsilon() * 1e6).round() / 1e6;
    let cfg = format!("{SMALL}\nepsilon_start = 0.3\nepsilon_end = 0.05\nexplore_steps = 8");
    let mut pre = agent(2, &cfg, 7);
    let mut rng = SeedStream::new(8);
    demos(&mut pre, 2, &[0, 1], &mut rng);
    for _ in 0..5 {
        let obs = Obs::new(&goals(2, &mut rng), &mut rng);
        act(&mut pre, &obs, 2, false);
    }
    assert_eq!(eps(&pre), 0.05, "pretraining ran its schedule out");
    let bytes = pre.save().unwrap();
    // A unit continued from its own checkpoint goes on at pretraining's ε ...
    let mut continued = agent(2, &cfg, 9);
    continued.load(&bytes).unwrap();
    assert_eq!(eps(&continued), 0.05);
    // ... an adaptation starts the schedule again, with the pretrained weights and replay ...
    let mut adapted = agent(2, &cfg, 9);
    adapted.load_pretrained(&bytes).unwrap();
    assert_eq!(eps(&adapted), 0.3);
    assert_eq!(adapted.params().unwrap(), pre.params().unwrap());
    assert_eq!(adapted.replay().len(), pre.replay().len());
    // ... unless asked to keep it.
    let mut kept = agent(2, &format!("{cfg}\nadapt_exploration = \"continue\""), 9);
    kept.load_pretrained(&bytes).unwrap();
    assert_eq!(eps(&kept), 0.05);
    // Without its replay, a checkpoint starts an adaptation but continues no unit.
    let lean = format!("{cfg}\nsave_replay = false");
    let mut a = agent(2, &lean, 7);
    demos(&mut a, 2, &[0, 1], &mut rng);
    let bytes = a.save().unwrap();
    let e = agent(2, &lean, 9).load(&bytes).unwrap_err();
    assert!(e.message.contains("save_replay = false"), "{}", e.message);
    let mut b = agent(2, &lean, 9);
    b.load_pretrained(&bytes).unwrap();
    assert!(b.replay().is_empty());
}

#[test]
fn params_round_trip_and_reset_heads_keeps_the_encoder() {
    let mut a = agent(1, SMALL, 9);
    let p = a.params().unwrap();
    assert_eq!(p.len() as u64, a.info().param_count);
    let shifted: Vec<f32> = p.iter().map(|x| x + 0.5).collect();
    a.set_params(&shifted).unwrap();
    assert_eq!(a.params().unwrap(), shifted);
    assert!(a.set_params(&p[1..]).is_err());
    a.set_params(&p).unwrap();
    a.reset_heads(123).unwrap();
    let q = a.params().unwrap();
    let changed = p.iter().zip(&q).filter(|(x, y)| x != y).count();
    // Only the heads move: the translation conv and the rotation/gripper MLP.
    assert!(changed > 0 && changed < p.len() / 2, "{changed} of {}", p.len());
}

#[test]
fn with_demos_it_learns_to_reach_the_red_blob() {
    let started = std::time::Instant::now();
    let mut a = agent(16, &format!("{SMALL}\nlearning_rate = 0.003"), 11);
    let mut rng = SeedStream::new(12);
    let untrained = success_rate(&mut a, 16, 4, &mut rng);
    demos(&mut a, 16, &[0, 0, 0, 0], &mut rng);
    // Its own failures too, as exploration would record them.
    for _ in 0..2 {
        let g = goals(16, &mut rng);
        let obs = Obs::new(&g, &mut rng);
        let mut explorer = agent(16, &format!("{SMALL}\nepsilon_start = 1.0\nepsilon_end = 1.0"), 13);
        let (t, _, _) = act(&mut explorer, &obs, 16, false);
        record(&mut a, &obs, &g, &t, &[], 0);
    }
    a.update(&UpdatePlan::off_policy(vec![0], 16, 150)).unwrap();
    let trained = success_rate(&mut a, 16, 4, &mut rng);
    eprintln!("success {untrained:.3} untrained -> {trained:.3} after 150 updates ({:.1} s)", started.elapsed().as_secs_f64());
    assert!(trained >= 0.5 && trained > untrained + 0.3, "{untrained} -> {trained}");
}

#[test]
fn the_context_gradient_matches_finite_differences() {
    tch::set_num_threads(1);
    let mut a = C2fArmAgent::new(&AlgoRequest { context_dim: 3, ..request(2, SMALL, 21) }).unwrap();
    assert!(a.info().caps.contains(Caps::CONTEXT | Caps::CONTEXT_GRAD));
    let mut rng = SeedStream::new(22);
    for task in [0, 1] {
        demos(&mut a, 2, &[task], &mut rng);
        let g = goals(2, &mut rng);
        let obs = Obs::new(&g, &mut rng);
        // Rows that bootstrap, so that the target depends on z too.
        record_as(&mut a, &obs, &g, &[0.5; 6], &[], task, false);
    }
    let z = vec![0.3f32, -0.2, 0.5, 0.1, 0.4, -0.6];
    let plan = |z: &[f32], want: bool, steps: u32| UpdatePlan { context: z.to_vec().into(), want_context_grad: want, ..UpdatePlan::off_policy(vec![0, 1], 4, steps) };
    let grad = a.update(&plan(&z, true, 0)).unwrap().context_grad.to_vec();
    assert_eq!(grad.len(), 6, "one row of 3 per task");
    let loss = |a: &mut C2fArmAgent, z: &[f32]| a.update(&plan(z, false, 0)).unwrap().scalars[0].value;
    let h = 0.05;
    let top = grad.iter().fold(0f32, |m, g| m.max(g.abs()));
    assert!(top > 1e-5, "the loss depends on z: {grad:?}");
    for j in 0..6 {
        let (mut up, mut down) = (z.clone(), z.clone());
        up[j] += h;
        down[j] -= h;
        let fd = (loss(&mut a, &up) - loss(&mut a, &down)) / (2.0 * h as f64);
        assert!((fd - grad[j] as f64).abs() <= 0.1 * top as f64 + 1e-4, "d/dz_{j}: analytic {} vs finite differences {fd}", grad[j]);
    }
    // A real update returns the gradient of its first step, before it moves anything.
    let stepped = a.update(&plan(&z, true, 1)).unwrap().context_grad.to_vec();
    for (s, g) in stepped.iter().zip(&grad) {
        assert!((s - g).abs() <= 1e-5 * top.max(1.0), "{stepped:?} vs {grad:?}");
    }
    // Acting takes one row per env; a plan's rows must be one per task.
    let obs = Obs::new(&goals(2, &mut rng), &mut rng);
    let views = obs.views();
    let (mut target, mut grip, mut extras) = (vec![0f32; 6], vec![0i32; 2], vec![0f32; 20]);
    let mut out = [ArrayMut::new(&mut target[..]), ArrayMut::new(&mut grip[..])];
    let ctx = [0.0f32; 6];
    let input = ActInput { context: ctx[..].into(), ..ActInput::observations(views.as_slice().into(), true) };
    a.act(input, ActOutput { actions: out.as_mut_slice().into(), extras: extras.as_mut_slice().into() }).unwrap();
    assert!(a.update(&plan(&z[..3], false, 1)).is_err());
}

#[test]
fn rows_bootstrap_from_the_true_next_observation_or_not_at_all() {
    let mut a = agent(3, SMALL, 31);
    let mut rng = SeedStream::new(32);
    let (obs, next, last) = (Obs::new(&goals(3, &mut rng), &mut rng), Obs::new(&goals(3, &mut rng), &mut rng), Obs::new(&goals(3, &mut rng), &mut rng));
    let (target, _, extras) = act(&mut a, &obs, 3, false);
    let grip = [0i32; 3];
    let first_point = |o: &Obs, i: usize| o.pts[i * POINTS * 3..i * POINTS * 3 + 3].to_vec();
    // Row 0 truncated (bootstrap from final_obs), row 1 terminated, row 2 going on (next_obs).
    let (views, next_views, last_views) = (obs.views(), next.views(), last.views());
    let actions = [ArrayRef::new(&target[..]), ArrayRef::new(&grip[..])];
    let put = |a: &mut C2fArmAgent, final_obs: &[ArrayRef<'_>], extras: &[f32], task: u64| {
        a.record(Transitions {
            obs: views.as_slice().into(),
            actions: actions.as_slice().into(),
            rewards: [0.0f32; 3][..].into(),
            terminated: [0u8, 1, 0][..].into(),
            truncated: [1u8, 0, 0][..].into(),
            next_obs: next_views.as_slice().into(),
            task: [task; 3][..].into(),
            final_obs: final_obs.into(),
            extras: extras.into(),
            ..Default::default()
        })
        .unwrap()
    };
    put(&mut a, &last_views, &extras, 0);
    // Without final_obs: the agent's own truncated row cannot bootstrap (next_obs is the next
    // episode's); a demonstration's can (the kit gives its true next observation there).
    put(&mut a, &[], &extras, 1);
    put(&mut a, &[], &[], 2);
    let nexts = |a: &C2fArmAgent, task: u64| -> Vec<Option<Vec<f32>>> {
        a.replay().buffer(task).unwrap().sample(3, 0.5, || 0.5).iter().map(|s| s.next.map(|c| c.points[..3].to_vec())).collect()
    };
    assert_eq!(nexts(&a, 0), [Some(first_point(&last, 0)), None, Some(first_point(&next, 2))]);
    assert_eq!(nexts(&a, 1), [None, None, Some(first_point(&next, 2))]);
    assert_eq!(nexts(&a, 2), [Some(first_point(&next, 0)), None, Some(first_point(&next, 2))]);
}

#[test]
fn crop_augmentation_moves_a_demos_finer_boxes_around_its_target() {
    let mut rng = SeedStream::new(42);
    let mut a = agent(8, SMALL, 41);
    demos(&mut a, 8, &[0], &mut rng);
    let reach = 0.75 * 0.25;
    let samples = a.replay().buffer(0).unwrap().sample(8, 0.5, || 0.5).into_iter().map(|s| (s.shifts.to_vec(), s.action.voxels.clone(), s.obs.points.clone())).collect::<Vec<_>>();
    let mut distinct = std::collections::BTreeSet::new();
    for (shifts, voxels, points) in &samples {
        assert_eq!(shifts.len(), 1, "one shift for level 1");
        assert!(shifts[0].iter().all(|s| s.abs() <= reach as f32 + 1e-6), "{shifts:?}");
        distinct.insert(format!("{shifts:?}"));
        // The blob's centre (the demonstrated target, ±1 cm) lies in the chosen level-1 voxel
        // of the shifted box: within half a voxel (0.0625) of its centre.
        let blob: Vec<f64> = (0..3).map(|k| (POINTS - BLOB..POINTS).map(|p| points[3 * p + k] as f64).sum::<f64>() / BLOB as f64).collect();
        let p = a.geometry().position(voxels, shifts);
        assert!((0..3).all(|k| (p[k] - blob[k]).abs() <= 0.0625 + 0.011), "{p:?} vs {blob:?}");
    }
    assert_eq!(distinct.len(), 8, "each demonstration row draws its own shift");
    // Off: no shift, the canonical boxes.
    let mut plain = agent(8, &format!("{SMALL}\ncrop_augmentation = 0.0"), 41);
    demos(&mut plain, 8, &[0], &mut rng);
    assert!(plain.replay().buffer(0).unwrap().sample(8, 0.5, || 0.5).iter().all(|s| s.shifts.is_empty()));
}
