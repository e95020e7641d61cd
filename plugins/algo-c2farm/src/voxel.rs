//! Scatter-mean voxelisation: a batch of coloured point clouds to C2F-ARM's `(10, G, G, G)`
//! voxel grids.
//!
//! Each point falls in the voxel `floor((p - min) / res)` of its cloud's bounds, with
//! `res = (max - min) / G` per axis; a voxel's features are the mean of its points' world
//! xyz and RGB, then its own index divided by `G` (one channel per axis) and its occupancy:
//!
//! ```text
//! channel  0..3   mean xyz of the voxel's points (0 where empty)
//!          3..6   mean RGB, in [-1, 1] (0 where empty)
//!          6..9   (i, j, k) / G, for every voxel
//!          9      1 if any point fell in the voxel, else 0
//! ```
//!
//! This is stepjam/ARM's `VoxelGrid.coords_to_bounding_voxel_grid` with the same channel
//! order and the same spatial order (dimension 2 of the output is x, then y, then z). A box
//! is half-open, `[min, max)` on each axis: ARM clamps out-of-bounds points into a one-voxel
//! margin that it then crops, which drops exactly those points; here they are masked out,
//! as are points with a non-finite coordinate (a depth image's holes). Bounds are per cloud,
//! since a finer level's box moves with the voxel chosen for each sample.
//!
//! The sums go through `index_add` into one flat `(B·G³ + 1, 7)` table (the extra row
//! swallows the dropped points), which libtorch computes in a fixed order on the CPU, so the
//! grid of a given cloud is reproducible bit for bit.

use tch::{Device, Kind, Tensor};

/// Features per voxel.
pub const FEATURES: i64 = 10;

/// Voxelises `B` clouds.
///
/// - `points`: `f32 [B, N, 3]`, world xyz;
/// - `rgb`: `f32 [B, N, 3]`, colours in [-1, 1] (any per-point features of width 3);
/// - `bounds`: `f32 [B, 6]`, `[xmin, ymin, zmin, xmax, ymax, zmax]` per cloud;
/// - `grid`: voxels per side, `G`.
///
/// Returns `f32 [B, 10, G, G, G]` (see the module docs), on the points' device, without
/// gradient history.
pub fn voxelise(points: &Tensor, rgb: &Tensor, bounds: &Tensor, grid: i64) -> Tensor {
    tch::no_grad(|| {
        let (b, n) = (points.size()[0], points.size()[1]);
        let device = points.device();
        let points = points.to_kind(Kind::Float);
        let lo = bounds.narrow(1, 0, 3).to_kind(Kind::Float).unsqueeze(1); // [B, 1, 3]
        let hi = bounds.narrow(1, 3, 3).to_kind(Kind::Float).unsqueeze(1);
        let res = (&hi - &lo) / grid as f64;

        // Inside [min, max) on all three axes; NaN fails both comparisons.
        let inside = points.ge_tensor(&lo).logical_and(&points.lt_tensor(&hi)).all_dim(2, false); // [B, N]
        // Rounding can put a point just below `max` in voxel G: it belongs to the last one.
        let ijk = ((&points - &lo) / &res).nan_to_num(0.0, None, None).floor().clamp(0.0, (grid - 1) as f64).to_kind(Kind::Int64);
        let cell = ijk.select(2, 0) * (grid * grid) + ijk.select(2, 1) * grid + ijk.select(2, 2);
        let cloud = Tensor::arange(b, (Kind::Int64, device)).unsqueeze(1) * grid.pow(3);
        let dump = b * grid.pow(3);
        let flat = (cell + cloud).where_self(&inside, &Tensor::full([1], dump, (Kind::Int64, device))).view([-1]);

        let ones = Tensor::ones([b, n, 1], (Kind::Float, device));
        let values = Tensor::cat(&[points.nan_to_num(0.0, None, None), rgb.to_kind(Kind::Float), ones], 2).view([-1, 7]);
        let sums = Tensor::zeros([dump + 1, 7], (Kind::Float, device)).index_add(0, &flat, &values).narrow(0, 0, dump);
        let count = sums.narrow(1, 6, 1);
        let means = sums.narrow(1, 0, 6) / count.clamp_min(1.0);
        let occupied = count.gt(0.0).to_kind(Kind::Float);

        let means = means.view([b, grid, grid, grid, 6]).permute([0, 4, 1, 2, 3]);
        let occupied = occupied.view([b, 1, grid, grid, grid]);
        let index = index_channels(grid, device).expand([b, 3, grid, grid, grid], false);
        Tensor::cat(&[means, index, occupied], 1).contiguous()
    })
}

/// `f32 [1, 3, G, G, G]`: each voxel's `(i, j, k) / G`.
fn index_channels(grid: i64, device: Device) -> Tensor {
    let r = Tensor::arange(grid, (Kind::Float, device)) / grid as f64;
    let axis = |shape: [i64; 3]| r.view(shape).expand([grid, grid, grid], false);
    Tensor::stack(&[axis([grid, 1, 1]), axis([1, grid, 1]), axis([1, 1, grid])], 0).unsqueeze(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use metarl_tch_common::to_vec_f32;

    fn t(v: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    /// The 10 features of voxel `(i, j, k)` of cloud `c`.
    fn voxel(grid: &Tensor, c: i64, (i, j, k): (i64, i64, i64)) -> Vec<f32> {
        to_vec_f32(&grid.get(c).select(1, i).select(1, j).select(1, k))
    }

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn a_hand_built_cloud_gives_the_hand_computed_grid() {
        tch::set_num_threads(1);
        // Unit box, G = 4: voxels of 0.25.
        let nan = f32::NAN;
        #[rustfmt::skip]
        let pts = [
            0.10, 0.10, 0.10,   // voxel (0, 0, 0)
            0.20, 0.05, 0.15,   // voxel (0, 0, 0)
            0.90, 0.60, 0.30,   // voxel (3, 2, 1)
            0.25, 0.50, 0.75,   // on the lower faces of voxel (1, 2, 3)
            1.00, 0.50, 0.50,   // x = max: outside the half-open box
            -0.01, 0.50, 0.50,  // below min
            0.50, 0.50, 1.20,   // above max
            nan, 0.50, 0.50,    // a hole in the depth image
        ];
        #[rustfmt::skip]
        let rgb = [
            1.0, 0.0, 0.0,
            0.0, 1.0, 0.0,
            -1.0, -1.0, -1.0,
            0.5, 0.25, -0.5,
            1.0, 1.0, 1.0,
            1.0, 1.0, 1.0,
            1.0, 1.0, 1.0,
            1.0, 1.0, 1.0,
        ];
        let g = voxelise(&t(&pts, &[1, 8, 3]), &t(&rgb, &[1, 8, 3]), &t(&[0., 0., 0., 1., 1., 1.], &[1, 6]), 4);
        assert_eq!(g.size(), [1, 10, 4, 4, 4]);

        close(&voxel(&g, 0, (0, 0, 0)), &[0.15, 0.075, 0.125, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0]);
        close(&voxel(&g, 0, (3, 2, 1)), &[0.9, 0.6, 0.3, -1.0, -1.0, -1.0, 0.75, 0.5, 0.25, 1.0]);
        close(&voxel(&g, 0, (1, 2, 3)), &[0.25, 0.5, 0.75, 0.5, 0.25, -0.5, 0.25, 0.5, 0.75, 1.0]);
        // An empty voxel holds only its index; the dropped points went nowhere.
        close(&voxel(&g, 0, (3, 2, 2)), &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.75, 0.5, 0.5, 0.0]);
        let occupancy = to_vec_f32(&g.get(0).get(9).sum(Kind::Float));
        assert_eq!(occupancy, [3.0], "three voxels hold points");
        let colour_mass = to_vec_f32(&g.get(0).narrow(0, 3, 3).abs().sum(Kind::Float))[0];
        assert!((colour_mass - (1.0 + 3.0 + 1.25)).abs() < 1e-5, "only the kept points' colours: {colour_mass}");
    }

    #[test]
    fn each_cloud_has_its_own_bounds_and_voxels() {
        tch::set_num_threads(1);
        // The same point in two clouds: cloud 0's box is the unit box, cloud 1's is shifted by
        // +0.5 on x, so the point moves from voxel x = 2 to x = 0 and nothing leaks between clouds.
        let pts = t(&[0.6, 0.1, 0.1, 0.6, 0.1, 0.1], &[2, 1, 3]);
        let rgb = t(&[0.2, 0.4, 0.6, -0.2, -0.4, -0.6], &[2, 1, 3]);
        let bounds = t(&[0., 0., 0., 1., 1., 1., 0.5, 0., 0., 1.5, 1., 1.], &[2, 6]);
        let g = voxelise(&pts, &rgb, &bounds, 4);
        close(&voxel(&g, 0, (2, 0, 0))[..6], &[0.6, 0.1, 0.1, 0.2, 0.4, 0.6]);
        close(&voxel(&g, 1, (0, 0, 0))[..6], &[0.6, 0.1, 0.1, -0.2, -0.4, -0.6]);
        for c in 0..2 {
            assert_eq!(to_vec_f32(&g.get(c).get(9).sum(Kind::Float)), [1.0], "cloud {c} has one occupied voxel");
        }
    }

    #[test]
    fn the_default_grid_matches_arm_scene_bounds() {
        tch::set_num_threads(1);
        // C2F-ARM's level-0 box (6.25 cm voxels at G = 16): a point 1 cm inside the low corner
        // and one 1 cm inside the high corner land in the corner voxels.
        let bounds = t(&[-0.3, -0.5, 0.6, 0.7, 0.5, 1.6], &[1, 6]);
        let pts = t(&[-0.29, -0.49, 0.61, 0.69, 0.49, 1.59], &[1, 2, 3]);
        let g = voxelise(&pts, &Tensor::zeros([1, 2, 3], (Kind::Float, Device::Cpu)), &bounds, 16);
        assert_eq!(g.size(), [1, 10, 16, 16, 16]);
        assert_eq!(voxel(&g, 0, (0, 0, 0))[9], 1.0);
        assert_eq!(voxel(&g, 0, (15, 15, 15))[9], 1.0);
        close(&voxel(&g, 0, (15, 15, 15))[6..9], &[15.0 / 16.0; 3]);
    }
}
