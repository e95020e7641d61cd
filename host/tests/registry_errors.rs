//! Bad registries: each gets one clear line naming the file (and line/column, entry), exit 1.

mod common;
use common::*;

#[test]
fn missing_registry_file() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("nope.toml");
    let o = metarl(&reg, &["plugins", "list"]);
    assert_one_line_error(&o, &["registry", "nope.toml", "cannot read"]);
}

#[test]
fn malformed_toml_reports_line_and_column() {
    let (_d, reg) = registry("[[plugin]]\nname = \"a\"\nkind = \"env\"\npath = \"a.so\n");
    let o = metarl(&reg, &["plugins", "check"]);
    assert_one_line_error(&o, &["registry.toml:4:"]);
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let (_d, reg) = registry("[[plugin]]\nname = \"a\"\nkind = \"env\"\npath = \"a.so\"\nlibrary = \"x\"\n");
    let o = metarl(&reg, &["plugins", "list"]);
    assert_one_line_error(&o, &["registry.toml:5:", "unknown field `library`"]);
}

#[test]
fn unknown_top_level_key() {
    let (_d, reg) = registry("[[plugins]]\nname = \"a\"\n");
    let o = metarl(&reg, &["plugins", "list"]);
    assert_one_line_error(&o, &["registry.toml:1:", "unknown field `plugins`"]);
}

#[test]
fn duplicate_names_point_at_both_entries() {
    let text = format!("{}\n{}", entry("grid", "env", "a.so".as_ref()), entry("grid", "algo", "b.so".as_ref()));
    let (_d, reg) = registry(&text);
    let o = metarl(&reg, &["plugins", "list"]);
    assert_one_line_error(&o, &["registry.toml:7:", "duplicate plugin name 'grid' (first defined at line 1)"]);
}

#[test]
fn unknown_kind_lists_the_valid_ones() {
    let (_d, reg) = registry(&entry("x", "learner", "x.so".as_ref()));
    let o = metarl(&reg, &["plugins", "check"]);
    assert_one_line_error(&o, &["registry.toml:3:", "plugin 'x': unknown kind 'learner' (expected env, algo or meta)"]);
}

#[test]
fn missing_key_is_reported() {
    let (_d, reg) = registry("[[plugin]]\nname = \"a\"\nkind = \"env\"\n");
    let o = metarl(&reg, &["plugins", "list"]);
    assert_one_line_error(&o, &["registry.toml:1:", "missing field `path`"]);
}
