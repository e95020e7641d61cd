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

/// Magic bytes at the start of every checkpoint.
pub const MAGIC: &[u8] = b"METARL-RAINBOW\n";
/// Format version.
pub const VERSION: u32 = 1;

/// Appends little-endian values to a byte vector.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// A u32.
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A u64.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// An f32.
    pub fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// An f64.
    pub fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A length-prefixed string.
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    /// Raw bytes (no length).
    pub fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    /// f32s (no length).
    pub fn f32s(&mut self, v: &[f32]) {
        self.0.reserve(v.len() * 4);
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
}

/// Reads what a [`Writer`] wrote, refusing truncated input.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Starts after the magic bytes (checked).
    pub fn new(bytes: &'a [u8]) -> Result<Self, PluginError> {
        if !bytes.starts_with(MAGIC) {
            return Err(PluginError::invalid("rainbow load: not a rainbow checkpoint (bad magic bytes)"));
        }
        Ok(Reader { bytes, at: MAGIC.len() })
    }
    /// The error for damaged input.
    pub fn corrupt(&self) -> PluginError {
        PluginError::invalid("rainbow load: the checkpoint is truncated or corrupt")
    }
    /// True when every byte was read.
    pub fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], PluginError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| self.corrupt())?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], PluginError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, PluginError> {
        Ok(self.array::<1>()?[0])
    }
    /// A u32.
    pub fn u32(&mut self) -> Result<u32, PluginError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// A u64.
    pub fn u64(&mut self) -> Result<u64, PluginError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// An f32.
    pub fn f32(&mut self) -> Result<f32, PluginError> {
        Ok(f32::from_le_bytes(self.array()?))
    }
    /// An f64.
    pub fn f64(&mut self) -> Result<f64, PluginError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    /// A length-prefixed string.
    pub fn str(&mut self) -> Result<String, PluginError> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| self.corrupt())
    }
    /// `n` f32s.
    pub fn f32s(&mut self, n: usize) -> Result<Vec<f32>, PluginError> {
        let raw = self.take(n.checked_mul(4).ok_or_else(|| self.corrupt())?)?;
        Ok(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let mut w = Writer::default();
        w.bytes(MAGIC);
        w.str("arch");
        w.f32s(&[1.5, -0.0]);
        w.u64(u64::MAX);
        w.f64(0.1);
        let mut r = Reader::new(&w.0).unwrap();
        assert_eq!(r.str().unwrap(), "arch");
        assert_eq!(r.f32s(2).unwrap(), vec![1.5, -0.0]);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.f64().unwrap(), 0.1);
        assert!(r.done());
        assert!(r.u8().unwrap_err().message.contains("truncated"));
        assert!(Reader::new(b"nope").err().unwrap().message.contains("magic"));
    }
}
