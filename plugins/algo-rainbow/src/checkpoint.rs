//! The `save`/`load` byte format: a small, self-describing little-endian container.
//!
//! ```text
//! "METARL-RAINBOW\n" | u32 version | str architecture
//! u32 count | count x (str name | u32 ndim | ndim x u64 dim | f32 data)   online parameters
//! count x f32 data                                                     target parameters
//! u64 adam step | count x f32 data (m) | count x f32 data (v)           optimizer
//! u32 layers | layers x (f32 eps_in | f32 eps_out)                      online noise in use
//! u64 noise rng | u64 sample rng | u64 gradient steps | u8 finetuning   counters
//! u8 has replay | replay (see `replay::Replay::write`)
//! ```
//!
//! `str` is a u32 length and UTF-8 bytes. Values are stored bit-exactly. Frames are stored
//! once each (only live ones), so a full 100k-transition Atari buffer is about 100k x 7056
//! bytes (0.7 GB) plus 41 bytes of bookkeeping per row.

use metarl_plugin_api::types::PluginError;

pub use metarl_plugin_kit::bytes::Writer;

/// Magic bytes at the start of every checkpoint.
pub const MAGIC: &[u8] = b"METARL-RAINBOW\n";
/// Format version.
pub const VERSION: u32 = 1;

/// A reader of a rainbow checkpoint, positioned after the (checked) magic bytes.
pub type Reader<'a> = metarl_plugin_kit::bytes::Reader<'a>;

/// Starts reading `bytes` as a rainbow checkpoint.
pub fn reader(bytes: &[u8]) -> Result<Reader<'_>, PluginError> {
    Reader::new(bytes, MAGIC, "rainbow")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_foreign_bytes_naming_rainbow() {
        assert!(reader(b"nope").err().unwrap().message.contains("rainbow load: not a rainbow checkpoint"));
        let mut w = Writer::with_magic(MAGIC);
        w.u32(VERSION);
        let mut r = reader(&w.0).unwrap();
        assert_eq!(r.u32().unwrap(), VERSION);
        assert!(r.u8().unwrap_err().message.contains("rainbow load: the checkpoint is truncated"));
    }
}
