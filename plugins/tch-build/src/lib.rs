//! What the build scripts of metarl's libtorch plugins (`algo-ppo`, `algo-rainbow`,
//! `meta-pearl`) share: finding libtorch and baking its `lib/` into the plugin's rpath, so
//! neither the plugin nor its tests need `LD_LIBRARY_PATH`.
//!
//! libtorch comes from `$LIBTORCH` (as for torch-sys), else from the repository's `.venv`
//! (what `.ci/setup` installs). Used as a `[build-dependencies]` entry; it has no
//! dependencies of its own, so it adds nothing to a build's critical path.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

/// `<repo>/.venv/lib/python3*/site-packages/torch`, for a crate two levels below the
/// repository root.
fn venv_torch(manifest_dir: &Path) -> Option<PathBuf> {
    let lib = manifest_dir.join("../../.venv/lib");
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(&lib)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("python3")))
        .collect();
    pythons.sort();
    pythons.into_iter().map(|p| p.join("site-packages/torch")).find(|t| t.join("include").is_dir())
}

/// The libtorch directory (holding `include/` and `lib/`). Panics with what to do when there
/// is none: a build script's way of failing.
pub fn libtorch() -> PathBuf {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = match std::env::var_os("LIBTORCH") {
        Some(p) => PathBuf::from(p),
        None => venv_torch(&manifest_dir).unwrap_or_else(|| {
            panic!("libtorch not found: set LIBTORCH to a libtorch 2.13.0 (e.g. <venv>/lib/python3.11/site-packages/torch) or run .ci/setup")
        }),
    };
    dir.canonicalize().unwrap_or(dir)
}

/// Bakes `libtorch/lib` into the rpath of everything the crate links (the cdylib, its tests,
/// examples and benches), and keeps `libtorch_cuda` linked where the libtorch build has it:
/// nothing references it directly, so the linker's `--as-needed` would drop it and leave CUDA
/// invisible to libtorch (`device = "cuda"` would fail on GPU machines). On CPU-only builds
/// there is no such library and nothing changes.
pub fn link_libtorch(libtorch: &Path) {
    let lib_dir = libtorch.join("lib");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
