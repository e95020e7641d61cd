//! The agent keeps the algo contract: determinism, exact resume, parameter vectors, head
//! resets, recurrent state, context gradients, memory, mixed precision and input validation.

use metarl_plugin_api::algo::Algo;
use metarl_plugin_api::abi_stable::std_types::{RSlice, RSliceMut};
use metarl_plugin_api::prelude::*;

use super::common::*;
use crate::PpoAgent;

/// A small, fast configuration: 4 envs x 16 steps per update.
const SMALL: &str = "preset = \"cpu-small\"\nnum_steps = 16\nnum_minibatches = 2";
const RECURRENT: &str = "preset = \"cpu-small\"\nnum_steps = 32\nnum_minibatches = 2\nrecurrent = true\nlstm_hidden = 32";

fn scalar(stats: &UpdateStats, name: &str) -> f64 {
    stats.scalars.iter().find(|s| s.name.as_str() == name).unwrap_or_else(|| panic!("no scalar {name}")).value
}

fn trained(seed: u64, updates: usize) -> Vec<f32> {
    let mut a = agent(4, 0, seed, SMALL);
    let mut lp = Loop::new(&env_request("gridworld", 4, &[0, 1], 3), 5, 0, 0);
    for _ in 0..updates {
        lp.train_iteration(&mut a, 16);
    }
    a.params().unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn same_seed_same_params_bit_for_bit() {
    let a = trained(42, 2);
    let b = trained(42, 2);
    let c = trained(43, 2);
    assert_eq!(bits(&a), bits(&b), "same seed and data must give identical parameters");
    assert_ne!(bits(&a), bits(&c), "a different seed must give different parameters");
    assert_ne!(bits(&a), bits(&trained(42, 0)), "training must change the parameters");
}

#[test]
fn save_load_resumes_exactly() {
    let env = env_request("gridworld", 4, &[0, 1], 3);
    let mut a = agent(4, 0, 8, SMALL);
    let mut lp_a = Loop::new(&env, 5, 0, 0);
    for _ in 0..2 {
        lp_a.train_iteration(&mut a, 16);
    }
    let saved = a.save().unwrap();
    let history = lp_a.action_log.clone();
    lp_a.train_iteration(&mut a, 16);
    let params_a = a.params().unwrap();

    // A fresh agent with another seed, restored from the bytes; a second env copy brought to
    // the same state by replaying the actions; then the same one update.
    let mut b = agent(4, 0, 999, SMALL);
    b.load(&saved).unwrap();
    let mut lp_b = Loop::new(&env, 5, 0, 0);
    let mut replay = Policy::Replay(&history, 0);
    for _ in 0..history.len() / 4 {
        lp_b.step(&mut replay, false);
    }
    lp_b.train_iteration(&mut b, 16);
    assert_eq!(bits(&params_a), bits(&b.params().unwrap()), "resumed training diverged");

    // Damaged or foreign checkpoints are refused with one line.
    let e = b.load(&saved[..saved.len() / 2]).unwrap_err();
    assert!(!e.message.contains('\n') && e.message.contains("truncated"), "{}", e.message);
    let mut other = agent(4, 0, 1, "preset = \"paper\"");
    let e = other.load(&saved).unwrap_err();
    assert!(e.message.contains("different network"), "{}", e.message);
}

#[test]
fn set_params_round_trip_and_reset_heads_touch_only_heads() {
    let mut a = agent(4, 0, 1, SMALL);
    let p = a.params().unwrap();
    assert_eq!(p.len() as u64, a.info().param_count);
    a.set_params(&p).unwrap();
    assert_eq!(bits(&a.params().unwrap()), bits(&p));
    let shifted: Vec<f32> = p.iter().map(|x| x + 0.25).collect();
    a.set_params(&shifted).unwrap();
    assert_eq!(bits(&a.params().unwrap()), bits(&shifted));
    assert!(a.set_params(&p[1..]).unwrap_err().message.contains("expected"));

    a.set_params(&p).unwrap();
    a.reset_heads(7).unwrap();
    let q = a.params().unwrap();
    let mut at = 0;
    let mut head_changed = false;
    for (name, len, head) in a.param_layout() {
        let (old, new) = (&p[at..at + len], &q[at..at + len]);
        if head {
            head_changed |= bits(old) != bits(new);
        } else {
            assert_eq!(bits(old), bits(new), "reset_heads changed {name}");
        }
        at += len;
    }
    assert!(head_changed, "reset_heads left the heads as they were");
    let heads: Vec<String> = a.param_layout().into_iter().filter(|l| l.2).map(|l| l.0).collect();
    assert_eq!(heads, ["actor.weight", "actor.bias", "critic.weight", "critic.bias"]);
}

/// Acts once on `obs` with the given state; returns (extras, state written).
fn act_once(a: &mut PpoAgent, obs: &[u8], state: &mut [f32], first: &[u8], context: &[f32]) -> Vec<f32> {
    let n = first.len();
    let mut actions = vec![0i32; n];
    let mut extras = vec![0f32; 2 * n];
    let prev = vec![0i32; n];
    let prev_r = vec![0f32; n];
    a.act(
        ActInput {
            obs: RSlice::from_slice(&[ArrayRef::new(obs)]),
            state: state.into(),
            prev_action: RSlice::from_slice(&[ArrayRef::new(prev.as_slice())]),
            prev_reward: prev_r.as_slice().into(),
            first: first.into(),
            context: context.into(),
            deterministic: true,
        },
        ActOutput { actions: RSliceMut::from_mut_slice(&mut [ArrayMut::new(actions.as_mut_slice())]), extras: extras.as_mut_slice().into() },
    )
    .unwrap();
    extras
}

#[test]
fn recurrent_state_is_written_and_zeroing_a_row_resets_it() {
    let mut a = agent(4, 0, 21, RECURRENT);
    let info = a.info();
    assert!(info.caps.contains(Caps::RECURRENT | Caps::RL2_INPUTS | Caps::ON_POLICY | Caps::DISCRETE));
    assert_eq!(info.state_dim, 64);

    let mut lp = Loop::new(&env_request("gridworld", 4, &[0, 1], 3), 5, 64, 0);
    for _ in 0..5 {
        lp.step(&mut Policy::Ppo(&mut a), false);
    }
    assert!(lp.state.iter().any(|&x| x != 0.0), "act did not write the recurrent state");

    // Zero env 0's row: its next output must equal a fresh agent's (zero state, same inputs).
    let mut state = lp.state.clone();
    state[..64].fill(0.0);
    let first = [0u8; 4];
    let out = act_once(&mut a, &lp.obs, &mut state, &first, &[]);
    let mut fresh = agent(4, 0, 21, RECURRENT);
    let mut zero = vec![0f32; 4 * 64];
    let out_fresh = act_once(&mut fresh, &lp.obs, &mut zero, &first, &[]);
    assert_eq!(bits(&out[..2]), bits(&out_fresh[..2]), "a zeroed row must behave like a fresh state");
    assert_eq!(bits(&state[..64]), bits(&zero[..64]));
    assert_ne!(bits(&state[64..]), bits(&zero[64..]), "the other rows must still carry memory");
}

#[test]
fn recurrent_update_replays_acting_exactly_and_learns() {
    // With a zero learning rate every minibatch sees the acting policy, so the ratio must be 1:
    // BPTT reproduces the recorded forward passes, through episode resets inside the sequence.
    let cfg = format!("{RECURRENT}\nlearning_rate = 0.0");
    let mut a = agent(4, 0, 5, &cfg);
    // Sharpen the policy so that any mismatch in the recomputed hidden state shows in the ratio.
    let mut p = a.params().unwrap();
    let mut at = 0;
    for (name, len, _) in a.param_layout() {
        if name == "actor.weight" {
            p[at..at + len].iter_mut().for_each(|w| *w *= 300.0);
        }
        at += len;
    }
    a.set_params(&p).unwrap();
    let mut lp = Loop::new(&env_request("gridworld", 4, &[0, 1], 3), 5, 64, 0);
    lp.train_iteration(&mut a, 32); // the second rollout starts mid-episode with carried state
    for _ in 0..32 {
        lp.step(&mut Policy::Ppo(&mut a), true);
    }
    assert!(!lp.returns.is_empty(), "the rollout should cross episode ends");
    let stats = a.update(&plan(&a)).unwrap();
    assert!(scalar(&stats, "approx_kl").abs() < 1e-6, "kl {}", scalar(&stats, "approx_kl"));
    assert_eq!(scalar(&stats, "clip_frac"), 0.0);

    let mut b = agent(4, 0, 5, RECURRENT);
    let before = b.params().unwrap();
    let stats = Loop::new(&env_request("gridworld", 4, &[0, 1], 3), 5, 64, 0).train_iteration(&mut b, 32);
    assert!(stats.iter().all(|(_, v)| v.is_finite()), "{stats:?}");
    assert_ne!(bits(&before), bits(&b.params().unwrap()));
}

#[test]
fn context_is_an_input_but_plan_contexts_and_their_gradient_are_refused() {
    // PPO takes context rows as act inputs (CONTEXT) but is on-policy: per-task plan contexts
    // and dL/dz (CONTEXT_GRAD) belong to off-policy algos, so asking is an error, not zeros.
    let mut a = agent(4, 3, 2, SMALL);
    let caps = a.info().caps;
    assert!(caps.contains(Caps::CONTEXT) && !caps.contains(Caps::CONTEXT_GRAD));
    let mut lp = Loop::new(&env_request("gridworld", 4, &[0, 1], 3), 5, 0, 3);
    for _ in 0..16 {
        lp.step(&mut Policy::Ppo(&mut a), true);
    }
    let e = a.update(&UpdatePlan { want_context_grad: true, ..plan(&a) }).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
    let e = a.update(&UpdatePlan { context: vec![0.0; 3].into(), ..plan(&a) }).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
    // Both refusals left the rollout in place.
    let stats = a.update(&plan(&a)).unwrap();
    assert!(scalar(&stats, "grad_steps") > 0.0);
}

#[test]
fn update_plan_epochs_and_evaluation_only() {
    let mut a = agent(4, 0, 3, SMALL);
    let mut lp = Loop::new(&env_request("gridworld", 4, &[0, 1], 3), 5, 0, 0);
    for _ in 0..16 {
        lp.step(&mut Policy::Ppo(&mut a), true);
    }
    // On-policy: the whole rollout, so a task list or per-task samples are refused.
    let e = a.update(&UpdatePlan { tasks: vec![0].into(), ..plan(&a) }).unwrap_err();
    assert!(e.message.contains("tasks"), "{}", e.message);
    // grad_steps = 0: the losses of the first minibatch, with nothing changed.
    let before = a.params().unwrap();
    let probe = a.update(&UpdatePlan::on_policy(0)).unwrap();
    assert_eq!(probe.grad_steps, 0);
    assert_eq!(bits(&before), bits(&a.params().unwrap()));
    let again = a.update(&UpdatePlan::on_policy(0)).unwrap();
    assert_eq!(scalar(&probe, "policy_loss").to_bits(), scalar(&again, "policy_loss").to_bits());
    // The refused and the probing updates dropped nothing; one epoch = num_minibatches steps.
    let stats = a.update(&UpdatePlan::on_policy(1)).unwrap();
    assert_eq!(scalar(&stats, "grad_steps"), 2.0);
    assert_eq!((stats.grad_steps, stats.samples), (2, 64));
    assert!(a.update(&plan(&a)).unwrap_err().message.contains("nothing recorded"));
}

#[test]
fn rollout_keeps_images_as_bytes() {
    // A full paper-size rollout (64 envs x 256 steps of 64x64x3), recorded without acting.
    let n = 64;
    let mut req = algo_request(n as u32, 0, 1, "preset = \"paper\"");
    req.obs = ObsSpace::image(64, 64, 3);
    let mut a = PpoAgent::new(&req).unwrap();
    let frame = 64 * 64 * 3;
    let obs = vec![7u8; n * frame];
    let actions = vec![1i32; n];
    let extras: Vec<f32> = (0..n).flat_map(|_| [0.0, -1.6]).collect();
    let zeros_f = vec![0f32; n];
    let zeros_u = vec![0u8; n];
    let tasks = vec![0u64; n];
    let (obs_a, actions_a) = ([ArrayRef::new(obs.as_slice())], [ArrayRef::new(actions.as_slice())]);
    let step = || Transitions {
        obs: obs_a.as_slice().into(),
        actions: actions_a.as_slice().into(),
        extras: extras.as_slice().into(),
        rewards: zeros_f.as_slice().into(),
        terminated: zeros_u.as_slice().into(),
        truncated: zeros_u.as_slice().into(),
        next_obs: obs_a.as_slice().into(),
        task: tasks.as_slice().into(),
        ..Default::default()
    };
    for _ in 0..256 {
        a.record(step()).unwrap();
    }
    let e = a.record(step()).unwrap_err();
    assert!(e.message.contains("rollout is full"), "{}", e.message);

    let (obs_bytes, total) = a.rollout_bytes();
    // CleanRL ppo_procgen: float32 obs [256, 64, 64, 64, 3] and next_obs [64, 64, 64, 3], plus
    // float32 actions, logprobs, rewards, dones, values, advantages and returns [256, 64].
    let rows = 256 * n;
    let cleanrl_total = 4 * (rows + n) * frame + 7 * 4 * rows;
    // One byte per pixel, each frame once: the last frames went into V(s_T) and were freed.
    assert_eq!(obs_bytes, rows * frame, "observations must be stored as u8, once");
    let ratio = total as f64 / cleanrl_total as f64;
    eprintln!("rollout memory: {total} bytes = {ratio:.4} of CleanRL's {cleanrl_total}");
    assert!(ratio <= 0.25, "rollout memory {ratio:.4} of CleanRL's");
    a.clear().unwrap();
    assert_eq!(a.rollout_bytes().1, 0);
}

#[test]
fn bf16_autocast_is_active_and_scoped() {
    let mut f = agent(4, 0, 4, SMALL);
    let mut b = agent(4, 0, 4, &format!("{SMALL}\nprecision = \"bf16\""));
    let lp = Loop::new(&env_request("gridworld", 4, &[0, 1], 3), 5, 0, 0);
    let out_f = act_once(&mut f, &lp.obs, &mut [], &[0; 4], &[]);
    let out_b = act_once(&mut b, &lp.obs, &mut [], &[0; 4], &[]);
    assert!(!b.autocast_leaked(), "autocast must be off outside act");
    assert_ne!(bits(&out_f), bits(&out_b), "bf16 made no difference: autocast did not engage");
    for (x, y) in out_f.iter().zip(&out_b) {
        assert!((x - y).abs() < 0.05, "bf16 output {y} too far from fp32 {x}");
    }
    let stats = Loop::new(&env_request("gridworld", 4, &[0, 1], 3), 5, 0, 0).train_iteration(&mut b, 16);
    assert!(stats.iter().all(|(_, v)| v.is_finite()), "{stats:?}");
    assert!(!b.autocast_leaked());
}

#[test]
fn bad_inputs_are_refused_with_one_line() {
    let one_line = |e: PluginError| {
        assert!(!e.message.contains('\n'), "multi-line error: {}", e.message);
        e.message.to_string()
    };
    let mut req = algo_request(4, 0, 1, SMALL);
    req.action = ActionSpace::continuous(vec![-1.0; 2], vec![1.0; 2]);
    let msg = one_line(PpoAgent::new(&req).err().unwrap());
    assert!(msg.contains("continuous"), "{msg}");

    let mut req = algo_request(4, 0, 1, "learning_rat = 1e-3");
    assert!(one_line(PpoAgent::new(&req).err().unwrap()).contains("learning_rat"));
    req.config = SMALL.into();
    req.obs = Space::of(vec![Part::new("image", Role::IMAGE, Dtype::U8, &[64, 64])]);
    assert!(one_line(PpoAgent::new(&req).err().unwrap()).contains("observation"));
    req.obs = ObsSpace::image(64, 64, 3);
    req.device = "tpu".into();
    assert!(one_line(PpoAgent::new(&req).err().unwrap()).contains("tpu"));

    let mut a = agent(4, 0, 1, SMALL);
    let short = vec![0u8; 100];
    let mut actions = vec![0i32; 4];
    let mut extras = vec![0f32; 8];
    let e = a
        .act(
            ActInput::observations(RSlice::from_slice(&[ArrayRef::new(short.as_slice())]), false),
            ActOutput { actions: RSliceMut::from_mut_slice(&mut [ArrayMut::new(actions.as_mut_slice())]), extras: extras.as_mut_slice().into() },
        )
        .unwrap_err();
    assert!(one_line(e).contains("obs"));

    let lp = Loop::new(&env_request("gridworld", 4, &[0, 1], 3), 5, 0, 0);
    // One step of 4 envs with every buffer well formed except the actions or extras given.
    let obs_a = [ArrayRef::new(lp.obs.as_slice())];
    let mut record = |actions: &[i32], extras: &[f32]| {
        let actions_a = [ArrayRef::new(actions)];
        a.record(Transitions {
            obs: obs_a.as_slice().into(),
            actions: actions_a.as_slice().into(),
            extras: extras.into(),
            rewards: (&[0f32; 4][..]).into(),
            terminated: (&[0u8; 4][..]).into(),
            truncated: (&[0u8; 4][..]).into(),
            next_obs: obs_a.as_slice().into(),
            task: (&[0u64; 4][..]).into(),
            ..Default::default()
        })
        .unwrap_err()
    };
    assert!(one_line(record(&[0, 1, 9, 0], &[0.0; 8])).contains("out of range"));
    assert!(one_line(record(&[0; 4], &[])).contains("extras"));
}
