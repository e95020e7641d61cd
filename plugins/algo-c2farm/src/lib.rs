//! `c2farm`: C2F-ARM (James et al., CVPR 2022, "Coarse-to-Fine Q-attention") as a metarl
//! algo plugin, on libtorch through tch (issue #14).
//!
//! C2F-ARM picks a gripper pose by attending in 3D, coarse to fine: the scene's point cloud
//! is voxelised into a 16³ grid, a Q-network picks the voxel with the highest translation
//! Q-value, the next level voxelises a ±0.15 m box around that voxel at 16³ again, and so on;
//! the last level also gives Q-values for the gripper's rotation (72 bins per Euler axis)
//! and its open/close state. Each level is a Q-function trained by 1-step double Q-learning
//! from sparse rewards, with keyframe demonstrations filling its replay. The settings are
//! those of stepjam/ARM and the study author's fork (see `../shared/FACTS.md`).
//!
//! - [`voxel`]: scatter-mean voxelisation of coloured point clouds into `(10, G, G, G)`;
//! - [`c2f`]: the levels' boxes, voxel centres, and a point's voxel at each level (targets);
//! - [`rotation`]: quaternions ↔ Euler angles ↔ 5° bins;
//! - [`keyframes`]: keyframe discovery on a step-by-step demo, and demo augmentation;
//! - [`net`]: one level's Q-attention network (a 3D U-Net), sizes `paper` and `cpu-small`;
//! - [`learn`]: the learning step, which reads like the paper's equations.
//!
//! The plumbing around them:
//!
//! - [`agent`]: the [`Algo`](metarl_plugin_api::algo::Algo) implementation: acting coarse to
//!   fine, recording, the plan's batches voxelised level by level, `save`/`load`;
//! - [`spaces`]: observation parts to point clouds, agent actions to keyframe actions;
//! - [`replay`]: one prioritised buffer per task of point clouds;
//! - [`config`]: hyper-parameters, presets `paper` (default) and `cpu-small`.
//!
//! # Decisions
//!
//! - **No rotation control (Meta-World).** The network keeps its rotation head, as the issue
//!   asks, so one architecture serves RLBench and Meta-World. Where the env's action has no
//!   orientation, the agent's rotation action is a constant (the bins of a fixed
//!   orientation), its rotation Q-values are trained on that constant only, and the double-Q
//!   target takes that constant at the next state too ([`learn`]'s `fixed_rotation`) instead
//!   of the argmax over bins that are never trained. The plugin's description says that its
//!   rotation output is constant there.
//! - **Keyframe rule.** stepjam/ARM's `keypoint_discovery`, exactly as `plugins/env-rlbench`
//!   applies it in Python; see [`keyframes`]. Both envs already hand out keyframe demos;
//!   the Rust rule serves demos that come step by step.
//! - **Crop centres.** Targets and acting both crop the next level around the chosen voxel's
//!   centre (ARM's demo loader uses the voxel's corner; see [`c2f`]).
//! - **Exploration (a deviation).** stepjam's `act()` hard-codes deterministic actions, so
//!   its Gaussian exploration never runs (FACTS). Here a training `act` explores for real: at
//!   every level, with probability ε, a uniformly random voxel instead of the greedy one
//!   (else the greedy voxel plus rounded Gaussian noise of `voxel_noise` voxels), and with
//!   probability ε a random bin per rotation axis (else Gaussian noise of `rotation_noise`
//!   bins) and a random gripper state. ε goes linearly from `epsilon_start` to
//!   `epsilon_end` over `explore_steps` env steps (`paper`: 0.1 → 0.01 over 10k; `cpu-small`:
//!   0.2 → 0.02 over 2k). A `deterministic` act (evaluation) is greedy and draws nothing.
//! - **The agent's action travels in `extras`.** `act` returns each level's voxel, the
//!   rotation bins and the gripper state as extras, and `record` stores those when they
//!   match the env action (level 0's voxel need not hold the final position: a finer box is
//!   wider than the voxel it is centred on). Rows without them (demonstrations) or whose env
//!   action was changed after `act` get the voxels of the action's position level by level
//!   ([`c2f::level_targets`]) and the bins of its orientation.
//! - **Demonstrations** are recorded as the env hands them out (the kit's `record_demos`, rows
//!   without extras): env-metaworld and env-rlbench already give keyframe transitions, so
//!   there is no step-by-step trajectory for demo augmentation (every 10th step as a start)
//!   to work on; [`keyframes::augmented_starts`] serves demos that come step by step. Crop
//!   augmentation is ARM's: each demonstration row's finer boxes are moved by a uniform shift
//!   of up to `crop_augmentation` (0.75) × `bounds_offset` per axis, drawn once when it is
//!   recorded and stored with it, its target voxels taken in the moved boxes (clamped so the
//!   target stays inside: [`spaces::Geometry::augmented`]).
//! - **The next state's boxes.** ARM crops s' around the next row's chosen voxels. A row's
//!   successor is not known when it is recorded (and demonstrations arrive in lanes), so the
//!   update crops s' where the online nets would act in s': level by level, around their
//!   greedy voxel, the same argmax the double-Q target takes.
//! - **Replay stores point clouds**, cropped to what any level's box can hold, not grids:
//!   finer levels re-voxelise crops that depend on choices made at update time. See
//!   [`replay`].
//! - **Bootstrapping.** No bootstrap after a terminal row; after a truncated one, from the
//!   env's true last observation (`final_obs`), or from `next_obs` for demonstrations (the
//!   kit gives their true next observation there); otherwise none.
//! - **Batches and priorities.** An update draws `samples_per_task` rows from each task of
//!   the plan, proportionally to priority; importance weights `(N P(i))^-β / max` per task
//!   (β = 0.5: ARM's `1 / sqrt(P)` over its maximum); new priorities are ARM's, from the
//!   levels' Bellman errors ([`learn::priorities`]).
//! - **Context (PEARL).** With `context_dim > 0`, z enters level 0 only, through a dense
//!   layer tiled over the voxels (the author's fork; [`net`]). `act` takes
//!   `ActInput::context`; `record` stores `Transitions::context` per row (zeros when the
//!   column is empty); an update uses the plan's row `i` for every sample of `plan.tasks[i]`,
//!   in the online and the target net alike and for the s' crops, else the stored rows. The
//!   returned dL/dz is the exact derivative of the reported loss, the target's dependence
//!   on z included (target parameters and the double-Q argmax held fixed), so it matches
//!   finite differences of `grad_steps = 0` losses.
//! - **Checkpoints** hold everything an exact resume needs: both nets and Adam per level, the
//!   generators, counters and the replay with its priorities. `load` (a unit continued from
//!   its own checkpoint) restores them all. `load_pretrained` (plugin-api 0.2.5: adaptation
//!   starting from pretraining) restores the same and then, by default, starts the ε schedule
//!   again, as a new training run from loaded weights does (`adapt_exploration = "continue"`
//!   keeps pretraining's ε, which is then near `epsilon_end`); adaptation thus starts with the
//!   pretraining tasks' buffers in memory (an update samples only its plan's tasks, and `mt`'s
//!   `fine_tune = "with-training-tasks"` samples them). `save_replay = false` leaves the
//!   replay out: such a checkpoint starts an adaptation with an empty replay, and `load`
//!   refuses it, since it cannot continue a unit exactly (the host then runs the unit again).
//! - **`cpu-small`** (measured on this 2-core machine, one thread, batch 16, 2 levels):
//!   G = 16 with 16 kernels takes 2.0 s per update; G = 8 with replicate padding 0.29 s,
//!   with zero padding 0.17 s. So `cpu-small` is 2 levels of 8³ (12.5 × 7.5 × 5.6 cm voxels
//!   over Meta-World's reach at level 0, 3.75 cm at level 1), zero padding, batch 16, and
//!   two gradient steps per env step: a replay ratio of 32 samples per env step, a quarter of
//!   the paper's 128. With an update every 2 env steps (ratio 8) it learned
//!   button-press-topdown on one seed of two; at 32 on both (`benches/c2farm-learning.sh`).
#![deny(missing_docs)]

pub mod agent;
pub mod c2f;
pub mod config;
pub mod keyframes;
pub mod learn;
pub mod net;
pub mod replay;
pub mod rotation;
pub mod spaces;
pub mod voxel;

#[cfg(test)]
mod tests;

use metarl_plugin_api::prelude::*;

pub use agent::C2fArmAgent;
pub use config::{Config, Preset};

/// The plugin's factory.
pub struct C2fArmPlugin;

impl PluginFactory for C2fArmPlugin {
    const KIND: PluginKind = PluginKind::ALGO;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "c2farm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::ALGO,
            description: "C2F-ARM: coarse-to-fine Q-attention over voxelised point clouds, keyframe actions, per-task PER, demos; \
                          its rotation output is a constant where the env has no rotation control (Meta-World)"
                .into(),
            caps: Caps::OFF_POLICY
                | Caps::CONTINUOUS
                | Caps::DISCRETE
                | Caps::COMPOSITE_ACTIONS
                | Caps::MULTI_PART_OBS
                | Caps::USES_DEMOS
                | Caps::CONTEXT
                | Caps::CONTEXT_GRAD,
            families: Default::default(),
            requires: Caps::NONE,
        }
    }

    fn new_algo(req: &AlgoRequest) -> Result<Box<dyn Algo>, PluginError> {
        Ok(Box::new(C2fArmAgent::new(req)?))
    }
}

// In a private module so that `missing_docs` does not ask for docs on abi_stable's generated
// statics.
mod root {
    metarl_plugin_api::export_plugin!(super::C2fArmPlugin);
}
