//! The pieces of prioritised replay that `algo-rainbow` and `algo-c2farm` share: the sum tree
//! over slot priorities, its stratified proportional draw with importance weights, and the
//! renumbering of a reference-counted store's live ids for a checkpoint.

/// A sum tree over `capacity` leaves.
#[derive(Debug, Clone)]
pub struct SumTree {
    size: usize,
    nodes: Vec<f64>,
}

impl SumTree {
    /// All leaves zero.
    pub fn new(capacity: usize) -> Self {
        let size = capacity.next_power_of_two().max(1);
        SumTree { size, nodes: vec![0.0; 2 * size] }
    }
    /// Sets leaf `i` and recomputes its ancestors from their children.
    pub fn set(&mut self, i: usize, p: f64) {
        let mut at = self.size + i;
        self.nodes[at] = p;
        while at > 1 {
            at /= 2;
            self.nodes[at] = self.nodes[2 * at] + self.nodes[2 * at + 1];
        }
    }
    /// Leaf `i`.
    pub fn get(&self, i: usize) -> f64 {
        self.nodes[self.size + i]
    }
    /// Sum of all leaves.
    pub fn total(&self) -> f64 {
        self.nodes[1]
    }
    /// The leaf where the running sum passes `v` (`0 <= v < total`); never a zero leaf while
    /// the total is positive, even where rounding puts `v` at the very end.
    pub fn find(&self, mut v: f64) -> usize {
        let mut at = 1;
        while at < self.size {
            let (l, r) = (self.nodes[2 * at], self.nodes[2 * at + 1]);
            if v < l || r <= 0.0 {
                at *= 2;
            } else {
                v -= l;
                at = 2 * at + 1;
            }
        }
        at - self.size
    }
    /// `count` leaves drawn proportionally to priority, one per equal segment of the total
    /// (Kaixhin's stratified sampling), with `u` giving uniforms in [0, 1); each with its
    /// importance weight `(N P(i))^-β` divided by the largest of the draw, for `n` stored rows.
    pub fn stratified(&self, count: usize, n: usize, beta: f64, mut u: impl FnMut() -> f64) -> Vec<(usize, f64)> {
        let total = self.total();
        let segment = total / count as f64;
        let mut out: Vec<(usize, f64)> = (0..count)
            .map(|j| {
                let v = ((j as f64 + u()) * segment).min(total * (1.0 - f64::EPSILON));
                let leaf = self.find(v);
                let p = self.get(leaf) / total;
                (leaf, (n as f64 * p).powf(-beta))
            })
            .collect();
        let max = out.iter().map(|s| s.1).fold(0.0, f64::max);
        out.iter_mut().for_each(|s| s.1 /= max);
        out
    }
}

/// For a reference-counted store's counts `refs`: each live id's new number (live ids
/// renumbered in id order, what a checkpoint writes), `u32::MAX` for the dead ones, and how
/// many are live.
pub fn renumber_live(refs: &[u32]) -> (Vec<u32>, u32) {
    let mut remap = vec![u32::MAX; refs.len()];
    let mut live = 0u32;
    for (id, &r) in refs.iter().enumerate() {
        if r > 0 {
            remap[id] = live;
            live += 1;
        }
    }
    (remap, live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_tree_samples_proportionally_and_never_a_zero_leaf() {
        let mut t = SumTree::new(5);
        for (i, p) in [1.0, 0.0, 3.0, 0.0, 4.0].into_iter().enumerate() {
            t.set(i, p);
        }
        assert_eq!(t.total(), 8.0);
        // Running sums: [0,1) -> 0, [1,4) -> 2, [4,8) -> 4.
        assert_eq!([0.0, 0.99, 1.0, 3.99, 4.0, 7.99].map(|v| t.find(v)), [0, 0, 2, 2, 4, 4]);
        assert_eq!(t.find(8.0), 4, "a value at the very end still lands on a non-zero leaf");
        t.set(4, 0.0);
        assert_eq!(t.total(), 4.0);
        assert_eq!(t.find(3.99999), 2);
    }

    #[test]
    fn a_stratified_draw_takes_one_leaf_per_segment_with_normalised_weights() {
        let mut t = SumTree::new(4);
        for (i, p) in [1.0, 2.0, 3.0, 0.0].into_iter().enumerate() {
            t.set(i, p);
        }
        // Three segments of width 2; u = 0.25 picks 0.5, 2.5, 4.5 -> leaves 0, 1, 2. Weights
        // (4 p / 6)^-1, divided by the largest (leaf 0's).
        let d = t.stratified(3, 4, 1.0, || 0.25);
        assert_eq!(d.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1, 2]);
        let want = [1.0, 0.5, 1.0 / 3.0];
        assert!(d.iter().zip(want).all(|(s, w)| (s.1 - w).abs() < 1e-12), "{d:?}");
    }

    #[test]
    fn live_ids_are_renumbered_in_order() {
        assert_eq!(renumber_live(&[2, 0, 1, 0, 3]), (vec![0, u32::MAX, 1, u32::MAX, 2], 3));
    }
}
