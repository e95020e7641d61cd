//! Build script: finds libtorch, bakes its `lib/` into the rpath (so neither the plugin nor its
//! tests need `LD_LIBRARY_PATH`) and compiles the bf16 autocast shim (`csrc/autocast.cpp`).
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
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
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
    let include = libtorch.join("include");

    // Run-time lookup of libtorch_cpu.so & co. for the cdylib, tests, examples and benches.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());

    cc::Build::new()
        .cpp(true)
        .file("csrc/autocast.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("GLOG_USE_GLOG_EXPORT", None)
        .warnings(false)
        .extra_warnings(false)
        .flag_if_supported("-w")
        .compile("metarl_ppo_autocast");

    // With the linker's default --as-needed, nothing references libtorch_cuda directly and it
    // would be dropped, leaving CUDA invisible to libtorch (`device = "cuda"` would fail on GPU
    // machines). Keep it when the libtorch build has it; on CPU-only machines it loads unused.
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }

    // The shim calls into libtorch_cpu/libc10; list them after it (torch-sys links them too,
    // always as shared libraries: several static copies in one process break libtorch).
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}
