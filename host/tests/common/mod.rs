//! Helpers shared by the host's integration tests: where the built plugins are, how to build
//! the ones a test needs, and how to run the `metarl` binary against a registry.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// Serialises cargo invocations made by tests of one binary.
static CARGO: Mutex<()> = Mutex::new(());

/// The `metarl` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_metarl"))
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `target/<profile>`, where the binary and the plugin libraries are.
pub fn out_dir() -> PathBuf {
    bin().parent().unwrap().to_path_buf()
}

/// The target directory (`target/`).
pub fn target_dir() -> PathBuf {
    out_dir().parent().unwrap().to_path_buf()
}

pub fn is_release() -> bool {
    out_dir().file_name().is_some_and(|n| n == "release")
}

/// Runs cargo with the test's profile; panics with cargo's output on failure.
pub fn cargo(args: &[&str], envs: &[(&str, &str)]) {
    let mut args = args.to_vec();
    if is_release() {
        args.push("--release");
    }
    cargo_dev(&args, envs)
}

/// Runs cargo as given (dev profile unless `args` say otherwise).
pub fn cargo_dev(args: &[&str], envs: &[(&str, &str)]) {
    let _lock = CARGO.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(root()).env("CARGO_TARGET_DIR", target_dir());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("cargo runs");
    assert!(out.status.success(), "cargo {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Path of the shared library of crate `package` (built if missing or stale).
pub fn plugin(package: &str) -> PathBuf {
    cargo(&["build", "-q", "-p", package], &[]);
    out_dir().join(format!("lib{}.so", package.replace('-', "_")))
}

/// A registry entry line set.
pub fn entry(name: &str, kind: &str, path: &Path) -> String {
    format!("[[plugin]]\nname = \"{name}\"\nkind = \"{kind}\"\npath = \"{}\"\n", path.display())
}

/// A registry of `(name, kind, package)` entries in a fresh temp dir, each plugin built if
/// missing or stale.
pub fn registry_of(entries: &[(&str, &str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let text: Vec<String> = entries.iter().map(|(name, kind, package)| entry(name, kind, &plugin(package))).collect();
    registry(&text.join("\n"))
}

/// Writes `text` as `registry.toml` in a fresh temp dir.
pub fn registry(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Runs `metarl --registry REG ARGS...`.
pub fn metarl(reg: &Path, args: &[&str]) -> Output {
    metarl_env(reg, args, &[])
}

/// Runs `metarl --registry REG ARGS...` with extra environment variables.
pub fn metarl_env(reg: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("--registry").arg(reg).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("metarl runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the command failed cleanly (exit 1, not a signal) with exactly one `error:` line
/// on stderr containing every one of `needles`.
pub fn assert_one_line_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "expected exit 1, got {:?}; stderr:\n{err}", o.status);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{err}");
    for n in needles {
        assert!(lines[0].contains(n), "error line lacks {n:?}:\n{}", lines[0]);
    }
}

/// A meta request with the tests' thread count (one: tests run side by side on two cores).
pub fn meta_request(seed: u64, config: &str) -> metarl_plugin_api::meta::MetaRequest {
    metarl_plugin_api::meta::MetaRequest { seed, threads: 1, device: "cpu".into(), config: config.into() }
}

/// Every file of a run directory (top level, `checkpoints/`, `units/`), sorted by name.
pub fn run_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["", "checkpoints", "units"] {
        let mut names: Vec<PathBuf> =
            std::fs::read_dir(dir.join(sub)).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
        names.sort();
        for p in names {
            out.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

/// Runs `exp` into `a` uninterrupted; into `b`, kills it (SIGKILL) once its first checkpoint
/// is on disk and the next unit is under way, then resumes it; and asserts both directories
/// hold the same files, byte for byte.
pub fn assert_kill_9_resume_is_exact(reg: &Path, exp: &Path, a: &Path, b: &Path) -> Output {
    assert_kill_9_resume_is_exact_with(reg, exp, (a, &[]), (b, &[]))
}

/// [`assert_kill_9_resume_is_exact`] with extra `metarl run` arguments for each directory
/// (`--jobs N`: the killed run and its resume get `b`'s). Returns the resume's output.
pub fn assert_kill_9_resume_is_exact_with(reg: &Path, exp: &Path, (a, args_a): (&Path, &[&str]), (b, args_b): (&Path, &[&str])) -> Output {
    use std::time::{Duration, Instant};
    let run_args = |dir: &Path, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["--registry", reg.to_str().unwrap(), "run", exp.to_str().unwrap(), "--out", dir.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let o = Command::new(bin()).args(run_args(a, args_a)).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    let mut child = Command::new(bin())
        .args(run_args(b, args_b))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first_done = || {
        std::fs::read_dir(b.join("checkpoints"))
            .is_ok_and(|d| d.filter_map(|e| e.ok()).any(|e| e.path().extension().is_some_and(|x| x == "safetensors")))
    };
    let start = Instant::now();
    while !first_done() {
        assert!(start.elapsed() < Duration::from_secs(120), "the first unit never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was interrupted, not finished");
    assert!(!b.join("summary.csv").exists());

    let mut resume = run_args(b, args_b);
    resume.push("--resume".into());
    let o = Command::new(bin()).args(resume).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("units already done"), "{}", stderr(&o));
    assert_same_files(a, b);
    o
}

/// Asserts that run directories `a` and `b` hold the same files ([`run_files`]), byte for byte.
pub fn assert_same_files(a: &Path, b: &Path) {
    let (fa, fb) = (run_files(a), run_files(b));
    assert_eq!(fa.iter().map(|f| &f.0).collect::<Vec<_>>(), fb.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{name} differs between {} and {}", a.display(), b.display());
    }
}
