//! `c2farm`: C2F-ARM (James et al., CVPR 2022, "Coarse-to-Fine Q-attention") as a metarl
//! algo plugin, on libtorch through tch. **Work in progress (issue #14):** this crate holds
//! the algorithm's pure core; the `Algo` implementation, replay and export come next, so it
//! is not in `registry.toml` yet.
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
//! # Decisions
//!
//! - **No rotation control (Meta-World).** The network keeps its rotation head, as the issue
//!   asks, so one architecture serves RLBench and Meta-World. Where the env's action has no
//!   orientation, the agent's rotation action is a constant (the bins of a fixed
//!   orientation), its rotation Q-values are trained on that constant only, and the double-Q
//!   target takes that constant at the next state too ([`learn`]'s `fixed_rotation`) instead
//!   of the argmax over bins that are never trained. The plugin's description will say that
//!   its rotation output is constant there.
//! - **Keyframe rule.** stepjam/ARM's `keypoint_discovery`, exactly as `plugins/env-rlbench`
//!   applies it in Python; see [`keyframes`]. Both envs already hand out keyframe demos;
//!   the Rust rule serves demos that come step by step.
//! - **Crop centres.** Targets and acting both crop the next level around the chosen voxel's
//!   centre (ARM's demo loader uses the voxel's corner; see [`c2f`]).
#![deny(missing_docs)]

pub mod c2f;
pub mod keyframes;
pub mod learn;
pub mod net;
pub mod rotation;
pub mod voxel;
