//! Downscaling the 210x160 grey screen to 84x84: bilinear interpolation with OpenCV's
//! `INTER_LINEAR` conventions (pixel centres at +0.5, edge clamping, 11-bit fixed-point
//! weights, round to nearest), which is what DER's and the author's `cv2.resize` calls use.
//! OpenCV's SIMD and IPP paths round intermediate sums slightly differently, so frames agree
//! with `cv2.resize` to within one grey level rather than bit for bit (`benches/ale.sh` prints
//! the largest difference it saw).

const BITS: u32 = 11;
const SCALE: f32 = (1 << BITS) as f32;

/// Source offsets and weights of one output coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tap {
    at: usize,
    w0: i32,
    w1: i32,
}

fn taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f = (d as f64 + 0.5) * scale - 0.5;
            let mut s = f.floor() as i64;
            let mut frac = (f - s as f64) as f32;
            if s < 0 {
                s = 0;
                frac = 0.0;
            }
            if s as usize >= src - 1 {
                s = src as i64 - 1;
                frac = 0.0;
            }
            let w0 = ((1.0 - frac) * SCALE).round() as i32;
            let w1 = (frac * SCALE).round() as i32;
            Tap { at: s as usize, w0, w1 }
        })
        .collect()
}

/// A bilinear resize from one fixed size to another.
#[derive(Debug, Clone)]
pub struct Resizer {
    src_h: usize,
    src_w: usize,
    dst_w: usize,
    xs: Vec<Tap>,
    ys: Vec<Tap>,
    /// Horizontally resized rows (`src_h * dst_w`), reused between calls.
    rows: Vec<i32>,
}

impl Resizer {
    /// Resizes `src_h x src_w` images to `dst_h x dst_w`.
    pub fn new(src_h: usize, src_w: usize, dst_h: usize, dst_w: usize) -> Self {
        assert!(src_h >= 1 && src_w >= 1 && dst_h >= 1 && dst_w >= 1);
        Self { src_h, src_w, dst_w, xs: taps(src_w, dst_w), ys: taps(src_h, dst_h), rows: vec![0; src_h * dst_w] }
    }

    /// Writes the resized `src` (row-major, one byte per pixel) into `dst`.
    pub fn resize(&mut self, src: &[u8], dst: &mut [u8]) {
        let (sw, dw) = (self.src_w, self.dst_w);
        assert_eq!(src.len(), self.src_h * sw, "resize: source size");
        assert_eq!(dst.len(), self.ys.len() * dw, "resize: destination size");
        // Only the source rows some output row reads are resized horizontally.
        for y in self.ys.iter().flat_map(|t| [t.at, (t.at + 1).min(self.src_h - 1)]) {
            let row = &src[y * sw..(y + 1) * sw];
            let out = &mut self.rows[y * dw..(y + 1) * dw];
            for (o, t) in out.iter_mut().zip(&self.xs) {
                let next = row[(t.at + 1).min(sw - 1)] as i32;
                *o = row[t.at] as i32 * t.w0 + next * t.w1;
            }
        }
        let round = 1i32 << (2 * BITS - 1);
        for (dy, t) in self.ys.iter().enumerate() {
            let r0 = &self.rows[t.at * dw..(t.at + 1) * dw];
            let y1 = (t.at + 1).min(self.src_h - 1);
            let r1 = &self.rows[y1 * dw..(y1 + 1) * dw];
            for (x, o) in dst[dy * dw..(dy + 1) * dw].iter_mut().enumerate() {
                let v = (r0[x] * t.w0 + r1[x] * t.w1 + round) >> (2 * BITS);
                *o = v.clamp(0, 255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_follow_half_pixel_centres_and_clamp_at_the_edges() {
        // 160 -> 84: scale 1.90476; output 0 sits at source 0.452.
        let xs = taps(160, 84);
        assert_eq!(xs[0].at, 0);
        assert_eq!(xs[0].w1, (0.452_380_9f32 * SCALE).round() as i32);
        assert_eq!(xs[0].w0 + xs[0].w1, 1 << BITS);
        // Output 83 sits at 158.595: between 158 and 159.
        assert_eq!(xs[83].at, 158);
        // 210 -> 84: scale 2.5, output 0 at source 0.75, output 1 at 3.25.
        let ys = taps(210, 84);
        assert_eq!((ys[0].at, ys[0].w0, ys[0].w1), (0, 512, 1536));
        assert_eq!((ys[1].at, ys[1].w0, ys[1].w1), (3, 1536, 512));
        // Upscaling clamps below 0 and past the last pixel.
        let up = taps(2, 4);
        assert_eq!((up[0].at, up[0].w0, up[0].w1), (0, 2048, 0));
        assert_eq!((up[3].at, up[3].w0, up[3].w1), (1, 2048, 0));
    }

    #[test]
    fn resize_interpolates_by_hand_computed_weights() {
        // 2x4 -> 1x2: output x0 at source x 0.5 (between 0 and 1), x1 at 2.5; y at 0.5.
        let src = [0u8, 100, 200, 255, 50, 150, 250, 5];
        let mut r = Resizer::new(2, 4, 1, 2);
        let mut dst = [0u8; 2];
        r.resize(&src, &mut dst);
        // (0+100+50+150)/4 = 75; (200+255+250+5)/4 = 177.5 -> 178 (round half up).
        assert_eq!(dst, [75, 178]);
        // A constant image stays constant.
        let flat = vec![77u8; 210 * 160];
        let mut r = Resizer::new(210, 160, 84, 84);
        let mut out = vec![0u8; 84 * 84];
        r.resize(&flat, &mut out);
        assert!(out.iter().all(|&v| v == 77));
    }
}
