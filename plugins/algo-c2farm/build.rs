//! Build script: bakes libtorch's `lib/` into the rpath (`metarl-tch-build`), so neither the
//! plugin nor its tests need `LD_LIBRARY_PATH`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    metarl_tch_build::link_libtorch(&metarl_tch_build::libtorch());
}
