//! SplitMix64 (Steele, Lea & Flood 2014), the one seed source of metarl.
//!
//! Meta-methods draw task choices and env seeds from a [`SeedStream`] and checkpoint its state;
//! the host derives every unit's seed from the experiment seed and the unit's *name*
//! ([`derive`]), never from a position, so reordering an experiment changes nothing.

/// SplitMix64's output function: a bijective mix of 64 bits.
pub fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The golden-ratio increment of SplitMix64.
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Advances `state` and returns the next 64 random bits.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GAMMA);
    finalize(*state)
}

/// An independent seed from two values.
pub fn mix(a: u64, b: u64) -> u64 {
    finalize(a ^ b.wrapping_mul(GAMMA))
}

/// FNV-1a hash of a name.
pub fn hash_name(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// The seed of the thing called `name` under `seed`.
pub fn derive(seed: u64, name: &str) -> u64 {
    mix(seed, hash_name(name))
}

/// A stream of seeds: meta-methods draw task choices and env seeds from it, and save its
/// state with their own so that a resumed run draws the same ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedStream(u64);

impl SeedStream {
    /// A stream starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }

    /// A uniform index below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `k` distinct items drawn uniformly from `items` (a partial Fisher-Yates shuffle), in
    /// the order drawn; all of them, shuffled, when `k` is at least their number.
    pub fn distinct<T: Clone>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let mut pool = items.to_vec();
        let k = k.min(pool.len());
        for i in 0..k {
            let j = i + self.below(pool.len() - i);
            pool.swap(i, j);
        }
        pool.truncate(k);
        pool
    }

    /// The state, for a checkpoint.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }

    /// Restores [`SeedStream::to_bytes`]; `what` names the owner in the error.
    pub fn from_bytes(what: &str, bytes: &[u8]) -> Result<Self, metarl_plugin_api::types::PluginError> {
        let b: [u8; 8] = bytes.try_into().map_err(|_| {
            metarl_plugin_api::types::PluginError::invalid(format!("{what} state is 8 bytes, got {}", bytes.len()))
        })?;
        Ok(Self(u64::from_le_bytes(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_splitmix64() {
        // First outputs of SplitMix64 seeded with 0 (the reference C implementation).
        let mut s = SeedStream::new(0);
        assert_eq!(s.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(s.next(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn derived_seeds_depend_on_names_only() {
        assert_eq!(derive(7, "pretrain/MT"), derive(7, "pretrain/MT"));
        assert_ne!(derive(7, "pretrain/MT"), derive(7, "pretrain/Reptile"));
        assert_ne!(derive(7, "pretrain/MT"), derive(8, "pretrain/MT"));
    }
}
