//! The algo contract as Rainbow honours it: exact resume, the context gradient, grad_steps = 0,
//! fine-tuning loads, reset_heads and request validation.

use super::common::*;
use crate::RainbowAgent;
use metarl_plugin_api::abi_stable::std_types::RSlice;
use metarl_plugin_api::prelude::*;

const TASKS: &[u64] = &[0, 1];

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Steps `lp` with logged actions, recording nothing: brings a second copy of the env to the
/// state the first was in.
fn replay_actions(lp: &mut Loop, log: &[i32]) {
    let mut dummy = agent(lp.n as u32, 0, 0, SMALL);
    for acts in log.chunks(lp.n) {
        lp.play(&mut dummy, Policy::Fixed(acts), false);
    }
}

#[test]
fn save_then_load_into_a_fresh_agent_continues_bit_identically() {
    let (envs, seed) = (2u32, 5u64);
    let mut a = agent(envs, 0, seed, SMALL);
    let mut lp = Loop::new(&env_request(envs, TASKS, 3), 1, 0);
    let mut recorded = 0;
    lp.train(&mut a, 160, &mut recorded, TASKS);
    assert!(a.updates() > 50, "only {} updates before the save", a.updates());
    let bytes = a.save().unwrap();
    let log_at_save = lp.action_log.clone();

    // Uninterrupted run.
    let losses_a = lp.train(&mut a, 60, &mut recorded.clone(), TASKS);
    let actions_a = lp.action_log[log_at_save.len()..].to_vec();

    // Interrupted: a fresh agent (another seed, so nothing but the checkpoint can match), the
    // env brought to the same state.
    let mut b = agent(envs, 0, 999, SMALL);
    assert_ne!(bits(&b.params().unwrap()), bits(&a.params().unwrap()));
    b.load(&bytes).unwrap();
    let mut lp2 = Loop::new(&env_request(envs, TASKS, 3), 1, 0);
    replay_actions(&mut lp2, &log_at_save);
    let start = lp2.action_log.len();
    let losses_b = lp2.train(&mut b, 60, &mut recorded.clone(), TASKS);
    assert_eq!(lp2.action_log[start..], actions_a[..], "actions after the resume differ");
    assert_eq!(losses_a.len(), 60);
    assert_eq!(losses_a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), losses_b.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    assert_eq!(bits(&a.params().unwrap()), bits(&b.params().unwrap()), "parameters after the resume differ");
    assert_eq!(a.save().unwrap(), b.save().unwrap(), "full state (target, Adam, replay, generators) differs");
}

#[test]
fn checkpoints_store_each_frame_once() {
    let mut a = agent(2, 0, 1, SMALL);
    let mut lp = Loop::new(&env_request(2, TASKS, 3), 1, 0);
    let mut seed = 9u64;
    for _ in 0..500 {
        lp.step(&mut a, Some(&mut seed), true);
    }
    let rows: usize = a.replay().buffers.iter().map(|(_, b)| b.len()).sum();
    let frames: usize = a.replay().buffers.iter().map(|(_, b)| b.frames_live()).sum();
    // Gridworld observations are single frames (frame_stack 1): one per row, one more per
    // episode start (the first observation of an episode is not the previous row's next).
    let episodes = lp.returns.len();
    assert_eq!(rows, 1000);
    assert!(frames <= rows + episodes + 2 && frames >= rows, "{frames} frames for {rows} rows, {episodes} episodes");
    let frame_bytes = (FRAME_PX * FRAME_PX * 3) as usize;
    let size = a.save().unwrap().len();
    assert!(size < frames * frame_bytes + rows * 64 + 4 * a.params().unwrap().len() * 5, "checkpoint of {size} bytes");
    assert!(size > frames * frame_bytes);
}

/// Records `steps` random steps with context rows into a context agent.
fn context_agent(steps: usize) -> (RainbowAgent, Vec<f32>) {
    let ctx = 3;
    let mut a = agent(2, ctx, 7, SMALL);
    let mut lp = Loop::new(&env_request(2, TASKS, 3), 1, ctx as usize);
    let mut seed = 4u64;
    for _ in 0..steps {
        lp.step(&mut a, Some(&mut seed), true);
    }
    // One act so that the online noise is a training draw.
    lp.step(&mut a, None, false);
    // Make the context matter: its columns of the first head layers 40x larger, in the online
    // and the target net, so that dL/dz stands well above float32 rounding in the losses.
    let mut flat = Vec::new();
    for (name, mut v) in a.online_params_named() {
        if name.starts_with("fc_h_") && name.ends_with("weight_mu") {
            let fin = v.len() / 64;
            for row in v.chunks_mut(fin) {
                row[fin - ctx as usize..].iter_mut().for_each(|w| *w *= 40.0);
            }
        }
        flat.extend(v);
    }
    a.set_params(&flat).unwrap();
    a.sync_target();
    (a, vec![0.3, -0.7, 1.1, -0.2, 0.5, 0.9])
}

fn ctx_plan(z: &[f32], grad_steps: u32, want: bool) -> UpdatePlan {
    UpdatePlan { context: z.to_vec().into(), want_context_grad: want, ..UpdatePlan::off_policy(TASKS.to_vec(), 8, grad_steps) }
}

fn loss_of(a: &mut RainbowAgent, z: &[f32]) -> f64 {
    let s = a.update(&ctx_plan(z, 0, false)).unwrap();
    s.scalars.iter().find(|s| s.name.as_str() == "loss").unwrap().value
}

/// dL/dz from `update` matches central finite differences of the `grad_steps = 0` loss, for
/// `grad_steps` 0 and 1 alike; `grad_steps = 0` changes nothing (the whole saved state is
/// byte-identical afterwards). Tolerance: |g - fd| <= 1e-3 + 2% of |fd| (float32 network,
/// step h = 1e-3; the gradients are of order 1e-2 to 1e-1).
#[test]
fn context_gradient_matches_finite_differences_and_grad_steps_zero_changes_nothing() {
    let (mut a, z) = context_agent(150);
    let before = a.save().unwrap();
    let g0 = a.update(&ctx_plan(&z, 0, true)).unwrap();
    assert_eq!((g0.grad_steps, g0.samples), (0, 0));
    let g0 = g0.context_grad.to_vec();
    assert_eq!(g0.len(), z.len());
    assert!(g0.iter().map(|g| g.abs()).sum::<f32>() > 1e-4, "context gradient is zero: {g0:?}");
    let h = 1e-3f32;
    for i in 0..z.len() {
        let (mut up, mut down) = (z.clone(), z.clone());
        up[i] += h;
        down[i] -= h;
        let fd = (loss_of(&mut a, &up) - loss_of(&mut a, &down)) / (2.0 * h as f64);
        let g = g0[i] as f64;
        eprintln!("dL/dz[{i}]: analytic {g:.6}, finite difference {fd:.6}");
        assert!((g - fd).abs() <= 1e-3 + 0.02 * fd.abs(), "dL/dz[{i}]: analytic {g:.6}, finite difference {fd:.6}");
    }
    assert_eq!(a.save().unwrap(), before, "grad_steps = 0 changed the agent's state");
    // The first step of a real update reports the same gradient (pre-update parameters,
    // the same batch), then learns.
    let params = a.params().unwrap();
    let g1 = a.update(&ctx_plan(&z, 1, true)).unwrap();
    assert_eq!((g1.grad_steps, g1.samples), (1, 16));
    for (x, y) in g1.context_grad.iter().zip(&g0) {
        assert!((x - y).abs() <= 1e-6 + 1e-5 * y.abs(), "grad_steps 1: {:?} vs {:?}", g1.context_grad, g0);
    }
    assert_ne!(bits(&a.params().unwrap()), bits(&params));
}

#[test]
fn a_finetuning_load_keeps_the_weights_and_starts_afresh() {
    let cfg = format!("{SMALL}\non_load = \"finetune\"\nreset_sigmas = true\nsave_replay = false\nfinetune_learning_starts = 77\nfinetune_memory_capacity = 300");
    let mut pre = agent(2, 0, 1, &cfg);
    let mut lp = Loop::new(&env_request(2, TASKS, 3), 1, 0);
    let mut recorded = 0;
    lp.train(&mut pre, 130, &mut recorded, TASKS);
    let bytes = pre.save().unwrap();
    let mut ft = agent(2, 0, 2, &cfg);
    ft.load_pretrained(&bytes).unwrap();
    assert_eq!(ft.info().learning_starts, 77);
    assert!(ft.replay().buffers.is_empty(), "pretraining's replay reached fine-tuning");
    assert_eq!((ft.replay().capacity, ft.updates()), (300, 0));
    let (p, q) = (pre.online_params_named(), ft.online_params_named());
    let mut sigmas = 0;
    for ((name, a), (_, b)) in p.iter().zip(&q) {
        if name.contains("sigma") {
            // σ₀ / sqrt(fan): every entry of a layer equal, and equal to the fresh value.
            let fresh = agent(2, 0, 3, &cfg).online_params_named().into_iter().find(|(n, _)| n == name).unwrap().1;
            assert_eq!(bits(b), bits(&fresh), "{name} was not reset");
            assert_ne!(bits(a), bits(b), "{name} did not learn during pretraining");
            sigmas += 1;
        } else {
            assert_eq!(bits(a), bits(b), "{name} was not loaded");
        }
    }
    assert_eq!(sigmas, 8);
    // Continuing a unit from a checkpoint without replay is refused, whatever `on_load` says.
    for c in [SMALL, cfg.as_str()] {
        let e = agent(2, 0, 2, c).load(&bytes).unwrap_err();
        assert!(e.message.contains("save_replay"), "{}", e.message);
    }
}

#[test]
fn under_on_load_finetune_a_plain_load_still_continues_exactly() {
    // Since plugin-api 0.2.5 the host starts adaptation with `load_pretrained`; `load` only
    // continues a unit from its own checkpoint, which must not turn into a fresh fine-tuning.
    let cfg = format!("{SMALL}\non_load = \"finetune\"\nfinetune_learning_starts = 77");
    let mut a = agent(2, 0, 1, &cfg);
    let mut lp = Loop::new(&env_request(2, TASKS, 3), 1, 0);
    let mut recorded = 0;
    lp.train(&mut a, 130, &mut recorded, TASKS);
    let bytes = a.save().unwrap();
    let mut b = agent(2, 0, 2, &cfg);
    b.load(&bytes).unwrap();
    assert_eq!(b.save().unwrap(), bytes, "load did not restore everything");
    assert_eq!(b.updates(), a.updates());
    assert_ne!(b.info().learning_starts, 77, "load started a fine-tuning");
}

#[test]
fn reset_heads_keeps_the_encoder() {
    let mut a = agent(1, 0, 1, SMALL);
    let before = a.online_params_named();
    a.reset_heads(42).unwrap();
    let after = a.online_params_named();
    for ((name, x), (_, y)) in before.iter().zip(&after) {
        if name.starts_with("conv") {
            assert_eq!(bits(x), bits(y), "{name} changed");
        } else if name.contains("mu") {
            assert_ne!(bits(x), bits(y), "{name} was not re-initialised");
        }
    }
}

#[test]
fn requests_it_cannot_serve_are_refused_in_one_line() {
    let mut req = algo_request(1, 0, 1, "");
    req.obs = ObsSpace::vector(8);
    let e = RainbowAgent::new(&req).err().unwrap();
    assert!(e.message.starts_with("rainbow: ") && e.message.contains("image") && !e.message.contains('\n'), "{}", e.message);
    let mut req = algo_request(1, 0, 1, "");
    req.action = ActionSpace::discrete(4).with(Part { choices: 2, ..Part::new("grip", Role::DISCRETE, Dtype::I32, &[]) });
    let e = RainbowAgent::new(&req).err().unwrap();
    assert!(e.message.starts_with("rainbow: ") && e.message.contains("discrete"), "{}", e.message);
    let e = RainbowAgent::new(&algo_request(1, 0, 1, "frame_stack = 2")).err().unwrap();
    assert!(e.message.contains("frame_stack"), "{}", e.message);
    let mut a = agent(1, 0, 1, SMALL);
    let e = a.update(&UpdatePlan::off_policy(vec![3], 4, 1)).unwrap_err();
    assert!(e.message.contains("task 3"), "{}", e.message);
}

/// A task whose rows all sit in open n-step windows (a game just drawn in multi-task
/// training) sits the step out; a plan where no task can be sampled takes no step (Reptile
/// plans one task, which may be a game just drawn).
#[test]
fn tasks_without_sampleable_rows_sit_the_step_out() {
    let mut a = agent(1, 0, 1, SMALL);
    let mut lp = Loop::new(&env_request(1, &[0], 3), 1, 0);
    let mut seed = 1u64;
    while a.replay().buffer(0).is_none_or(|b| b.sampleable() == 0) {
        lp.step(&mut a, Some(&mut seed), true);
    }
    // Task 1: two rows of an episode that goes on (n = 3), so no window is final yet.
    let frame = vec![0u8; (FRAME_PX * FRAME_PX * 3) as usize];
    let rec = |a: &mut RainbowAgent| {
        a.record(Transitions {
            obs: RSlice::from_slice(&[ArrayRef::new(frame.as_slice())]),
            actions: RSlice::from_slice(&[ArrayRef::new(&[0i32][..])]),
            rewards: RSlice::from_slice(&[0.0f32][..]),
            terminated: RSlice::from_slice(&[0u8][..]),
            truncated: RSlice::from_slice(&[0u8][..]),
            next_obs: RSlice::from_slice(&[ArrayRef::new(frame.as_slice())]),
            task: RSlice::from_slice(&[1u64][..]),
            ..Default::default()
        })
        .unwrap()
    };
    rec(&mut a);
    rec(&mut a);
    let s = a.update(&UpdatePlan::off_policy(vec![1, 0], 4, 1)).unwrap();
    assert_eq!(s.samples, 4);
    // Task 1 alone has nothing sampleable yet: the update takes no step and changes nothing.
    let before = a.params().unwrap();
    let s = a.update(&UpdatePlan::off_policy(vec![1], 4, 1)).unwrap();
    assert_eq!((s.grad_steps, s.samples), (0, 0));
    assert_eq!(a.params().unwrap(), before);
}

/// DER's memory at full size: 100k Atari transitions (84x84x4, a life lost every 200 steps,
/// a game over every 1000), then `save`. Each frame is stored once, so the checkpoint is about
/// 100k x 7056 bytes. Ignored by default (about 1.5 GB of memory); run with `--ignored`.
#[test]
#[ignore]
fn a_full_atari_buffer_checkpoints_in_about_seven_tenths_of_a_gigabyte() {
    const P: usize = 84 * 84;
    let req = AlgoRequest {
        obs: ObsSpace::image(84, 84, 4),
        action: ActionSpace::discrete(18),
        num_envs: 1,
        context_dim: 0,
        seed: 1,
        device: "cpu".into(),
        threads: 1,
        config: "".into(),
    };
    let mut a = RainbowAgent::new(&req).unwrap();
    let frame = |t: u32| -> Vec<u8> { (0..P).map(|i| (i as u32).wrapping_mul(31).wrapping_add(t.wrapping_mul(7)) as u8).collect() };
    let to_obs = |fs: &[Vec<u8>]| -> Vec<u8> {
        let mut o = vec![0; P * 4];
        for (f, fr) in fs.iter().enumerate() {
            for px in 0..P {
                o[px * 4 + f] = fr[px];
            }
        }
        o
    };
    let mut stack = vec![vec![0; P], vec![0; P], vec![0; P], frame(0)];
    let started = std::time::Instant::now();
    let mut t = 1;
    for step in 1..=100_000u32 {
        let obs = to_obs(&stack);
        let mut last = stack[1..].to_vec();
        last.push(frame(t));
        t += 1;
        let (life, over) = (step % 200 == 0, step % 1000 == 0);
        let next = if over {
            vec![vec![0; P], vec![0; P], vec![0; P], frame(t)]
        } else if life {
            let mut n = last[1..].to_vec();
            n.push(frame(t));
            n
        } else {
            last.clone()
        };
        t += u32::from(over || life);
        let (o, no, fo) = (obs, to_obs(&next), to_obs(&last));
        a.record(Transitions {
            obs: RSlice::from_slice(&[ArrayRef::new(o.as_slice())]),
            actions: RSlice::from_slice(&[ArrayRef::new(&[(step % 18) as i32][..])]),
            rewards: RSlice::from_slice(&[0.0f32][..]),
            terminated: RSlice::from_slice(&[(life || over) as u8][..]),
            truncated: RSlice::from_slice(&[0u8][..]),
            next_obs: RSlice::from_slice(&[ArrayRef::new(no.as_slice())]),
            final_obs: RSlice::from_slice(&[ArrayRef::new(fo.as_slice())]),
            task: RSlice::from_slice(&[0u64][..]),
            ..Default::default()
        })
        .unwrap();
        stack = next;
    }
    let recorded = started.elapsed().as_secs_f64();
    let b = a.replay().buffer(0).unwrap();
    let (rows, frames) = (b.len(), b.frames_live());
    let started = std::time::Instant::now();
    let size = a.save().unwrap().len();
    eprintln!(
        "100k Atari rows: {frames} frames, checkpoint {:.3} GB ({:.2} s to record, {:.2} s to save)",
        size as f64 / 1e9,
        recorded,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(rows, 100_000);
    assert!(frames < 100_000 + 4 * 500, "{frames} frames");
    // DER's update on this buffer, one libtorch thread.
    let started = std::time::Instant::now();
    for _ in 0..50 {
        a.update(&UpdatePlan::off_policy(vec![0], 32, 1)).unwrap();
    }
    eprintln!("DER update (batch 32, 84x84x4, hidden 256): {:.1} ms", started.elapsed().as_secs_f64() * 1000.0 / 50.0);
    assert!((size as f64) < 0.75e9, "checkpoint of {size} bytes");
}
