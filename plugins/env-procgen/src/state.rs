//! Reading and patching the head of a serialised Procgen game (`Game::serialize` in
//! procgen 0.10.7, `SERIALIZE_VERSION` 0).
//!
//! Procgen draws the next level as `level_seed_rand_gen.randint(level_seed_low,
//! level_seed_high)` whenever an episode ends, with bounds fixed per `VecGame`. Setting one
//! game's bounds to `[L, L + 1)` through `get_state`/`set_state` makes its next episode play
//! level `L`, which is how explicit level lists and repeated trials are implemented. Every
//! field read is checked against what we expect, so a different layout is an error, never a
//! silently corrupted game.

use metarl_plugin_api::types::PluginError;

/// The fields of a game's state this adapter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Byte offset of `level_seed_low` (`level_seed_high` follows it).
    bounds_at: usize,
    /// Bounds of the next level draw, `[low, high)`.
    pub low: i32,
    /// See `low`.
    pub high: i32,
    /// Steps after which Procgen ends an episode (per level).
    pub timeout: i32,
    /// The level being played.
    pub current_level_seed: i32,
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn int(&mut self) -> Option<i32> {
        let b = self.buf.get(self.at..self.at + 4)?;
        self.at += 4;
        Some(i32::from_ne_bytes(b.try_into().ok()?))
    }
    fn string(&mut self) -> Option<&[u8]> {
        let n = usize::try_from(self.int()?).ok()?;
        let s = self.buf.get(self.at..self.at + n)?;
        self.at += n;
        Some(s)
    }
}

fn layout_error(game: &str, what: &str) -> PluginError {
    PluginError::failed(format!(
        "unexpected Procgen state layout for '{game}' ({what}); this adapter expects procgen 0.10.7"
    ))
}

/// Parses the head of `state`, the serialised state of a game of `game`.
pub fn parse(state: &[u8], game: &str) -> Result<Head, PluginError> {
    let err = |what| layout_error(game, what);
    let mut r = Reader { buf: state, at: 0 };
    if r.int() != Some(0) {
        return Err(err("serialize version"));
    }
    if r.string() != Some(game.as_bytes()) {
        return Err(err("game name"));
    }
    // 9 option ints, 3 coinrun_old ints, grid_step.
    for _ in 0..13 {
        r.int().ok_or_else(|| err("truncated"))?;
    }
    let bounds_at = r.at;
    let low = r.int().ok_or_else(|| err("truncated"))?;
    let high = r.int().ok_or_else(|| err("truncated"))?;
    // game_type, game_n, then two RandGens (is_seeded + text state).
    r.int().ok_or_else(|| err("truncated"))?;
    r.int().ok_or_else(|| err("truncated"))?;
    for _ in 0..2 {
        if r.int() != Some(1) {
            return Err(err("rand gen"));
        }
        r.string().ok_or_else(|| err("rand gen"))?;
    }
    // reward (float), done, level_complete, action, timeout, current_level_seed.
    for _ in 0..4 {
        r.int().ok_or_else(|| err("truncated"))?;
    }
    let timeout = r.int().ok_or_else(|| err("truncated"))?;
    let current_level_seed = r.int().ok_or_else(|| err("truncated"))?;
    if low < 0 || high <= low || timeout <= 0 || current_level_seed < 0 {
        return Err(err("implausible values"));
    }
    Ok(Head { bounds_at, low, high, timeout, current_level_seed })
}

/// Makes the next episode of the game whose state is `state` play `level`. `expect` is the
/// `[low, high)` the state should hold now, as a check that we track it right.
pub fn set_next_level(state: &mut [u8], game: &str, expect: (i32, i32), level: i32) -> Result<(), PluginError> {
    let head = parse(state, game)?;
    if (head.low, head.high) != expect {
        return Err(layout_error(game, "level bounds differ from the ones set"));
    }
    let at = head.bounds_at;
    state[at..at + 4].copy_from_slice(&level.to_ne_bytes());
    state[at + 4..at + 8].copy_from_slice(&(level + 1).to_ne_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(game: &str, low: i32, high: i32) -> Vec<u8> {
        let mut b = Vec::new();
        let int = |b: &mut Vec<u8>, v: i32| b.extend_from_slice(&v.to_ne_bytes());
        int(&mut b, 0);
        int(&mut b, game.len() as i32);
        b.extend_from_slice(game.as_bytes());
        for _ in 0..13 {
            int(&mut b, 7);
        }
        int(&mut b, low);
        int(&mut b, high);
        int(&mut b, 0);
        int(&mut b, 3);
        for _ in 0..2 {
            int(&mut b, 1);
            int(&mut b, 5);
            b.extend_from_slice(b"1 2 3");
        }
        for v in [0, 0, 0, 4, 1000, low] {
            int(&mut b, v);
        }
        b
    }

    #[test]
    fn parses_and_patches_the_head() {
        let mut s = fake("maze", 10, 20);
        let h = parse(&s, "maze").unwrap();
        assert_eq!((h.low, h.high, h.timeout, h.current_level_seed), (10, 20, 1000, 10));
        set_next_level(&mut s, "maze", (10, 20), 42).unwrap();
        let h = parse(&s, "maze").unwrap();
        assert_eq!((h.low, h.high), (42, 43));
        assert!(set_next_level(&mut s, "maze", (10, 20), 1).is_err());
        assert!(parse(&s, "heist").is_err());
        assert!(parse(&s[..30], "maze").is_err());
    }
}
