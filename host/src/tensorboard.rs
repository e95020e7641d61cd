//! TensorBoard event files: a study's live metrics, for `tensorboard --logdir runs/NAME`.
//!
//! Every unit of `metarl run` writes `tensorboard/<unit id>/events.out.tfevents.<unix
//! seconds>.metarl` ([`UnitWriter`]): each progress report's scalars as `train/<name>` at step =
//! env steps, the throughput since the previous report as `perf/env_steps_per_s`, and each
//! evaluation as `eval/return` and `eval/success` at its curve point. Every event is flushed
//! as it is written, so a TensorBoard watching the directory shows a study while it runs.
//!
//! **What is written.** Only scalars, so only the small part of TensorFlow's format they need,
//! encoded here by hand instead of through a protobuf code generator and a crate that writes
//! images, histograms and graphs too:
//! - the TFRecord framing of each record: the data's length as u64 little-endian, the masked
//!   CRC-32C of those 8 bytes (u32 LE), the data, the masked CRC-32C of the data (u32 LE),
//!   where masked = `((crc >> 15) | (crc << 17)) + 0xa282ead8`;
//! - the protobuf messages `Event { double wall_time = 1; int64 step = 2; string file_version
//!   = 3; Summary summary = 5; }`, `Summary { repeated Value value = 1; }` and `Value { string
//!   tag = 1; float simple_value = 2; }` (field numbers as in TensorFlow's `event.proto` and
//!   `summary.proto`; the other fields are left out, which protobuf reads as absent).
//!
//! The first event of a file carries `file_version = "brain.Event:2"`: with it, TensorBoard
//! does not treat a step lower than an earlier one as a restart and drop the later data (an
//! evaluation of point p is filed after the report that came at or after p).
//!
//! These files are diagnostics: `metrics.jsonl` and the unit files stay the record, the event
//! files are not part of the byte-identical resume contract (a restarted unit starts its
//! directory anew) and `metarl report` ignores them. A failure to write them never fails a
//! run: the first in a process is logged as a warning, and a unit whose file fails goes on
//! without events.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use metarl_plugin_api::env::EpisodeStat;
use metarl_plugin_api::types::Scalar;

/// The `file_version` of the first event of every file.
pub const FILE_VERSION: &str = "brain.Event:2";

// --- CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, bytewise table.

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &b| CRC_TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8))
}

/// The masked CRC-32C TFRecord stores (masked so that a CRC of data holding CRCs stays strong).
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `data` framed as one TFRecord.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

// --- the protobuf subset.

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (wire type 2): strings and embedded messages.
fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// What an event holds besides its time and step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum What<'a> {
    /// `file_version`: the first event of a file.
    FileVersion(&'a str),
    /// A `Summary` of scalars `(tag, simple_value)`.
    Scalars(&'a [(String, f32)]),
}

/// The bytes of an `Event` message.
pub fn event(wall_time: f64, step: i64, what: What<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, (1 << 3) | 1); // wall_time: double (64-bit)
    out.extend_from_slice(&wall_time.to_le_bytes());
    varint(&mut out, 2 << 3); // step: int64 (varint, two's complement)
    varint(&mut out, step as u64);
    match what {
        What::FileVersion(v) => bytes_field(&mut out, 3, v.as_bytes()),
        What::Scalars(values) => {
            let mut summary = Vec::new();
            for (tag, v) in values {
                let mut value = Vec::new();
                bytes_field(&mut value, 1, tag.as_bytes());
                varint(&mut value, (2 << 3) | 5); // simple_value: float (32-bit)
                value.extend_from_slice(&v.to_le_bytes());
                bytes_field(&mut summary, 1, &value);
            }
            bytes_field(&mut out, 5, &summary);
        }
    }
    out
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Set once the first failure has been logged: one warning per process, not one per event.
static WARNED: AtomicBool = AtomicBool::new(false);

/// The event file of one unit. Never fails: after its first error it logs a warning (the first
/// in the process) and writes nothing more.
pub struct UnitWriter {
    path: PathBuf,
    file: Option<File>,
    /// Env steps and time of the previous progress report (at first, of the writer's start).
    last: (u64, Instant),
}

impl UnitWriter {
    /// Starts the unit's event directory `dir` anew: removes what an earlier (interrupted) run
    /// of the unit left there, creates the event file and writes its first event.
    pub fn create(dir: &Path) -> UnitWriter {
        let start = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let path = dir.join(format!("events.out.tfevents.{start}.metarl"));
        let mut w = UnitWriter { path, file: None, last: (0, Instant::now()) };
        let opened = (|| {
            match std::fs::remove_dir_all(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            std::fs::create_dir_all(dir)?;
            File::create(&w.path)
        })();
        match opened {
            Ok(f) => {
                w.file = Some(f);
                w.write(&event(now(), 0, What::FileVersion(FILE_VERSION)));
            }
            Err(e) => w.failed(e),
        }
        w
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn failed(&mut self, e: std::io::Error) {
        self.file = None;
        if !WARNED.swap(true, Ordering::Relaxed) {
            log::warn!("cannot write TensorBoard events to {}: {e}; the run goes on without them", self.path.display());
        }
    }

    fn write(&mut self, event: &[u8]) {
        let Some(file) = &mut self.file else { return };
        if let Err(e) = file.write_all(&record(event)).and_then(|_| file.flush()) {
            self.failed(e);
        }
    }

    /// Writes `values` at `step` as one event.
    pub fn scalars(&mut self, step: u64, values: &[(String, f32)]) {
        if self.file.is_some() && !values.is_empty() {
            self.write(&event(now(), step as i64, What::Scalars(values)));
        }
    }

    /// A progress report: its finite scalars (those `metrics.jsonl` holds) as `train/<name>`,
    /// and the env steps per wall second since the previous report (since the start, for the
    /// first) as `perf/env_steps_per_s`, where env steps were taken in between (not at the
    /// usual first report, at 0 env steps).
    pub fn progress(&mut self, env_steps: u64, scalars: &[Scalar]) {
        let mut values: Vec<(String, f32)> =
            scalars.iter().filter(|s| s.value.is_finite()).map(|s| (format!("train/{}", s.name), s.value as f32)).collect();
        let (steps, at) = self.last;
        let seconds = at.elapsed().as_secs_f64();
        if env_steps > steps && seconds > 0.0 {
            values.push(("perf/env_steps_per_s".to_string(), ((env_steps - steps) as f64 / seconds) as f32));
        }
        self.last = (env_steps, Instant::now());
        self.scalars(env_steps, &values);
    }

    /// An evaluation standing for curve point `point`: the mean return of its `episodes` as
    /// `eval/return` and their success rate as `eval/success` (computed as the unit's curve
    /// file computes them); nothing for an evaluation without episodes (a gap of the curve).
    pub fn eval(&mut self, point: u64, episodes: &[EpisodeStat]) {
        if episodes.is_empty() {
            return;
        }
        let n = episodes.len() as f64;
        let ret = episodes.iter().map(|e| e.ret as f64).sum::<f64>() / n;
        let success = episodes.iter().map(|e| e.success as u8 as f64).sum::<f64>() / n;
        self.scalars(point, &[("eval/return".to_string(), ret as f32), ("eval/success".to_string(), success as f32)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_of_known_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // RFC 3720, B.4.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        assert_eq!(crc32c(&(0u8..32).collect::<Vec<_>>()), 0x46DD_794E);
    }

    #[test]
    fn masked_crc_rotates_and_adds() {
        let crc = 0xE306_9283u32;
        assert_eq!(masked_crc32c(b"123456789"), crc.rotate_right(15).wrapping_add(0xa282_ead8));
    }

    #[test]
    fn record_framing() {
        let data = b"123456789";
        let r = record(data);
        assert_eq!(r.len(), 8 + 4 + data.len() + 4);
        assert_eq!(&r[..8], &9u64.to_le_bytes());
        assert_eq!(u32::from_le_bytes(r[8..12].try_into().unwrap()), masked_crc32c(&9u64.to_le_bytes()));
        assert_eq!(&r[12..21], data);
        assert_eq!(u32::from_le_bytes(r[21..25].try_into().unwrap()), masked_crc32c(data));
        // An empty record: its length, the CRC of eight zero bytes, and the CRC of nothing.
        let empty = record(b"");
        assert_eq!(empty.len(), 16);
        assert_eq!(&empty[12..], &0xa282_ead8u32.to_le_bytes(), "crc32c(\"\") = 0, masked");
    }

    #[test]
    fn events_encode_the_protobuf_fields() {
        let e = event(1.5, 300, What::FileVersion(FILE_VERSION));
        let mut want = vec![0x09];
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0xac, 0x02, 0x1a, 13]);
        want.extend_from_slice(b"brain.Event:2");
        assert_eq!(e, want);

        let e = event(0.0, 0, What::Scalars(&[("a".into(), 2.0)]));
        let mut want = vec![0x09];
        want.extend_from_slice(&0.0f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0x00, 0x2a, 10, 0x0a, 8, 0x0a, 1, b'a', 0x15]);
        want.extend_from_slice(&2.0f32.to_le_bytes());
        assert_eq!(e, want);
    }

    #[test]
    fn a_unit_writer_starts_its_directory_anew() {
        let dir = std::env::temp_dir().join(format!("metarl-tb-test-{}", std::process::id()));
        let unit = dir.join("unit");
        std::fs::create_dir_all(&unit).unwrap();
        std::fs::write(unit.join("events.out.tfevents.1.metarl"), b"stale").unwrap();
        let mut w = UnitWriter::create(&unit);
        w.progress(64, &[Scalar { name: "loss".into(), value: 0.25 }, Scalar { name: "nan".into(), value: f64::NAN }]);
        let files: Vec<_> = std::fs::read_dir(&unit).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files, vec![w.path().to_path_buf()]);
        let bytes = std::fs::read(w.path()).unwrap();
        let first = record(&event(0.0, 0, What::FileVersion(FILE_VERSION)));
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n, first.len() - 16);
        let second = &bytes[n + 16..];
        let m = u64::from_le_bytes(second[..8].try_into().unwrap()) as usize;
        assert_eq!(second.len(), m + 16, "two records, each flushed");
        assert!(second.windows(10).any(|w| w == b"train/loss"));
        assert!(!second.windows(9).any(|w| w == b"train/nan"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_writer_that_cannot_write_goes_on_silently() {
        let blocker = std::env::temp_dir().join(format!("metarl-tb-blocker-{}", std::process::id()));
        std::fs::write(&blocker, b"a file, not a directory").unwrap();
        let mut w = UnitWriter::create(&blocker.join("unit"));
        w.progress(1, &[Scalar { name: "x".into(), value: 1.0 }]);
        w.eval(0, &[]);
        std::fs::remove_file(&blocker).unwrap();
    }
}
