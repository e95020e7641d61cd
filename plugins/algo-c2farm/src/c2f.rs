//! Coarse to fine: how the levels' boxes nest, and how a point becomes each level's voxel.
//!
//! Level 0's box is the scene bounds. A level's `G³` voxels each have a centre; the voxel
//! chosen at level `l` puts level `l + 1`'s box at that centre ± `bounds_offset` (0.15 m in
//! C2F-ARM: at G = 16 a level-0 voxel is 6.25 cm and a level-1 voxel 1.875 cm). The last
//! level's chosen centre is the translation sent to the arm.
//!
//! ```text
//! res      = (max - min) / G                      per axis
//! centre   = min + (index + ½) res
//! next box = [centre - offset, centre + offset]
//! index    = clamp(floor((p - min) / res), 0, G - 1)       (a target's voxel)
//! ```
//!
//! Training targets come from a demonstrated (or executed) gripper position `p`:
//! [`level_targets`] walks the levels, taking at each the voxel holding `p`, then crops
//! around that voxel's centre (plus an optional shift: C2F-ARM's crop augmentation). The
//! acting path crops around the chosen voxel's centre too, so both see the same boxes.
//! stepjam/ARM's demo loader instead crops around the voxel's low corner (`min + index·res`)
//! while its acting crops around the centre; its crop augmentation (shifts up to ±0.75 ×
//! offset) is much wider than that half-voxel difference, so using the centre in both places
//! changes nothing the network could rely on and keeps the two paths identical.
//!
//! [`point_to_voxel`] clamps to the grid on both sides (ARM's clamps only above), so a target
//! is always a valid voxel; a point outside the box lands on its nearest face voxel.

/// A box `[xmin, ymin, zmin, xmax, ymax, zmax]`.
pub type Bounds = [f64; 6];

/// Voxel size per axis of `bounds` at `grid` voxels per side.
pub fn resolution(bounds: &Bounds, grid: i64) -> [f64; 3] {
    [0, 1, 2].map(|a| (bounds[a + 3] - bounds[a]) / grid as f64)
}

/// World coordinates of the centre of voxel `index`.
pub fn voxel_centre(bounds: &Bounds, grid: i64, index: [i64; 3]) -> [f64; 3] {
    let res = resolution(bounds, grid);
    [0, 1, 2].map(|a| bounds[a] + (index[a] as f64 + 0.5) * res[a])
}

/// The next level's box: `centre ± offset` on every axis.
pub fn crop_bounds(centre: [f64; 3], offset: f64) -> Bounds {
    [centre[0] - offset, centre[1] - offset, centre[2] - offset, centre[0] + offset, centre[1] + offset, centre[2] + offset]
}

/// The voxel of `bounds` holding `point`, clamped into the grid.
pub fn point_to_voxel(bounds: &Bounds, grid: i64, point: [f64; 3]) -> [i64; 3] {
    let res = resolution(bounds, grid);
    [0, 1, 2].map(|a| (((point[a] - bounds[a]) / res[a]).floor() as i64).clamp(0, grid - 1))
}

/// One level of a coarse-to-fine target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelTarget {
    /// The level's box.
    pub bounds: Bounds,
    /// The voxel holding the target point.
    pub index: [i64; 3],
}

/// Each level's box and target voxel for `point`: level 0 in `scene`, level `l > 0` in the box
/// `centre_{l-1} + shifts[l-1] ± offsets[l-1]` (`shifts` empty: no shift). `offsets` has one
/// entry per level after the first.
pub fn level_targets(scene: &Bounds, grid: i64, offsets: &[f64], shifts: &[[f64; 3]], point: [f64; 3]) -> Vec<LevelTarget> {
    let mut bounds = *scene;
    let mut out: Vec<LevelTarget> = Vec::with_capacity(offsets.len() + 1);
    for level in 0..=offsets.len() {
        if level > 0 {
            let centre = voxel_centre(&bounds, grid, out[level - 1].index);
            let shift = shifts.get(level - 1).copied().unwrap_or([0.0; 3]);
            bounds = crop_bounds([0, 1, 2].map(|a| centre[a] + shift[a]), offsets[level - 1]);
        }
        out.push(LevelTarget { bounds, index: point_to_voxel(&bounds, grid, point) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C2F-ARM's scene bounds (FACTS: 6.25 cm voxels at G = 16).
    const SCENE: Bounds = [-0.3, -0.5, 0.6, 0.7, 0.5, 1.6];

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn the_crop_around_a_chosen_voxel_is_its_centre_plus_minus_the_offset() {
        assert_eq!(resolution(&SCENE, 16), [0.0625; 3]);
        // Voxel (0, 8, 15): centres at -0.3 + 0.03125, -0.5 + 8.5 × 0.0625, 0.6 + 15.5 × 0.0625.
        let c = voxel_centre(&SCENE, 16, [0, 8, 15]);
        close(&c, &[-0.26875, 0.03125, 1.56875], 1e-12);
        let b = crop_bounds(c, 0.15);
        close(&b, &[-0.41875, -0.11875, 1.41875, -0.11875, 0.18125, 1.71875], 1e-12);
        // Level 1's voxels: 0.3 / 16 = 1.875 cm.
        close(&resolution(&b, 16), &[0.01875; 3], 1e-12);
    }

    #[test]
    fn every_voxel_centre_maps_back_to_its_voxel() {
        for grid in [4, 16] {
            for i in 0..grid {
                for j in 0..grid {
                    for k in 0..grid {
                        let c = voxel_centre(&SCENE, grid, [i, j, k]);
                        assert_eq!(point_to_voxel(&SCENE, grid, c), [i, j, k], "grid {grid}");
                    }
                }
            }
        }
        // Faces: min belongs to voxel 0, max (outside the half-open box) clamps to G - 1, and so
        // does anything beyond.
        assert_eq!(point_to_voxel(&SCENE, 16, [-0.3, -0.5, 0.6]), [0, 0, 0]);
        assert_eq!(point_to_voxel(&SCENE, 16, [0.7, 0.5, 1.6]), [15, 15, 15]);
        assert_eq!(point_to_voxel(&SCENE, 16, [-5.0, 0.0, 9.0]), [0, 8, 15]);
    }

    #[test]
    fn each_level_narrows_in_on_the_target_point() {
        let p = [0.123, -0.321, 1.0456];
        let levels = level_targets(&SCENE, 16, &[0.15, 0.15], &[], p);
        assert_eq!(levels.len(), 3);
        assert_eq!(levels[0].bounds, SCENE);
        for (l, t) in levels.iter().enumerate() {
            // The point lies in its level's chosen voxel, so that voxel's centre is within half
            // a voxel of it: 3.125 cm at level 0, 0.9375 cm at levels 1 and 2.
            let res = resolution(&t.bounds, 16);
            let c = voxel_centre(&t.bounds, 16, t.index);
            for a in 0..3 {
                assert!((c[a] - p[a]).abs() <= res[a] / 2.0 + 1e-12, "level {l} axis {a}");
            }
            if l > 0 {
                let prev = &levels[l - 1];
                let centre = voxel_centre(&prev.bounds, 16, prev.index);
                assert_eq!(t.bounds, crop_bounds(centre, 0.15), "level {l} is cropped around level {}'s voxel", l - 1);
            }
        }
        // A crop-augmentation shift moves level 1's box, and the target voxel with it.
        let shifted = level_targets(&SCENE, 16, &[0.15], &[[0.0375, 0.0, 0.0]], p);
        assert_eq!(shifted[0], levels[0]);
        close(&shifted[1].bounds[..1], &[levels[1].bounds[0] + 0.0375], 1e-12);
        assert_eq!(shifted[1].index, [levels[1].index[0] - 2, levels[1].index[1], levels[1].index[2]]);
    }
}
