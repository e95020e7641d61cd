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
