//! The run directory's lock: one `metarl run` at a time per directory.
//!
//! Two runs writing into one directory would race on its unit files and report, so `metarl
//! run` (and `--resume`) holds an exclusive `flock` on `<run dir>/.lock` for as long as it
//! runs, with its pid written in the file for the message a second run prints. The kernel
//! drops an flock when its holder dies, however it dies, so a `kill -9` leaves no lock behind:
//! the next run finds the file, takes the lock, and says whose lock it took over. The lock
//! file is removed when the holder finishes (successfully or not), so a finished run directory
//! holds only its results.
//!
//! Workers do not take the lock: they run on their parent's behalf, and the file is opened
//! close-on-exec, so they do not hold it either. The parent's death kills them (see
//! [`crate::executor`]), so nothing writes into a directory whose lock is free.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = ".lock";

/// A held run-directory lock; dropping it removes the file and releases the lock.
#[derive(Debug)]
pub struct RunLock {
    /// Holds the flock while open.
    _file: File,
    path: PathBuf,
}

/// Tries an exclusive, non-blocking flock on `file`: `Ok(true)` when taken, `Ok(false)` when
/// another open file (another process) holds it.
fn try_flock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// The pid a lock file names (what its holder wrote), or `?` while it is being written.
fn pid_in(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut text));
    match text.trim() {
        "" => "?".to_string(),
        pid => pid.to_string(),
    }
}

fn in_use(dir: &Path, pid: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "run directory {} is in use by another metarl run (pid {pid}); wait for it to finish or stop it first",
        dir.display()
    )
}

impl RunLock {
    /// Takes the lock of run directory `dir` (which must exist), or fails at once, in one line
    /// naming `dir` and the holder's pid, when a live process holds it. A lock file left by a
    /// holder that died is taken over, with a warning naming the dead holder.
    pub fn acquire(dir: &Path) -> anyhow::Result<RunLock> {
        let takeover = |previous: &str| {
            log::warn!("taking over the lock of {}: its holder (pid {previous}) is no longer running (killed?)", dir.display())
        };
        Self::acquire_at(dir.join(LOCK_FILE), |pid| in_use(dir, pid), takeover)
    }

    /// Takes the lock of one unit of run directory `dir` (`locks/<unit id>.lock`), for the
    /// worker that runs it; fails at once, naming the holder's pid, while another worker runs
    /// that unit. The local pool never starts a unit twice; under Slurm the lock stops a unit
    /// submitted again while its earlier job still runs (a `--resume` from a machine whose
    /// `squeue` does not see it) from being written by two workers at once.
    pub fn acquire_unit(dir: &Path, unit_id: &str) -> anyhow::Result<RunLock> {
        let locks = dir.join("locks");
        std::fs::create_dir_all(&locks).with_context(|| format!("cannot create {}", locks.display()))?;
        let busy = |pid: &str| anyhow::anyhow!("unit {unit_id} of {} is already being run by another worker (pid {pid})", dir.display());
        Self::acquire_at(locks.join(format!("{unit_id}.lock")), busy, |_| {})
    }

    fn acquire_at(path: PathBuf, busy: impl Fn(&str) -> anyhow::Error, takeover: impl Fn(&str)) -> anyhow::Result<RunLock> {
        loop {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("cannot create the lock file {}", path.display()))?;
            if !try_flock(&file).with_context(|| format!("cannot lock {}", path.display()))? {
                return Err(busy(&pid_in(&mut file)));
            }
            // A holder that finished removed the file between our open and our flock: the
            // lock we hold is on a file nobody else will open. Start again with the new one.
            let same = std::fs::metadata(&path).is_ok_and(|m| {
                file.metadata().is_ok_and(|f| f.ino() == m.ino() && f.dev() == m.dev())
            });
            if !same {
                continue;
            }
            let previous = pid_in(&mut file);
            if previous != "?" {
                takeover(&previous);
            }
            file.set_len(0).and_then(|_| file.rewind()).and_then(|_| writeln!(file, "{}", std::process::id()))
                .with_context(|| format!("cannot write {}", path.display()))?;
            return Ok(RunLock { _file: file, path });
        }
    }

    /// Refuses, naming the holder's pid, if a live process holds the lock of `dir`; creates
    /// nothing (for directories that may not be run directories at all).
    pub fn refuse_if_held(dir: &Path) -> anyhow::Result<()> {
        let Ok(mut file) = File::open(dir.join(LOCK_FILE)) else { return Ok(()) };
        match try_flock(&file) {
            Ok(false) => Err(in_use(dir, &pid_in(&mut file))),
            // Free (released again when `file` closes) or not lockable: acquire() decides.
            _ => Ok(()),
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still held, so no other run can have opened it in between and hold
        // a lock on a file that no longer has a name (acquire() checks for that, too).
        // The flock goes with `_file`, closed after this.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `dir` holds nothing but (perhaps) a lock file; a missing `dir` counts as empty.
pub fn is_empty_but_lock(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(d) => d.filter_map(|e| e.ok()).all(|e| e.file_name() == LOCK_FILE),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_a_released_lock_is_free_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let pid = std::process::id().to_string();
        // flock locks belong to open files, so a second open in this process conflicts too.
        let e = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&dir.path().display().to_string()) && e.contains(&format!("(pid {pid})")), "{e}");
        let e = RunLock::refuse_if_held(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is in use by another metarl run"), "{e}");
        drop(first);
        assert!(!dir.path().join(LOCK_FILE).exists(), "a released lock leaves no file");
        RunLock::refuse_if_held(dir.path()).unwrap();
        let again = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap().trim(), pid);
        drop(again);
    }

    #[test]
    fn a_lock_file_whose_holder_died_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // What a holder killed with SIGKILL leaves: the file with its pid, and no flock.
        std::fs::write(dir.path().join(LOCK_FILE), "4194304\n").unwrap();
        RunLock::refuse_if_held(dir.path()).unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap().trim(), std::process::id().to_string());
        drop(lock);
    }
}
