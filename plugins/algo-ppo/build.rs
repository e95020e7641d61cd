//! Build script: bakes libtorch's `lib/` into the rpath (`metarl-tch-build`, so neither the
//! plugin nor its tests need `LD_LIBRARY_PATH`) and compiles the bf16 autocast shim
//! (`csrc/autocast.cpp`).

fn main() {
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    println!("cargo:rerun-if-changed=build.rs");
    let libtorch = metarl_tch_build::libtorch();
    metarl_tch_build::link_libtorch(&libtorch);

    let include = libtorch.join("include");
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

    // The shim calls into libtorch_cpu/libc10; list them after it (torch-sys links them too,
    // always as shared libraries: several static copies in one process break libtorch).
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}
