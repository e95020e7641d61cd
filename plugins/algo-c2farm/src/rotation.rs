//! Gripper orientation as C2F-ARM's discrete action: three Euler angles in 5° bins.
//!
//! The convention is stepjam/ARM's (scipy's `Rotation.as_euler('xyz')`): extrinsic rotations
//! about the world x, then y, then z axes, `R = Rz(γ) Ry(β) Rx(α)`, with α and γ in
//! [-180°, 180°] and β in [-90°, 90°]. Quaternions are `[x, y, z, w]` (RLBench's and scipy's
//! order). Each angle is shifted by 180° and rounded to the nearest bin:
//!
//! ```text
//! bin   = round((angle + 180°) / 5°) mod 72        (72 bins per axis: 360° / 5°)
//! angle = bin · 5° - 180°
//! ```
//!
//! so an angle comes back within half a bin (2.5°), and 180° and -180° share bin 0.
//! At β = ±90° (gimbal lock) only α - γ (or α + γ) is defined; there α is set to 0, as scipy
//! does. Quaternions are normalised on the way in and returned with `w ≥ 0` (the sign ARM
//! gives demo poses), so `q` and `-q`, or a scaled `q`, discretise alike.
//!
//! Meta-World's hand has no orientation control; an agent there still has the rotation head,
//! and its action is the constant bins of a fixed orientation (see the crate docs).

/// Degrees per bin.
pub const RESOLUTION_DEG: f64 = 5.0;
/// Bins per axis.
pub const BINS: i64 = 72;

/// `q / |q|` with `w ≥ 0`. A zero quaternion is the identity.
pub fn normalise(q: [f64; 4]) -> [f64; 4] {
    let n = q.iter().map(|x| x * x).sum::<f64>().sqrt();
    if n == 0.0 || !n.is_finite() {
        return [0.0, 0.0, 0.0, 1.0];
    }
    let s = if q[3] < 0.0 { -1.0 / n } else { 1.0 / n };
    q.map(|x| x * s)
}

/// The rotation matrix of a quaternion (normalised first).
pub fn quat_to_matrix(q: [f64; 4]) -> [[f64; 3]; 3] {
    let [x, y, z, w] = normalise(q);
    [
        [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - z * w), 2.0 * (x * z + y * w)],
        [2.0 * (x * y + z * w), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - x * w)],
        [2.0 * (x * z - y * w), 2.0 * (y * z + x * w), 1.0 - 2.0 * (x * x + y * y)],
    ]
}

/// Extrinsic xyz Euler angles `[α, β, γ]` in degrees of a quaternion.
pub fn quat_to_euler(q: [f64; 4]) -> [f64; 3] {
    let r = quat_to_matrix(q);
    let sin_b = (-r[2][0]).clamp(-1.0, 1.0);
    let b = sin_b.asin();
    let (a, c) = if (1.0 - sin_b.abs()) > 1e-9 {
        (r[2][1].atan2(r[2][2]), r[1][0].atan2(r[0][0]))
    } else {
        // Gimbal lock: R depends on α ∓ γ only; take α = 0.
        (0.0, (-r[0][1]).atan2(r[1][1]))
    };
    [a, b, c].map(f64::to_degrees)
}

/// The unit quaternion (`w ≥ 0`) of extrinsic xyz Euler angles in degrees.
pub fn euler_to_quat(euler: [f64; 3]) -> [f64; 4] {
    let [a, b, c] = euler.map(|d| d.to_radians() / 2.0);
    let (qx, qy, qz) = ([a.sin(), 0.0, 0.0, a.cos()], [0.0, b.sin(), 0.0, b.cos()], [0.0, 0.0, c.sin(), c.cos()]);
    normalise(mul(mul(qz, qy), qx))
}

/// Hamilton product `p q` of `[x, y, z, w]` quaternions (rotate by `q`, then by `p`).
pub fn mul(p: [f64; 4], q: [f64; 4]) -> [f64; 4] {
    let [px, py, pz, pw] = p;
    let [qx, qy, qz, qw] = q;
    [
        pw * qx + px * qw + py * qz - pz * qy,
        pw * qy - px * qz + py * qw + pz * qx,
        pw * qz + px * qy - py * qx + pz * qw,
        pw * qw - px * qx - py * qy - pz * qz,
    ]
}

/// An angle in degrees to its bin.
pub fn angle_to_bin(deg: f64) -> i64 {
    (((deg + 180.0) / RESOLUTION_DEG).round() as i64).rem_euclid(BINS)
}

/// A bin to its angle in degrees, in [-180°, 175°].
pub fn bin_to_angle(bin: i64) -> f64 {
    bin as f64 * RESOLUTION_DEG - 180.0
}

/// A quaternion to its three Euler bins (the rotation action).
pub fn quat_to_bins(q: [f64; 4]) -> [i64; 3] {
    quat_to_euler(q).map(angle_to_bin)
}

/// Three Euler bins to the unit quaternion (`w ≥ 0`) sent to the arm.
pub fn bins_to_quat(bins: [i64; 3]) -> [f64; 4] {
    euler_to_quat(bins.map(bin_to_angle))
}

/// The angle in degrees between two orientations.
pub fn angle_between(p: [f64; 4], q: [f64; 4]) -> f64 {
    let (p, q) = (normalise(p), normalise(q));
    let dot = p.iter().zip(&q).map(|(a, b)| a * b).sum::<f64>().abs().min(1.0);
    2.0 * dot.acos().to_degrees()
}

#[cfg(test)]
mod tests {
    use super::*;
    use metarl_plugin_kit::seeds::SeedStream;

    /// A uniformly random unit quaternion (Shoemake).
    fn random_quat(rng: &mut SeedStream) -> [f64; 4] {
        let (u1, u2, u3) = (rng.uniform(), rng.uniform() * std::f64::consts::TAU, rng.uniform() * std::f64::consts::TAU);
        let (a, b) = ((1.0 - u1).sqrt(), u1.sqrt());
        [a * u2.sin(), a * u2.cos(), b * u3.sin(), b * u3.cos()]
    }

    fn wrapped_diff(a: f64, b: f64) -> f64 {
        (a - b + 540.0).rem_euclid(360.0) - 180.0
    }

    #[test]
    fn euler_angles_match_known_rotations() {
        // 90° about x: q = (sin 45°, 0, 0, cos 45°).
        let h = std::f64::consts::FRAC_1_SQRT_2;
        let e = quat_to_euler([h, 0.0, 0.0, h]);
        assert!((e[0] - 90.0).abs() < 1e-9 && e[1].abs() < 1e-9 && e[2].abs() < 1e-9, "{e:?}");
        // Extrinsic order: 90° about x, then 90° about z, is Rz(90) Rx(90), i.e. q_z q_x.
        let q = euler_to_quat([90.0, 0.0, 90.0]);
        let want = normalise(mul([0.0, 0.0, h, h], [h, 0.0, 0.0, h]));
        assert!(angle_between(q, want) < 1e-9, "{q:?} vs {want:?}");
        // The rotation matrix of that quaternion sends world x to world y and y to z.
        let r = quat_to_matrix(q);
        assert!((r[1][0] - 1.0).abs() < 1e-9 && (r[2][1] - 1.0).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn discretising_keeps_each_angle_within_half_a_bin() {
        let mut rng = SeedStream::new(14);
        for _ in 0..2000 {
            let q = random_quat(&mut rng);
            let e = quat_to_euler(q);
            if e[1].abs() > 85.0 {
                continue; // near gimbal lock the split between α and γ is ill-conditioned
            }
            let back = bins_to_quat(quat_to_bins(q));
            let e2 = quat_to_euler(back);
            for a in 0..3 {
                assert!(wrapped_diff(e[a], e2[a]).abs() <= 2.5 + 1e-9, "axis {a}: {e:?} -> {e2:?}");
            }
            // Three rounding errors of at most 2.5° compose to at most 7.5° of rotation.
            assert!(angle_between(q, back) <= 7.5 + 1e-9);
        }
    }

    #[test]
    fn bins_round_trip_through_quaternions() {
        // β bins 19..=53 are the open interval (-90°, 90°): there the Euler triple is unique.
        for a in (0..BINS).step_by(5) {
            for b in 19..=53 {
                for c in (0..BINS).step_by(7) {
                    assert_eq!(quat_to_bins(bins_to_quat([a, b, c])), [a, b, c]);
                }
            }
        }
        // Elsewhere another triple names the same rotation: (α + 180°, 180° - β, γ + 180°).
        let (bins, again) = ([10, 5, 20], quat_to_bins(bins_to_quat([10, 5, 20])));
        assert_eq!(again, [46, 31, 56]);
        assert!(angle_between(bins_to_quat(bins), bins_to_quat(again)) < 1e-6);
        // ±180° are one bin.
        assert_eq!(angle_to_bin(180.0), 0);
        assert_eq!(angle_to_bin(-180.0), 0);
        assert_eq!(angle_to_bin(177.4), 71);
        assert_eq!(angle_to_bin(177.6), 0);
    }

    #[test]
    fn scale_and_sign_of_a_quaternion_do_not_matter() {
        let mut rng = SeedStream::new(7);
        for _ in 0..200 {
            let q = random_quat(&mut rng);
            let bins = quat_to_bins(q);
            assert_eq!(quat_to_bins(q.map(|x| -x)), bins);
            assert_eq!(quat_to_bins(q.map(|x| 3.7 * x)), bins);
            let n = normalise(q.map(|x| -0.2 * x));
            assert!((n.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-12 && n[3] >= 0.0);
            let out = bins_to_quat(bins);
            assert!(out[3] >= 0.0 && (out.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-12);
        }
        assert_eq!(normalise([0.0; 4]), [0.0, 0.0, 0.0, 1.0]);
        // Gimbal lock: β = 90° keeps α - γ, with α = 0.
        let e = quat_to_euler(euler_to_quat([30.0, 90.0, 10.0]));
        assert!(e[0].abs() < 1e-6 && (e[1] - 90.0).abs() < 1e-6 && (e[2] + 20.0).abs() < 1e-4, "{e:?}");
    }
}
