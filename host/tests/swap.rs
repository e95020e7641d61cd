//! Swapping plugins without recompiling: two different builds of a plugin the host crate does
//! not depend on are used, one after the other and side by side, by the same host binary.

mod common;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use common::*;

fn digest(path: &std::path::Path) -> u64 {
    let mut h = DefaultHasher::new();
    std::fs::read(path).unwrap().hash(&mut h);
    h.finish()
}

fn build_flavor(flavor: &str, into: &std::path::Path) -> std::path::PathBuf {
    cargo(&["build", "-q", "-p", "metarl-fixture-env"], &[("METARL_FIXTURE_FLAVOR", flavor)]);
    let dst = into.join(format!("libfixture_{flavor}.so"));
    std::fs::copy(out_dir().join("libmetarl_fixture_env.so"), &dst).unwrap();
    dst
}

#[test]
fn a_rebuilt_plugin_is_picked_up_by_the_unchanged_host() {
    // The host crate has no dependency on the fixture: swapping is purely a registry change.
    let manifest = std::fs::read_to_string(root().join("host/Cargo.toml")).unwrap();
    assert!(!manifest.contains("fixture"), "host must not depend on the plugin it swaps");

    let host_before = digest(&bin());
    let dir = tempfile::tempdir().unwrap();
    let a = build_flavor("alpha", dir.path());
    let b = build_flavor("beta", dir.path());
    assert_ne!(digest(&a), digest(&b), "the two builds differ");

    let reg = dir.path().join("registry.toml");
    std::fs::write(&reg, entry("fx", "env", &a)).unwrap();
    let o = metarl(&reg, &["plugins", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("test fixture, flavor alpha"), "{}", stdout(&o));

    std::fs::write(&reg, entry("fx", "env", &b)).unwrap();
    let o = metarl(&reg, &["plugins", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("test fixture, flavor beta"), "{}", stdout(&o));

    // Both builds side by side in one process: each file gets its own library header.
    std::fs::write(&reg, format!("{}\n{}", entry("fx-a", "env", &a), entry("fx-b", "env", &b))).unwrap();
    let o = metarl(&reg, &["plugins", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let row = |name: &str| out.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_string();
    assert!(row("fx-a ").contains("flavor alpha") && row("fx-b ").contains("flavor beta"), "{out}");
    let o = metarl(&reg, &["env", "bench", "fx-b", "--task", "count", "--envs", "3", "--steps", "30"]);
    assert!(o.status.success(), "{}", stderr(&o));

    assert_eq!(digest(&bin()), host_before, "the host binary was not rebuilt");
}
