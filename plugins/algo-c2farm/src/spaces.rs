//! Where the env's spaces meet the agent: observation parts to coloured point clouds, and the
//! agent's action (a voxel per level, rotation bins, gripper) to the env's keyframe action.
//!
//! **Observations.** Every `<cam>_point_cloud` part (role point-cloud, f32 `[H, W, 3]`, world
//! frame) is paired with its camera's `<cam>_rgb` part (u8 `[H, W, 3]`, the same pixels), as
//! env-metaworld and env-rlbench name them; `cameras` in the config picks some. The clouds of
//! all cameras are concatenated, with colours mapped to [-1, 1], and only the points that any
//! level's box can hold are kept (level 0's box grown by `(levels - 1) · bounds_offset` on
//! every side): the rest could never fall into a voxel, so dropping them changes no grid. The
//! proprioception is the vector part named in the config, else `proprio` (Meta-World) or
//! `low_dim` (RLBench), else the first vector part, else none. Camera matrices are not needed:
//! both envs already give world-frame clouds.
//!
//! **Actions.** A keyframe action is a pose part (role pose, f32: `[3]`, a target position, as
//! Meta-World's `target`; or `[7]`, position and quaternion xyzw, as RLBench's `pose`) and a
//! gripper part (discrete, 2 choices). The agent sends its last level's voxel centre as the
//! position, the quaternion of its rotation bins, and its gripper choice as the index. Without
//! a quaternion the env has no rotation control, and the agent's rotation is the constant
//! bins of the identity (see the crate docs). Any other action space is refused in one line.

use metarl_plugin_api::types::*;

use crate::c2f::{self, Bounds};
use crate::rotation;

fn invalid(msg: impl std::fmt::Display) -> PluginError {
    PluginError::invalid(format!("c2farm: {msg}"))
}

/// One observation as the agent keeps it: the kept points of every camera and the
/// proprioception.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cloud {
    /// World xyz, 3 per point.
    pub points: Vec<f32>,
    /// RGB as the env's bytes, 3 per point.
    pub rgb: Vec<u8>,
    /// Proprioception (empty without).
    pub proprio: Vec<f32>,
}

impl Cloud {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len() / 3
    }
    /// True without points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// Which observation parts the agent reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ObsMap {
    /// `(point cloud part, rgb part)` per camera.
    pub cameras: Vec<(usize, usize)>,
    /// Points per camera (`H · W`).
    pub pixels: Vec<usize>,
    /// The proprioception part and its width.
    pub proprio: Option<(usize, usize)>,
    /// Elements per env of every part.
    pub numel: Vec<usize>,
}

impl ObsMap {
    /// Finds the parts in `space`; refuses a space without a usable point cloud.
    pub fn new(space: &Space, cameras: Option<&[String]>, proprio: Option<&str>) -> Result<ObsMap, PluginError> {
        let mut found = Vec::new();
        let mut pixels = Vec::new();
        for (i, p) in space.parts.iter().enumerate() {
            if p.role != Role::POINT_CLOUD {
                continue;
            }
            let cam = p.name.as_str().strip_suffix("_point_cloud").unwrap_or(p.name.as_str());
            if cameras.is_some_and(|c| !c.iter().any(|c| c == cam)) {
                continue;
            }
            if p.dtype != Dtype::F32 || p.shape.len() != 3 || p.shape[2] != 3 {
                return Err(invalid(format!("point cloud part '{}' must be f32 [height, width, 3]", p.name)));
            }
            let rgb_name = format!("{cam}_rgb");
            let Some((j, rgb)) = space.part(&rgb_name) else {
                return Err(invalid(format!("point cloud part '{}' has no colour part '{rgb_name}'", p.name)));
            };
            if rgb.dtype != Dtype::U8 || rgb.shape != p.shape {
                return Err(invalid(format!("colour part '{rgb_name}' must be u8 of the point cloud's shape {:?}", p.shape.as_slice())));
            }
            found.push((i, j));
            pixels.push(p.numel() / 3);
        }
        if let Some(want) = cameras {
            let have: Vec<&str> = found.iter().map(|&(i, _)| space.parts[i].name.as_str()).collect();
            if let Some(c) = want.iter().find(|c| !have.contains(&format!("{c}_point_cloud").as_str())) {
                return Err(invalid(format!("config names camera '{c}' but the observations have no '{c}_point_cloud' part ({space})")));
            }
        }
        if found.is_empty() {
            return Err(invalid(format!(
                "needs a world-frame point cloud (a `<camera>_point_cloud` part with its `<camera>_rgb`) to voxelise; the observations are {space}"
            )));
        }
        let vector = |name: &str| space.part(name).filter(|(_, p)| p.role == Role::VECTOR && p.dtype == Dtype::F32);
        let proprio = match proprio {
            Some(name) => Some(vector(name).ok_or_else(|| invalid(format!("config names proprio part '{name}', which is not an f32 vector part of {space}")))?),
            None => vector("proprio")
                .or_else(|| vector("low_dim"))
                .or_else(|| space.parts.iter().enumerate().find(|(_, p)| p.role == Role::VECTOR && p.dtype == Dtype::F32)),
        };
        Ok(ObsMap {
            cameras: found,
            pixels,
            proprio: proprio.map(|(i, p)| (i, p.numel())),
            numel: space.parts.iter().map(Part::numel).collect(),
        })
    }

    /// Proprioception width (0: none).
    pub fn proprio_dim(&self) -> usize {
        self.proprio.map_or(0, |p| p.1)
    }

    /// Checks that `obs` holds `rows` rows of every part, with the dtypes this map reads.
    pub fn check(&self, what: &str, obs: &[ArrayRef<'_>], rows: usize) -> Result<(), PluginError> {
        if obs.len() != self.numel.len() {
            return Err(invalid(format!("{what} has {} parts, the observation space {}", obs.len(), self.numel.len())));
        }
        for (i, a) in obs.iter().enumerate() {
            if a.len() != rows * self.numel[i] {
                return Err(invalid(format!("{what} part {i} has {} values, expected {}", a.len(), rows * self.numel[i])));
            }
        }
        for &(p, c) in &self.cameras {
            if obs[p].f32().is_none() || obs[c].u8().is_none() {
                return Err(invalid(format!("{what}: point clouds must be f32 and colours u8")));
            }
        }
        if let Some((p, _)) = self.proprio {
            if obs[p].f32().is_none() {
                return Err(invalid(format!("{what}: the proprioception must be f32")));
            }
        }
        Ok(())
    }

    /// Row `row` of `obs` (checked) as a cloud of the points inside `keep`.
    pub fn cloud(&self, obs: &[ArrayRef<'_>], row: usize, keep: &Bounds) -> Cloud {
        let mut out = Cloud::default();
        for (&(p, c), &n) in self.cameras.iter().zip(&self.pixels) {
            let (pts, rgb) = (obs[p].f32().unwrap_or_default(), obs[c].u8().unwrap_or_default());
            let (pts, rgb) = (&pts[row * n * 3..(row + 1) * n * 3], &rgb[row * n * 3..(row + 1) * n * 3]);
            for k in 0..n {
                let q = &pts[3 * k..3 * k + 3];
                if (0..3).all(|a| (q[a] as f64) >= keep[a] && (q[a] as f64) < keep[a + 3]) {
                    out.points.extend_from_slice(q);
                    out.rgb.extend_from_slice(&rgb[3 * k..3 * k + 3]);
                }
            }
        }
        if let Some((p, w)) = self.proprio {
            out.proprio = obs[p].f32().unwrap_or_default()[row * w..(row + 1) * w].to_vec();
        }
        out
    }
}

/// The agent's side of an action: what the Q-functions chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAction {
    /// The voxel chosen at each level, coarsest first.
    pub voxels: Vec<[i64; 3]>,
    /// Rotation bins x, y, z, then the gripper state.
    pub rot_grip: [i64; 4],
}

impl AgentAction {
    /// Floats for `ActOutput::extras`: the voxels, then the rotation bins and the gripper.
    pub fn to_extras(&self, out: &mut [f32]) {
        let flat = self.voxels.iter().flatten().chain(&self.rot_grip);
        for (o, &v) in out.iter_mut().zip(flat) {
            *o = v as f32;
        }
    }
    /// Reads [`AgentAction::to_extras`] back; `None` unless every value is a valid index.
    pub fn from_extras(x: &[f32], levels: usize, grid: i64) -> Option<AgentAction> {
        let int = |v: f32, hi: i64| (v.fract() == 0.0 && v >= 0.0 && (v as i64) < hi).then_some(v as i64);
        if x.len() != 3 * levels + 4 {
            return None;
        }
        let voxels = (0..levels).map(|l| Some([int(x[3 * l], grid)?, int(x[3 * l + 1], grid)?, int(x[3 * l + 2], grid)?])).collect::<Option<Vec<_>>>()?;
        let r = &x[3 * levels..];
        let rot_grip = [int(r[0], rotation::BINS)?, int(r[1], rotation::BINS)?, int(r[2], rotation::BINS)?, int(r[3], 2)?];
        Some(AgentAction { voxels, rot_grip })
    }
}

/// The coarse-to-fine geometry: level 0's box, the grid and the crops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Level 0's box.
    pub scene: Bounds,
    /// Voxels per side.
    pub grid: i64,
    /// Levels.
    pub levels: usize,
    /// Half-side of every finer box.
    pub offset: f64,
}

impl Geometry {
    /// Each level's box for the voxels `voxels` chosen so far (one box more than voxels, up to
    /// `levels`), each finer box moved by its entry of `shifts` (crop augmentation; empty:
    /// none).
    pub fn boxes(&self, voxels: &[[i64; 3]], shifts: &[[f32; 3]]) -> Vec<Bounds> {
        let mut out = vec![self.scene];
        for (l, v) in voxels.iter().enumerate().take(self.levels - 1) {
            let c = c2f::voxel_centre(&out[l], self.grid, *v);
            let s = shifts.get(l).copied().unwrap_or([0.0; 3]);
            out.push(c2f::crop_bounds([0, 1, 2].map(|a| c[a] + s[a] as f64), self.offset));
        }
        out
    }
    /// The position a chain of voxels (one per level, in boxes moved by `shifts`) stands for:
    /// the last voxel's centre.
    pub fn position(&self, voxels: &[[i64; 3]], shifts: &[[f32; 3]]) -> [f64; 3] {
        let boxes = self.boxes(voxels, shifts);
        c2f::voxel_centre(&boxes[voxels.len() - 1], self.grid, voxels[voxels.len() - 1])
    }
    /// Each level's voxel for a target position (demonstrations).
    pub fn voxels_for(&self, point: [f64; 3]) -> Vec<[i64; 3]> {
        let offsets = vec![self.offset; self.levels - 1];
        c2f::level_targets(&self.scene, self.grid, &offsets, &[], point).into_iter().map(|t| t.index).collect()
    }

    /// Crop augmentation: each level's voxel for `point` with each finer box moved by its
    /// entry of `shifts`, and the shifts used. A shift is clamped so that the point stays
    /// inside its box, at least half a voxel from the faces: ARM's shifts (±0.1125 m) with
    /// its 6.25 cm voxels never need it, coarser level-0 voxels (`cpu-small`) do, and a point
    /// outside its box would label the face voxel nearest to it.
    pub fn augmented(&self, point: [f64; 3], shifts: &[[f32; 3]]) -> (Vec<[i64; 3]>, Vec<[f32; 3]>) {
        let mut bounds = self.scene;
        let mut voxels = vec![c2f::point_to_voxel(&bounds, self.grid, point)];
        let mut used = Vec::with_capacity(shifts.len());
        let margin = self.offset / self.grid as f64;
        for s in shifts.iter().take(self.levels - 1) {
            let c = c2f::voxel_centre(&bounds, self.grid, voxels[voxels.len() - 1]);
            let s = [0, 1, 2].map(|a| (s[a] as f64).clamp(point[a] - c[a] - self.offset + margin, point[a] - c[a] + self.offset - margin));
            bounds = c2f::crop_bounds([0, 1, 2].map(|a| c[a] + s[a]), self.offset);
            voxels.push(c2f::point_to_voxel(&bounds, self.grid, point));
            used.push(s.map(|x| x as f32));
        }
        (voxels, used)
    }
    /// The box holding every point that any level's box can hold.
    pub fn keep(&self) -> Bounds {
        let m = self.offset * (self.levels - 1) as f64;
        let s = self.scene;
        [s[0] - m, s[1] - m, s[2] - m, s[3] + m, s[4] + m, s[5] + m]
    }
}

/// Which action parts the agent writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionMap {
    /// The pose part: `[3]` (position) or `[7]` (position, quaternion xyzw).
    pub pose: usize,
    /// 3 or 7.
    pub pose_dim: usize,
    /// The gripper part (discrete, 2 choices).
    pub gripper: usize,
    /// The pose part's position bounds, when it has bounds.
    pub position_bounds: Option<Bounds>,
    /// Parts of the action space.
    pub parts: usize,
}

/// One env action as the agent reads it back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnvAction {
    /// Target position.
    pub position: [f64; 3],
    /// Target orientation (xyzw), where the env takes one.
    pub quat: Option<[f64; 4]>,
    /// Gripper index.
    pub gripper: i64,
}

/// The rotation sent where the env has no rotation control: the identity's bins.
pub fn fixed_rotation() -> [i64; 3] {
    rotation::quat_to_bins([0.0, 0.0, 0.0, 1.0])
}

impl ActionMap {
    /// Finds the keyframe parts; refuses any other action space.
    pub fn new(space: &Space) -> Result<ActionMap, PluginError> {
        let refuse = || {
            invalid(format!(
                "needs a keyframe action: a pose part (f32 [3] position, or [7] position and quaternion) and a 2-choice gripper part; \
                 the actions are {space} (Meta-World: set action_mode = \"keyframe\")"
            ))
        };
        let poses: Vec<(usize, &Part)> =
            space.parts.iter().enumerate().filter(|(_, p)| p.role == Role::POSE && p.dtype == Dtype::F32 && matches!(p.numel(), 3 | 7)).collect();
        let grippers: Vec<(usize, &Part)> = space.parts.iter().enumerate().filter(|(_, p)| p.is_discrete() && p.choices == 2 && p.numel() == 1).collect();
        let ([(pose, part)], [(gripper, _)]) = (poses.as_slice(), grippers.as_slice()) else { return Err(refuse()) };
        if space.parts.len() != 2 {
            return Err(refuse());
        }
        let position_bounds = (part.low.len() == part.numel()).then(|| {
            let (l, h) = (&part.low, &part.high);
            [l[0] as f64, l[1] as f64, l[2] as f64, h[0] as f64, h[1] as f64, h[2] as f64]
        });
        Ok(ActionMap { pose: *pose, pose_dim: part.numel(), gripper: *gripper, position_bounds, parts: space.parts.len() })
    }

    /// Whether the env takes an orientation.
    pub fn rotates(&self) -> bool {
        self.pose_dim == 7
    }

    /// Row `row` of env actions.
    pub fn read(&self, actions: &[ArrayRef<'_>], row: usize) -> Result<EnvAction, PluginError> {
        let (Some(pose), Some(grip)) = (actions.get(self.pose).and_then(|a| a.f32()), actions.get(self.gripper).and_then(|a| a.i32())) else {
            return Err(invalid("actions are not the keyframe parts (an f32 pose and an i32 gripper)"));
        };
        let d = self.pose_dim;
        let (Some(p), Some(&g)) = (pose.get(row * d..(row + 1) * d), grip.get(row)) else {
            return Err(invalid(format!("actions hold no row {row}")));
        };
        if p.iter().any(|x| !x.is_finite()) || !(0..2).contains(&g) {
            return Err(invalid(format!("action of row {row} is not finite or its gripper is not 0 or 1")));
        }
        let quat = (d == 7).then(|| [p[3] as f64, p[4] as f64, p[5] as f64, p[6] as f64]);
        Ok(EnvAction { position: [p[0] as f64, p[1] as f64, p[2] as f64], quat, gripper: g as i64 })
    }

    /// Writes row `row` of env actions.
    pub fn write(&self, out: &mut [ArrayMut<'_>], row: usize, position: [f64; 3], bins: [i64; 3], gripper: i64) -> Result<(), PluginError> {
        let d = self.pose_dim;
        let pose = out.get_mut(self.pose).and_then(|a| a.f32()).ok_or_else(|| invalid("act: the pose buffer is not f32"))?;
        let p = pose.get_mut(row * d..(row + 1) * d).ok_or_else(|| invalid("act: the pose buffer is too short"))?;
        for a in 0..3 {
            p[a] = position[a] as f32;
        }
        if d == 7 {
            let q = rotation::bins_to_quat(bins);
            for a in 0..4 {
                p[3 + a] = q[a] as f32;
            }
        }
        let g = out.get_mut(self.gripper).and_then(|a| a.i32()).ok_or_else(|| invalid("act: the gripper buffer is not i32"))?;
        *g.get_mut(row).ok_or_else(|| invalid("act: the gripper buffer is too short"))? = gripper as i32;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metaworld_obs() -> Space {
        Space::of(vec![
            Part::new("corner_rgb", Role::IMAGE, Dtype::U8, &[2, 2, 3]),
            Part::new("corner_point_cloud", Role::POINT_CLOUD, Dtype::F32, &[2, 2, 3]),
            Part::new("corner_intrinsics", Role::CAMERA_INTRINSICS, Dtype::F32, &[3, 3]),
            Part::new("corner_extrinsics", Role::CAMERA_EXTRINSICS, Dtype::F32, &[4, 4]),
            Part::new("proprio", Role::VECTOR, Dtype::F32, &[5]),
            Part::new("state", Role::VECTOR, Dtype::F32, &[39]),
        ])
    }

    fn keyframe_actions(dim: u32) -> Space {
        let (low, high) = if dim == 3 { (vec![-0.5, 0.4, 0.05], vec![0.5, 1.0, 0.5]) } else { (vec![-1.0; 7], vec![1.0; 7]) };
        Space::of(vec![
            Part { low: low.into(), high: high.into(), ..Part::new("target", Role::POSE, Dtype::F32, &[dim]) },
            Part { choices: 2, ..Part::new("gripper", Role::DISCRETE, Dtype::I32, &[]) },
        ])
    }

    #[test]
    fn metaworld_and_rlbench_parts_are_found_by_name() {
        let m = ObsMap::new(&metaworld_obs(), None, None).unwrap();
        assert_eq!((m.cameras.as_slice(), m.pixels.as_slice(), m.proprio), (&[(1, 0)][..], &[4][..], Some((4, 5))));
        // RLBench: two cameras, `low_dim`; one camera picked by the config.
        let mut parts = Vec::new();
        for c in ["front", "wrist"] {
            parts.push(Part::new(&format!("{c}_rgb"), Role::IMAGE, Dtype::U8, &[4, 4, 3]));
            parts.push(Part::new(&format!("{c}_point_cloud"), Role::POINT_CLOUD, Dtype::F32, &[4, 4, 3]));
        }
        parts.push(Part::new("low_dim", Role::VECTOR, Dtype::F32, &[11]));
        let rl = Space::of(parts);
        let m = ObsMap::new(&rl, None, None).unwrap();
        assert_eq!((m.cameras.as_slice(), m.proprio), (&[(1, 0), (3, 2)][..], Some((4, 11))));
        let m = ObsMap::new(&rl, Some(&["wrist".to_string()]), None).unwrap();
        assert_eq!(m.cameras, [(3, 2)]);
        let e = ObsMap::new(&rl, Some(&["overhead".to_string()]), None).unwrap_err();
        assert!(e.message.contains("overhead"), "{}", e.message);
    }

    #[test]
    fn spaces_it_cannot_use_are_refused_in_one_line() {
        let no_cloud = Space::of(vec![Part::new("corner_rgb", Role::IMAGE, Dtype::U8, &[2, 2, 3]), Part::new("proprio", Role::VECTOR, Dtype::F32, &[5])]);
        let e = ObsMap::new(&no_cloud, None, None).unwrap_err();
        assert!(e.message.contains("point cloud") && !e.message.contains('\n'), "{}", e.message);
        let native = Space::of(vec![Part { low: vec![-1.0; 4].into(), high: vec![1.0; 4].into(), ..Part::new("delta", Role::CONTINUOUS, Dtype::F32, &[4]) }]);
        let e = ActionMap::new(&native).unwrap_err();
        assert!(e.message.contains("keyframe") && e.message.contains("action_mode") && !e.message.contains('\n'), "{}", e.message);
        let a = ActionMap::new(&keyframe_actions(3)).unwrap();
        assert_eq!((a.pose, a.gripper, a.rotates(), a.position_bounds), (0, 1, false, Some([-0.5, 0.4f32 as f64, 0.05f32 as f64, 0.5, 1.0, 0.5])));
        assert!(ActionMap::new(&keyframe_actions(7)).unwrap().rotates());
    }

    #[test]
    fn a_cloud_keeps_only_points_a_level_can_see() {
        let m = ObsMap::new(&metaworld_obs(), None, None).unwrap();
        #[rustfmt::skip]
        let pts = [0.1f32, 0.5, 0.2,   9.0, 9.0, 9.0,   f32::NAN, 0.5, 0.2,   -0.1, 0.6, 0.3];
        let rgb = [10u8, 20, 30, 1, 1, 1, 2, 2, 2, 40, 50, 60];
        let (k, e) = (vec![0f32; 9], vec![0f32; 16]);
        let proprio = [1f32, 2., 3., 4., 5.];
        let state = [0f32; 39];
        let obs = [ArrayRef::new(&rgb[..]), ArrayRef::new(&pts[..]), ArrayRef::new(&k[..]), ArrayRef::new(&e[..]), ArrayRef::new(&proprio[..]), ArrayRef::new(&state[..])];
        m.check("obs", &obs, 1).unwrap();
        let c = m.cloud(&obs, 0, &[-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]);
        assert_eq!(c.points, [0.1, 0.5, 0.2, -0.1, 0.6, 0.3]);
        assert_eq!((c.rgb.as_slice(), c.proprio.as_slice()), (&[10u8, 20, 30, 40, 50, 60][..], &proprio[..]));
        assert!(m.check("obs", &obs[..5], 1).is_err());
    }

    #[test]
    fn an_agent_action_becomes_the_voxel_centre_and_back() {
        let g = Geometry { scene: [-0.3, -0.5, 0.6, 0.7, 0.5, 1.6], grid: 16, levels: 2, offset: 0.15 };
        let a = AgentAction { voxels: vec![[3, 8, 15], [0, 15, 7]], rot_grip: [36, 40, 0, 1] };
        let mut x = vec![0f32; 10];
        a.to_extras(&mut x);
        assert_eq!(AgentAction::from_extras(&x, 2, 16), Some(a.clone()));
        x[0] = 16.0;
        assert_eq!(AgentAction::from_extras(&x, 2, 16), None);
        // Level 0's voxel (3, 8, 15) has centre (-0.08125, 0.03125, 1.56875); level 1's box is
        // that ± 0.15, voxels of 1.875 cm.
        let p = g.position(&a.voxels, &[]);
        let want = [-0.08125 - 0.15 + 0.5 * 0.01875, 0.03125 - 0.15 + 15.5 * 0.01875, 1.56875 - 0.15 + 7.5 * 0.01875];
        for k in 0..3 {
            assert!((p[k] - want[k]).abs() < 1e-9, "{p:?} vs {want:?}");
        }
        // A demonstrated position maps to voxels whose chain ends within half a voxel of it.
        let target = [0.123, -0.2, 1.0];
        let v = g.voxels_for(target);
        let back = g.position(&v, &[]);
        assert!((0..3).all(|k| (back[k] - target[k]).abs() <= 0.01875 / 2.0 + 1e-12), "{back:?}");
        // Shifted boxes still end within half a voxel of the target; a shift that would put the
        // target outside its box is clamped.
        let (v, s) = g.augmented(target, &[[0.1, -0.1, 0.02]]);
        assert_eq!(s, [[0.1, -0.1, 0.02]]);
        let back = g.position(&v, &s);
        assert!((0..3).all(|k| (back[k] - target[k]).abs() <= 0.01875 / 2.0 + 1e-9), "{back:?}");
        let (v, s) = g.augmented(target, &[[0.5, 0.0, 0.0]]);
        assert!(s[0][0] > 0.1 && s[0][0] < 0.5, "clamped: {s:?}");
        let back = g.position(&v, &s);
        assert!((0..3).all(|k| (back[k] - target[k]).abs() <= 0.01875 / 2.0 + 1e-6), "{back:?}");
        assert_eq!(g.augmented(target, &[]).0, g.voxels_for(target)[..1]);
        // Writing the env action: position, quaternion of the bins, gripper.
        let map = ActionMap::new(&keyframe_actions(7)).unwrap();
        let (mut pose, mut grip) = (vec![0f32; 14], vec![0i32; 2]);
        let mut out = [ArrayMut::new(&mut pose[..]), ArrayMut::new(&mut grip[..])];
        map.write(&mut out, 1, p, [36, 36, 54], 1).unwrap();
        let views = [ArrayRef::new(&pose[..]), ArrayRef::new(&grip[..])];
        let back = map.read(&views, 1).unwrap();
        assert!((0..3).all(|k| (back.position[k] - p[k]).abs() < 1e-6) && back.gripper == 1);
        assert_eq!(rotation::quat_to_bins(back.quat.unwrap()), [36, 36, 54]);
        assert_eq!(fixed_rotation(), [36, 36, 36]);
    }
}
