//! Build script: finds libtorch and bakes its `lib/` into the rpath, so neither the plugin nor
//! its tests need `LD_LIBRARY_PATH`.
//!
//! libtorch comes from `$LIBTORCH` (as for torch-sys), else from the repository's `.venv`.

use std::env;
use std::path::{Path, PathBuf};

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

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let libtorch = match env::var_os("LIBTORCH") {
        Some(p) => PathBuf::from(p),
        None => venv_torch(&manifest_dir).unwrap_or_else(|| {
            panic!("libtorch not found: set LIBTORCH to a libtorch 2.13.0 (e.g. <venv>/lib/python3.11/site-packages/torch) or run .ci/setup")
        }),
    };
    let libtorch = libtorch.canonicalize().unwrap_or(libtorch);
    let lib_dir = libtorch.join("lib");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    // Keep libtorch_cuda even though nothing references it directly, so `device = "cuda"`
    // works on GPU machines (the linker's --as-needed would drop it).
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib_dir.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
