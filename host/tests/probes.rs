//! Reliability probes (#15): `kill -9` of `metarl run` at moments drawn from a seeded RNG, a
//! file-size limit that makes a write fail part-way through a run (as a full disk does), and
//! the registry and experiment parsers under generated and mutated input.
//!
//! Two `metarl run` processes on one run directory are probed in workers.rs
//! (`a_run_directory_in_use_is_refused_at_once_and_workers_die_with_their_parent`): the second
//! is refused at once, naming the holder's pid, with and without `--resume`.

mod common;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use metarl::experiment::Plan;
use metarl::registry::Registry;
use metarl_plugin_kit::seeds::{hash_name, SeedStream};

/// The toy env, MT and the test-only algo: units of a fraction of a second, no libtorch.
fn setup() -> (tempfile::TempDir, PathBuf) {
    registry_of(&[
        ("gridworld", "env", "metarl-env-gridworld"),
        ("mt", "meta", "metarl-meta-mt"),
        ("const", "algo", "metarl-fixture-algo"),
    ])
}

/// 10 units (2 pretraining, 4 adaptation, 4 scratch). The algo's parameters move with every
/// update, so checkpoints hold state that training produced.
const EXP: &str = r#"seeds = [0, 1]
num_envs = 4
threads = 1
[env]
plugin = "gridworld"
train = "gridworld:0..12"
test = "gridworld:12..14"
[algo]
plugin = "const"
config = { update_adds = 0.25 }
[pretrain]
env_steps = 400
[adapt]
env_steps = 192
eval_every = 64
eval_episodes = 4
[[method]]
label = "MT"
meta = "mt"
"#;

const UNITS: usize = 10;

/// `metarl run EXP --out OUT --jobs 2 [--resume]`.
fn run_cmd(reg: &Path, exp: &Path, out: &Path, resume: bool) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("--registry").arg(reg).arg("run").arg(exp).arg("--out").arg(out).args(["--jobs", "2"]);
    if resume {
        cmd.arg("--resume");
    }
    cmd
}

/// Pids of the processes whose command line mentions `needle` (a run's workers name its
/// directory).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Waits until no worker of run directory `out` is left (they die with their parent).
fn wait_for_no_workers(out: &Path) {
    let start = Instant::now();
    while !processes_mentioning(out.to_str().unwrap()).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "workers outlived their parent: {:?}", processes_mentioning(out.to_str().unwrap()));
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The files of the units done in `dir` (a pretraining is done when its checkpoint is there,
/// any other unit when its curve is), with the inode and modification time of each: what a
/// resume must not write again.
fn done_unit_files(dir: &Path) -> (usize, BTreeMap<String, (u64, i64, i64)>) {
    let stems = |sub: &str, ext: &str| -> Vec<String> {
        std::fs::read_dir(dir.join(sub))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == ext))
                    .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let done: Vec<String> = stems("checkpoints", "safetensors").into_iter().chain(stems("units", "json")).collect();
    let mut files = BTreeMap::new();
    for stem in &done {
        for f in [format!("units/{stem}.json"), format!("units/{stem}.jsonl"), format!("checkpoints/{stem}.safetensors")] {
            if let Ok(m) = std::fs::metadata(dir.join(&f)) {
                files.insert(f, (m.ino(), m.mtime(), m.mtime_nsec()));
            }
        }
    }
    (done.len(), files)
}

/// Asserts that every file of `before` ([`done_unit_files`]) is still the very same file.
fn assert_untouched(dir: &Path, before: &BTreeMap<String, (u64, i64, i64)>, when: &str) {
    for (f, st) in before {
        let now = std::fs::metadata(dir.join(f)).ok().map(|m| (m.ino(), m.mtime(), m.mtime_nsec()));
        assert_eq!(now.as_ref(), Some(st), "{when}: {f}, a file of a unit done before, was written again (or removed)");
    }
}

/// Every file under `dir` but the diagnostics (`logs/`, `tensorboard/`), by relative path.
fn result_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.filter_map(|e| e.ok()) {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel == "logs" || rel == "tensorboard" {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Files anywhere under `dir` (logs included) that are temporary: written under a temporary
/// name and not (yet) moved into place.
fn temp_files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.filter_map(|e| e.ok()) {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                walk(&p, out);
            } else if name.ends_with("partial") || name == ".write-test" {
                out.push(p.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

/// Asserts that run directory `b` holds the files of the finished run `a`, byte for byte:
/// [`assert_same_files`], and the report's subdirectories too.
fn assert_same_results(a: &Path, b: &Path) {
    assert_same_files(a, b);
    let (ra, rb) = (result_files(a), result_files(b));
    assert_eq!(ra.keys().collect::<Vec<_>>(), rb.keys().collect::<Vec<_>>(), "{} and {} hold different files", a.display(), b.display());
    for (name, x) in &ra {
        assert!(*x == rb[name], "{name} differs between {} and {}", a.display(), b.display());
    }
}

/// Runs `cmd` and SIGKILLs it `after` its start (kill(2), not a `kill` binary); returns whether
/// the kill landed (false: the run had finished, successfully, before).
fn run_and_kill(mut cmd: Command, after: Duration) -> bool {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(after);
    if let Some(status) = child.try_wait().unwrap() {
        assert!(status.success(), "the run failed before it was killed: {status:?}");
        return false;
    }
    // SAFETY: a plain kill(2) of our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    let status = child.wait().unwrap();
    // It may have finished between try_wait and kill.
    status.signal() == Some(libc::SIGKILL) || {
        assert!(status.success(), "{status:?}");
        false
    }
}

/// Continues run directory `out` after an interruption as a user would: `--resume`, or, where
/// the run never got as far as starting (no directory, or nothing in it but a lock), a fresh
/// run, which `--resume` must refuse with a one-line error. Asserts it succeeds, redoes no unit
/// that was done and starts exactly the others. `kill_after`: kill it instead at that moment,
/// and check that it wrote no file of a done unit either.
fn continue_run(reg: &Path, exp: &Path, out: &Path, kill_after: Option<Duration>) {
    let (done, before) = done_unit_files(out);
    let fresh = metarl::lock::is_empty_but_lock(out);
    if fresh {
        assert_eq!(done, 0);
        let o = run_cmd(reg, exp, out, true).output().unwrap();
        assert_one_line_error(&o, &["nothing to resume"]);
    }
    if let Some(at) = kill_after {
        run_and_kill(run_cmd(reg, exp, out, !fresh), at);
        wait_for_no_workers(out);
        assert_untouched(out, &before, "killed resume");
        return;
    }
    let o = run_cmd(reg, exp, out, !fresh).output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "continuing {} failed:\n{err}", out.display());
    if !fresh {
        assert!(err.contains(&format!("resuming {}: {done} of {UNITS} units already done", out.display())), "{err}");
    }
    let started = err.lines().filter(|l| l.contains(" started: ")).count();
    assert_eq!(started, UNITS - done, "{done} units were done, so {} should run:\n{err}", UNITS - done);
    assert_untouched(out, &before, "resume");
    assert!(temp_files(out).is_empty(), "{:?}", temp_files(out));
}

/// `kill -9` of `metarl run` (the parent; its workers die with it) at moments drawn from a
/// seeded RNG over the length of an uninterrupted run, half of the time once more during the
/// resume: every resume redoes only what was not done, and ends with the uninterrupted run's
/// files, byte for byte.
#[test]
fn kill_9_at_seeded_moments_then_resume_gives_the_uninterrupted_files() {
    const KILLS: usize = 8;
    let t0 = Instant::now();
    let (d, reg) = setup();
    let exp = d.path().join("probe.toml");
    std::fs::write(&exp, EXP).unwrap();
    let whole = d.path().join("whole");
    // The uninterrupted run, timed: its length, and when its last unit was done (the rest is
    // the report).
    let t = Instant::now();
    let mut child = run_cmd(&reg, &exp, &whole, false).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut units_done = Duration::ZERO;
    let mut log = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap())) {
        let line = line.unwrap();
        if line.contains(" done in ") {
            units_done = t.elapsed();
        }
        log += &line;
        log.push('\n');
    }
    let status = child.wait().unwrap();
    let length = t.elapsed();
    assert!(status.success(), "{log}");
    assert!(temp_files(&whole).is_empty(), "{:?}", temp_files(&whole));

    // Half of the kills while units run, half anywhere in the run.
    let mut rng = SeedStream::new(hash_name("probe-kill"));
    let mut landed = 0;
    for i in 0..KILLS {
        let out = d.path().join(format!("killed-{i}"));
        let at = if i % 2 == 0 { units_done } else { length }.mul_f64(rng.uniform());
        let again = rng.uniform() < 0.5;
        let at2 = length.mul_f64(rng.uniform());
        let killed = run_and_kill(run_cmd(&reg, &exp, &out, false), at);
        wait_for_no_workers(&out);
        let (done, _) = done_unit_files(&out);
        landed += killed as usize;
        let mut note = format!(
            "kill {i} at {:.0}% ({at:.2?}): {}, {done} of {UNITS} units done",
            100.0 * at.as_secs_f64() / length.as_secs_f64(),
            if killed { "killed" } else { "already finished" }
        );
        if again {
            continue_run(&reg, &exp, &out, Some(at2));
            note += &format!("; resume killed at {at2:.2?}, {} units done", done_unit_files(&out).0);
        }
        continue_run(&reg, &exp, &out, None);
        assert_same_results(&whole, &out);
        eprintln!("{note}; resumed to the uninterrupted files");
    }
    eprintln!(
        "kill -9 probe: {KILLS} kill points ({landed} landed in a run), run length {length:.2?} (units done at {units_done:.2?}), in {:.1?}",
        t0.elapsed()
    );
    assert!(landed >= KILLS / 2, "only {landed} of {KILLS} kills landed before the run finished");
}

/// `metarl run` whose files may not grow past `limit` bytes (RLIMIT_FSIZE, inherited by the
/// workers), with SIGXFSZ ignored so that a write past it fails with EFBIG, as on a full disk.
fn limited(mut cmd: Command, limit: u64) -> Command {
    // SAFETY: signal() and setrlimit() are async-signal-safe and take no pointers into
    // memory the parent may have locked.
    unsafe {
        cmd.pre_exec(move || {
            if libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            let l = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// A write that fails part-way through a run (a file-size limit, as a full disk): for limits
/// just below the sizes of an uninterrupted run's result files (so that a write fails at the
/// run's start, in a worker, or in the report), `metarl run` exits 1 with one `error:` line
/// naming the file, leaves no temporary file and no partial result (every file it left is the
/// uninterrupted run's), and once the limit is lifted `--resume` (or, where nothing was
/// started, a fresh run) redoes only what was not done and ends with the uninterrupted run's
/// files.
///
/// The read-only variant (a run directory made unwritable mid-run) is not probed: these tests
/// run as root on CI, and root writes into read-only directories.
#[test]
fn a_write_that_fails_mid_run_leaves_no_partial_file_and_resume_completes() {
    let t0 = Instant::now();
    let (d, reg) = setup();
    let exp = d.path().join("probe.toml");
    std::fs::write(&exp, EXP).unwrap();
    let whole = d.path().join("whole");
    let o = run_cmd(&reg, &exp, &whole, false).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = result_files(&whole);
    // Limits just below the sizes of the result files (each makes another set of writes
    // fail): about 12 of them, spread over the distinct sizes, the largest included.
    let mut sizes: Vec<u64> = reference.values().map(|b| b.len() as u64).filter(|&n| n > 0).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut limits: Vec<u64> = sizes.iter().step_by(sizes.len().div_ceil(12)).map(|s| s - 1).collect();
    if limits.last() != sizes.last().map(|s| s - 1).as_ref() {
        limits.push(sizes.last().unwrap() - 1);
    }
    let mut failed_at = BTreeMap::<String, Vec<u64>>::new();
    for (i, &limit) in limits.iter().enumerate() {
        let out = d.path().join(format!("limit-{i}"));
        let o = limited(run_cmd(&reg, &exp, &out, false), limit).output().unwrap();
        let err = stderr(&o);
        assert_one_line_error(&o, &["File too large", out.to_str().unwrap()]);
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
        // The file named: the last path under the run directory in the line.
        let named = line
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ';')
            .filter(|w| w.starts_with(out.to_str().unwrap()) && w.len() > out.to_str().unwrap().len())
            .map(|w| w.trim_end_matches(':').strip_prefix(out.to_str().unwrap()).unwrap().trim_start_matches('/').to_string())
            .find(|w| !w.starts_with("logs/"))
            .unwrap_or_else(|| panic!("no file under {} named in: {line}", out.display()));
        failed_at.entry(named.clone()).or_default().push(limit);
        assert!(temp_files(&out).is_empty(), "limit {limit} ({named}): temporary files left: {:?}", temp_files(&out));
        assert!(!out.join(".lock").exists(), "limit {limit}: the lock was left");
        for (f, bytes) in result_files(&out) {
            let want = reference.get(&f).unwrap_or_else(|| panic!("limit {limit} ({named}): {f} is not a file of the finished run"));
            assert!(bytes == *want, "limit {limit} ({named}): {f} is not the finished run's ({} of {} bytes)", bytes.len(), want.len());
        }
        continue_run(&reg, &exp, &out, None);
        assert_same_results(&whole, &out);
    }
    for (file, limits) in &failed_at {
        eprintln!("write failed at {file} for limits {limits:?}");
    }
    eprintln!("file-size probe: {} limits, {} distinct failing writes, in {:.1?}", limits.len(), failed_at.len(), t0.elapsed());
    // Writes failed in each part of a run: its start, a worker, the report.
    let names: Vec<&String> = failed_at.keys().collect();
    assert!(failed_at.contains_key("config.toml"), "{names:?}");
    assert!(names.iter().any(|f| f.starts_with("units/") || f.starts_with("checkpoints/")), "{names:?}");
    assert!(names.iter().any(|f| !f.contains('/') && *f != "config.toml"), "{names:?}");
}

// --- the parsers under generated and mutated input.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// A runner with a fixed seed and case count that writes no failure files.
fn runner(name: &str, cases: u32) -> TestRunner {
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 2000, ..Config::default() };
    let mut seed = [0u8; 32];
    let mut s = SeedStream::new(hash_name(name));
    for chunk in seed.chunks_mut(8) {
        chunk.copy_from_slice(&s.next().to_le_bytes());
    }
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

/// Pieces of TOML and of both files' vocabulary, for inputs that get past the TOML parser.
const TOKENS: &[&str] = &[
    "[[plugin]]", "[env]", "[algo]", "[pretrain]", "[adapt]", "[[method]]", "[report]", "[env.splits]", "[[env.panel]]",
    "name", "kind", "path", "config", "plugin", "train", "test", "seeds", "num_envs", "threads", "device", "env_steps",
    "eval_every", "eval_episodes", "label", "meta", "demos", "scratch", "leakage", "pool", "held_out", " = ", "=", "\n",
    "\n", " ", "\"", "'", "'''", "\"\"\"", "[", "]", "{", "}", ",", ".", "#", "\\", "\\u", "\\n", "0", "1", "-1", "64",
    "1e999", "nan", "true", "false", "\"env\"", "\"algo\"", "\"meta\"", "\"gridworld\"", "\"gridworld:0..12\"",
    "\"gridworld:12..14\"", "\"mt\"", "\"const\"", "\"x\ny\"", "\"a\\nb\"", "é", "\u{0}", "\u{feff}", "\r\n",
];

/// Values of every TOML type, and some that each key refuses.
const VALUES: &[&str] = &[
    "0", "1", "-1", "3", "64", "1.5", "-0.0", "nan", "inf", "1e300", "true", "false", "\"\"", "\"x\"", "\"a\\nb\"",
    "'''\nmulti\nline'''", "[]", "[0]", "[0, 0]", "[-1, 2]", "[\"a\", 1]", "{}", "{ a = 1 }", "{ size = 0 }",
    "{ size = 16, frame = 48 }", "{ preset = 3 }", "9223372036854775807", "-9223372036854775808",
    "4294967296", "1979-05-27T07:32:00Z", "\"env\"", "\"meta\"", "\"gridworld\"", "\"gridworld:\"", "\"gridworld:0..0\"",
    "\"gridworld:5..2\"", "\"gridworld:0..18446744073709551615\"", "\"gridworld:12..14,12\"", "\"gridworld:99\"",
    "\"gridworld:0..12\"", "\"mt\"", "\"const\"", "\"cuda\"", "\"greedy\"", "\"refuse\"", "\"/nonexistent/lib.so\"",
];

/// Keys and table headers of both files, and some neither knows.
const KEYS: &[&str] = &[
    "name", "kind", "path", "config", "seeds", "num_envs", "threads", "device", "plugin", "train", "test", "leakage",
    "env_steps", "eval_every", "eval_episodes", "eval_envs", "eval_policy", "eval_epsilon", "reset_heads", "scratch",
    "scratch_env_config", "demos", "label", "meta", "algo_config", "pool", "held_out", "reference_scores",
    "bootstrap_resamples", "size", "frame", "bogus", "\"quoted key\"", "a.b",
];
const HEADERS: &[&str] = &[
    "[[plugin]]", "[env]", "[algo]", "[pretrain]", "[adapt]", "[[method]]", "[report]", "[env.splits]", "[[env.panel]]",
    "[env.config]", "[adapt.scratch_env_config]", "[report.reference_scores]", "[bogus]", "[[env]]", "[plugin]",
];

/// One change to a valid file's text. Indices are taken modulo the number of lines (or bytes)
/// when applied.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    ReplaceLine(usize, usize),
    SwapLines(usize, usize),
    /// The value of a `key = value` line becomes `VALUES[v]`.
    Retype(usize, usize),
    InsertKey(usize, usize, usize),
    InsertHeader(usize, usize),
    Truncate(usize),
    /// A byte replaced by one of TOKENS.
    Splice(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let n = 1usize << 16;
    prop_oneof![
        1 => (0..n).prop_map(Mutation::DeleteLine),
        1 => (0..n).prop_map(Mutation::DuplicateLine),
        1 => (0..n, 0..n).prop_map(|(a, b)| Mutation::ReplaceLine(a, b)),
        1 => (0..n, 0..n).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        3 => (0..n, 0..VALUES.len()).prop_map(|(a, v)| Mutation::Retype(a, v)),
        2 => (0..n, 0..KEYS.len(), 0..VALUES.len()).prop_map(|(a, k, v)| Mutation::InsertKey(a, k, v)),
        1 => (0..n, 0..HEADERS.len()).prop_map(|(a, h)| Mutation::InsertHeader(a, h)),
        1 => (0..n).prop_map(Mutation::Truncate),
        1 => (0..n, 0..TOKENS.len()).prop_map(|(a, t)| Mutation::Splice(a, t)),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let at = |i: usize| i % lines.len();
    match *m {
        Mutation::DeleteLine(i) => {
            let i = at(i);
            lines.remove(i);
        }
        Mutation::DuplicateLine(i) => {
            let i = at(i);
            lines.insert(i, lines[i].clone());
        }
        Mutation::ReplaceLine(i, j) => {
            let (i, j) = (at(i), at(j));
            lines[i] = lines[j].clone();
        }
        Mutation::SwapLines(i, j) => {
            let (i, j) = (at(i), at(j));
            lines.swap(i, j);
        }
        Mutation::Retype(i, v) => {
            // The i-th line with a value, counting round.
            let with_value: Vec<usize> = (0..lines.len()).filter(|&k| lines[k].contains('=')).collect();
            if let Some(&k) = with_value.get(i % with_value.len().max(1)) {
                let key = lines[k].split_once('=').unwrap().0.to_string();
                lines[k] = format!("{key}= {}", VALUES[v]);
            }
        }
        Mutation::InsertKey(i, k, v) => {
            let i = at(i);
            lines.insert(i, format!("{} = {}", KEYS[k], VALUES[v]));
        }
        Mutation::InsertHeader(i, h) => {
            let i = at(i);
            lines.insert(i, HEADERS[h].to_string());
        }
        Mutation::Truncate(b) => {
            let text = lines.join("\n");
            let mut b = b % (text.len() + 1);
            while !text.is_char_boundary(b) {
                b -= 1;
            }
            return text[..b].to_string();
        }
        Mutation::Splice(b, t) => {
            let text = lines.join("\n");
            let mut b = b % (text.len() + 1);
            while !text.is_char_boundary(b) {
                b -= 1;
            }
            let end = text[b..].chars().next().map_or(b, |c| b + c.len_utf8());
            return format!("{}{}{}", &text[..b], TOKENS[t], &text[end..]);
        }
    }
    lines.join("\n") + "\n"
}

/// Inputs for a parser whose valid files are `valid`: arbitrary strings, strings of the files'
/// tokens, and valid files with one to four mutations.
fn inputs(valid: Vec<String>) -> impl Strategy<Value = String> {
    let n = valid.len();
    prop_oneof![
        1 => any::<String>(),
        2 => proptest::collection::vec(proptest::sample::select(TOKENS), 0..60).prop_map(|t| t.concat()),
        6 => (0..n, proptest::collection::vec(mutation(), 1..4)).prop_map(move |(i, ms)| {
            ms.iter().fold(valid[i].clone(), |text, m| apply(&text, m))
        }),
    ]
}

/// How many inputs a fuzz run tried: in all, that were valid TOML, that the parser refused.
struct Tried {
    all: usize,
    toml: usize,
    refused: usize,
}

impl std::fmt::Display for Tried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} inputs ({} valid TOML, {} refused, {} accepted)", self.all, self.toml, self.refused, self.all - self.refused)
    }
}

/// Feeds `cases` inputs to `parse`, which must return normally (no panic) with `Ok` or an error
/// that displays as one non-empty line.
fn fuzz(name: &str, cases: u32, valid: Vec<String>, parse: &dyn Fn(&str) -> Result<(), String>) -> Tried {
    let (tried, toml_ok, refused) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
    let result = runner(name, cases).run(&inputs(valid), |text| {
        tried.fetch_add(1, Ordering::Relaxed);
        if text.parse::<toml::Table>().is_ok() {
            toml_ok.fetch_add(1, Ordering::Relaxed);
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&text))) {
            Err(_) => Err(TestCaseError::fail(format!("the parser panicked on {text:?}"))),
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => {
                refused.fetch_add(1, Ordering::Relaxed);
                prop_assert!(!msg.trim().is_empty(), "an empty error for {:?}", text);
                prop_assert!(!msg.contains('\n'), "a multi-line error for {:?}:\n{}", text, msg);
                Ok(())
            }
        }
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    Tried { all: tried.into_inner(), toml: toml_ok.into_inner(), refused: refused.into_inner() }
}

/// `Registry::parse` and `Plan::resolve` (which loads and probes the plugins an experiment
/// names) under arbitrary strings, token soup and mutations of valid files: each input is
/// accepted or refused in one non-empty line, never with a panic.
#[test]
fn the_parsers_refuse_generated_and_mutated_input_in_one_line_without_panicking() {
    let (d, reg) = setup();
    let t0 = Instant::now();
    let reg_text = std::fs::read_to_string(&reg).unwrap();
    let workspace_registry = std::fs::read_to_string(root().join("registry.toml")).unwrap();
    let registries = vec![
        reg_text.clone(),
        workspace_registry,
        "[[plugin]]\nname = \"gridworld\"\nkind = \"env\"\npath = \"lib/libmetarl_env_gridworld.so\"\nconfig = { size = 4, frame = 16 }\n\n[[plugin]]\nname = \"mt-2\"\nkind = \"meta\"\npath = \"libmetarl_meta_mt.so\"\n[plugin.config]\nouter_lr = 0.5\n".to_string(),
    ];
    let reg_path = d.path().join("registry.toml");
    for text in &registries {
        Registry::parse(&reg_path, text).unwrap_or_else(|e| panic!("a valid registry is refused: {e}"));
    }
    let registry_inputs = fuzz("probe-fuzz-registry", 50_000, registries, &|text| {
        Registry::parse(&reg_path, text).map(|_| ()).map_err(|e| e.to_string())
    });
    let t_reg = t0.elapsed();

    let registry = Registry::load(&reg).unwrap();
    let exp_path = d.path().join("exp.toml");
    let experiments = vec![
        EXP.to_string(),
        r#"name = "rich"
seeds = [3, 1]
num_envs = 4
threads = 1
device = "cpu"
[env]
plugin = "gridworld"
test = "gridworld:12..14"
config = { size = 4, frame = 16, shared_goal_colour = true }
leakage = "refuse"
[[env.panel]]
label = "few"
train = "gridworld:0..4"
[[env.panel]]
label = "many"
train = "gridworld:0..12"
[algo]
plugin = "const"
config = { update_adds = 0.5 }
[pretrain]
env_steps = 400
[adapt]
env_steps = 192
eval_every = 64
eval_episodes = 4
eval_envs = 4
eval_policy = "greedy"
eval_epsilon = 0.05
reset_heads = true
scratch = true
demos = [0]
[[method]]
label = "MT"
meta = "mt"
[[method]]
label = "MT again"
meta = "mt"
algo_config = { update_adds = 1.0 }
[report]
bootstrap_resamples = 100
reference_scores = { "12" = [0.0, 1.0], "13" = [0.0, 2.0] }
"#
        .to_string(),
        r#"seeds = [0]
num_envs = 4
threads = 1
[env]
plugin = "gridworld"
[env.splits]
pool = "gridworld:0..4"
held_out = "gridworld:0,2"
label = "loo"
[algo]
plugin = "const"
[pretrain]
env_steps = 200
[adapt]
env_steps = 64
eval_every = 32
eval_episodes = 4
scratch = false
[[method]]
label = "MT"
meta = "mt"
"#
        .to_string(),
    ];
    for text in &experiments {
        Plan::resolve(&exp_path, text, &registry).unwrap_or_else(|e| panic!("a valid experiment is refused: {e:#}\n{text}"));
    }
    let experiment_inputs = fuzz("probe-fuzz-experiment", 50_000, experiments, &|text| {
        Plan::resolve(&exp_path, text, &registry).map(|_| ()).map_err(|e| format!("{e:#}"))
    });
    eprintln!("parser fuzz: registry {registry_inputs} in {t_reg:.1?}; experiment {experiment_inputs} in {:.1?}", t0.elapsed() - t_reg);
}
