//! A plugin's `save`/`load` bytes: little-endian values appended by a [`Writer`] and read
//! back by a [`Reader`] that refuses truncated or foreign input with one line naming the
//! plugin. Values round-trip bit-exactly, which exact resume needs.

use metarl_plugin_api::types::PluginError;

/// Appends little-endian values to a byte vector.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// Starts a checkpoint with its magic bytes.
    pub fn with_magic(magic: &[u8]) -> Self {
        Writer(magic.to_vec())
    }
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
    owner: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts after `magic` (checked); `owner` (the plugin's name) leads every error.
    pub fn new(bytes: &'a [u8], magic: &[u8], owner: &'static str) -> Result<Self, PluginError> {
        if !bytes.starts_with(magic) {
            return Err(PluginError::invalid(format!("{owner} load: not a {owner} checkpoint (bad magic bytes)")));
        }
        Ok(Reader { bytes, at: magic.len(), owner })
    }
    /// The error for damaged input.
    pub fn corrupt(&self) -> PluginError {
        PluginError::invalid(format!("{} load: the checkpoint is truncated or corrupt", self.owner))
    }
    /// True when every byte was read.
    pub fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), PluginError> {
        if self.done() {
            Ok(())
        } else {
            Err(self.corrupt())
        }
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
        let mut w = Writer::with_magic(b"MAGIC\n");
        w.str("arch");
        w.f32s(&[1.5, -0.0]);
        w.u64(u64::MAX);
        w.f64(0.1);
        w.u8(7);
        let mut r = Reader::new(&w.0, b"MAGIC\n", "thing").unwrap();
        assert_eq!(r.str().unwrap(), "arch");
        assert_eq!(r.f32s(2).unwrap(), vec![1.5, -0.0]);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.f64().unwrap(), 0.1);
        assert_eq!(r.u8().unwrap(), 7);
        assert!(r.done() && r.finish().is_ok());
        assert_eq!(r.u8().unwrap_err().message.as_str(), "thing load: the checkpoint is truncated or corrupt");
        let e = Reader::new(b"nope", b"MAGIC\n", "thing").err().unwrap();
        assert_eq!(e.message.as_str(), "thing load: not a thing checkpoint (bad magic bytes)");
    }
}
