//! Writes the plugin's preprocessed frames for a fixed action sequence, for comparison with
//! the same preprocessing done in Python with OpenCV (`benches/ale.sh`).
//!
//!     cargo run --release -p metarl-env-ale --example frames -- GAME STEPS OUT
//!
//! One game, no random no-ops, whole-game episodes; action `t` is the minimal-set index drawn
//! by the LCG the Python side uses. OUT gets the newest 84x84 frame of the reset observation
//! and of every step until the game ends.

use metarl_env_ale::{games, AlePlugin};
use metarl_plugin_api::env::{EnvRequest, ResetBuffers, StepBuffers};
use metarl_plugin_api::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, game, steps, out] = args.as_slice() else {
        eprintln!("usage: frames GAME STEPS OUT");
        std::process::exit(2);
    };
    let steps: usize = steps.parse().expect("STEPS is a number");
    let task = games::index(game).unwrap_or_else(|| panic!("unknown game {game}"));
    let req = EnvRequest {
        family: games::FAMILY.into(),
        tasks: vec![task].into(),
        num_envs: 1,
        trials: 1,
        seed: 0,
        threads: 1,
        config: "actions = \"minimal\"\nnoop_max = 0\nterminal_on_life_loss = false".into(),
    };
    let mut env = AlePlugin::new_env(&req).unwrap_or_else(|e| panic!("{}", e.message));
    let n_actions = env.spec().action.discrete_choices().expect("discrete") as u64;
    let mut obs = vec![0u8; 84 * 84 * 4];
    let mut task_out = [0u64];
    let mut frames = Vec::new();
    let newest = |obs: &[u8], frames: &mut Vec<u8>| frames.extend(obs.chunks(4).map(|c| c[3]));
    let mut parts = [ArrayMut::new(obs.as_mut_slice())];
    env.reset(0, ResetBuffers { obs: parts.as_mut_slice().into(), task: task_out.as_mut_slice().into() }).unwrap();
    newest(&obs, &mut frames);
    let mut state: u64 = 7;
    let (mut r, mut term, mut trunc, mut succ, mut end) = ([0f32], [0u8], [0u8], [0u8], [0u8]);
    for _ in 0..steps {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let a = [((state >> 33) % n_actions) as i32];
        let mut parts = [ArrayMut::new(obs.as_mut_slice())];
        let out = StepBuffers {
            obs: parts.as_mut_slice().into(),
            final_obs: Default::default(),
            reward: r.as_mut_slice().into(),
            terminated: term.as_mut_slice().into(),
            truncated: trunc.as_mut_slice().into(),
            success: succ.as_mut_slice().into(),
            task_end: end.as_mut_slice().into(),
            task: task_out.as_mut_slice().into(),
        };
        env.step([ArrayRef::new(&a[..])].as_slice().into(), out).unwrap();
        if term[0] != 0 || trunc[0] != 0 {
            break;
        }
        newest(&obs, &mut frames);
    }
    std::fs::write(out, frames).expect("write OUT");
}
