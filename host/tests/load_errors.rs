//! Libraries that cannot be used: each is reported in one line naming the entry and file,
//! and `plugins check` exits 1 without aborting.

mod common;
use std::path::{Path, PathBuf};

use common::*;
use metarl_plugin_api::export::API_VERSION;

fn check_fails(reg_text: &str, needles: &[&str]) {
    let (_d, reg) = registry(reg_text);
    let o = metarl(&reg, &["plugins", "check"]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    let fail: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(fail.len(), 1, "expected one FAIL line:\n{out}");
    for n in needles {
        assert!(fail[0].contains(n), "FAIL line lacks {n:?}:\n{}", fail[0]);
    }
    assert!(out.contains("0 plugins ok, 1 failed"), "{out}");
}

#[test]
fn missing_library_file() {
    check_fails(&entry("ghost", "env", Path::new("lib/ghost.so")), &["plugin 'ghost'", "ghost.so", "library file not found"]);
}

#[test]
fn a_text_file_is_not_a_library() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, "not an ELF file").unwrap();
    check_fails(&entry("fake", "env", &fake), &["plugin 'fake'", "libfake.so", "cannot open the library"]);
}

fn system_library() -> PathBuf {
    // Any shared library that is certainly not a metarl plugin.
    ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("a system shared library")
}

#[test]
fn a_system_library_is_not_a_plugin() {
    let lib = system_library();
    check_fails(&entry("libz", "env", &lib), &["plugin 'libz'", &lib.display().to_string(), "not a metarl plugin"]);
}

#[test]
fn kind_mismatch_names_both_kinds() {
    let lib = plugin("metarl-fixture-env");
    check_fails(&entry("fx", "algo", &lib), &["plugin 'fx'", "the library is a env plugin but the registry says algo"]);
}

#[test]
fn a_panic_during_initialisation_is_caught() {
    let lib = plugin("metarl-fixture-env");
    let (_d, reg) = registry(&entry("fx", "env", &lib));
    let o = metarl_env(&reg, &["plugins", "check"], &[("METARL_FIXTURE_PANIC", "descriptor")]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    assert!(stdout(&o).contains("FAIL  plugin 'fx'"), "{}", stdout(&o));
    assert!(stdout(&o).contains("initialisation failed: panicked: in init: fixture panics in descriptor as asked"), "{}", stdout(&o));
}

/// Copies plugin-api (with the kit) and the env fixture into a scratch workspace kept under
/// target/, applies `edit_api` to the copy of plugin-api, and adds `extra` members.
fn skew_workspace(tag: &str, edit_api: impl Fn(&Path), extra: &[(&str, &str, &str)]) -> PathBuf {
    skew_workspace_of(tag, "fixture-env", edit_api, extra)
}

/// [`skew_workspace`] with another fixture plugin (a directory of `host/tests/fixtures`).
fn skew_workspace_of(tag: &str, fixture: &str, edit_api: impl Fn(&Path), extra: &[(&str, &str, &str)]) -> PathBuf {
    let root = root();
    let ws = target_dir().join("test-skew").join(tag);
    let _ = std::fs::remove_dir_all(ws.join("plugin-api"));
    let _ = std::fs::remove_dir_all(ws.join("fixture/src"));
    std::fs::create_dir_all(ws.join("fixture")).unwrap();
    copy_dir(&root.join("plugin-api"), &ws.join("plugin-api"));
    copy_dir(&root.join(format!("host/tests/fixtures/{fixture}/src")), &ws.join("fixture/src"));
    let main_manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let shared = &main_manifest[main_manifest.find("[workspace.package]").unwrap()..];
    let mut members = vec!["\"plugin-api\"".to_string(), "\"plugin-api/kit\"".to_string(), "\"fixture\"".to_string()];
    for (dir, manifest, main) in extra {
        std::fs::create_dir_all(ws.join(dir).join("src")).unwrap();
        std::fs::write(ws.join(dir).join("Cargo.toml"), manifest).unwrap();
        std::fs::write(ws.join(dir).join("src/main.rs"), main).unwrap();
        members.push(format!("\"{dir}\""));
    }
    std::fs::write(
        ws.join("Cargo.toml"),
        format!("[workspace]\nresolver = \"2\"\nmembers = [{}]\n\n{shared}", members.join(", ")),
    )
    .unwrap();
    let fixture_manifest = std::fs::read_to_string(root.join(format!("host/tests/fixtures/{fixture}/Cargo.toml")))
        .unwrap()
        .replace(&format!("name = \"metarl-{fixture}\""), &format!("name = \"metarl-fixture-skew-{tag}\""));
    std::fs::write(ws.join("fixture/Cargo.toml"), fixture_manifest).unwrap();
    std::fs::copy(root.join("Cargo.lock"), ws.join("Cargo.lock")).unwrap();
    edit_api(&ws.join("plugin-api"));
    ws
}

/// Builds `package` of a skew workspace in its own target dir: cargo hashes path packages by
/// their workspace-relative path, so in the main target dir the modified plugin-api would
/// overwrite the real one. The dev profile compiles fastest; a release host loads a dev-built
/// plugin just the same.
fn build_in(ws: &Path, package: &str) -> PathBuf {
    let manifest = ws.join("Cargo.toml");
    let skew_target = target_dir().join("test-skew").join("target");
    cargo_dev(
        &["build", "-q", "-p", package, "--manifest-path", manifest.to_str().unwrap(), "--target-dir", skew_target.to_str().unwrap()],
        &[],
    );
    skew_target.join("debug")
}

/// Builds the env fixture against a modified copy of plugin-api.
fn build_skewed(tag: &str, edit_api: impl Fn(&Path)) -> PathBuf {
    let ws = skew_workspace(tag, edit_api, &[]);
    build_in(&ws, &format!("metarl-fixture-skew-{tag}")).join(format!("libmetarl_fixture_skew_{tag}.so"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_plugin_built_against_plugin_api_0_1_is_refused() {
    let lib = build_skewed("version", |api| edit(&api.join("Cargo.toml"), &format!("version = \"{API_VERSION}\""), "version = \"0.1.0\""));
    check_fails(
        &entry("old", "env", &lib),
        &[
            "plugin 'old'",
            "libmetarl_fixture_skew_version.so",
            &format!("built against metarl-plugin-api 0.1.0, incompatible with this host's {API_VERSION}"),
        ],
    );
}

#[test]
fn a_plugin_with_a_different_abi_layout_is_refused() {
    // Same version number, but a field of a boundary type changed width.
    let lib = build_skewed("layout", |api| {
        edit(&api.join("src/types.rs"), "    pub value: f64,\n}", "    pub value: f32,\n}");
        edit(&api.join("src/types.rs"), "Self { name: name.into(), value }", "Self { name: name.into(), value: value as f32 }");
    });
    check_fails(
        &entry("skewed", "env", &lib),
        &[
            "plugin 'skewed'",
            "libmetarl_fixture_skew_layout.so",
            &format!("ABI layout differs from this host's metarl-plugin-api {API_VERSION}: mismatched type (expected f64, found f32)"),
        ],
    );
}

/// A host program built against a later 0.2.x plugin-api (a made-up 0.2.2) that appended a
/// root-module field and an env method after those of 0.2.1.
const NEWER_HOST: &str = r#"
use abi_stable::std_types::RStr;
use metarl_plugin_api::env::EnvRequest;
use metarl_plugin_api::export::HostLogger;

extern "C" fn log(_: u8, _: RStr<'_>, _: RStr<'_>) {}

fn main() {
    let path = std::env::args().nth(1).expect("plugin path");
    // As the metarl host opens a plugin (the kit's loader, built against this newer API).
    let root = metarl_plugin_kit::load::root_module(&path).unwrap();
    let d = (root.init())(HostLogger { max_level: 0, log }).into_result().unwrap();
    println!("loaded {} {}", d.name, d.version);
    println!("appended field: {:?}", root.api_patch());
    println!("0.2.1 field: {}", root.task_sets().is_some());
    let req = EnvRequest { family: "count".into(), tasks: vec![0].into(), num_envs: 2, trials: 1, seed: 0, threads: 1, config: "".into() };
    let mut env = (root.new_env())(&req).into_result().unwrap();
    println!("spec: {}", env.spec().into_result().unwrap().obs);
    println!("appended method: {}", env.describe().into_result().unwrap());
}
"#;

#[test]
fn a_newer_0_2_host_loads_a_plugin_built_against_this_api() {
    // The plugin: the real env fixture, built against this workspace's plugin-api.
    let lib = plugin("metarl-fixture-env");
    // The host: built against a copy of plugin-api that grew after this version's last field.
    let manifest = "[package]\nname = \"newer-host\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\
                    metarl-plugin-api = { path = \"../plugin-api\" }\nmetarl-plugin-kit = { path = \"../plugin-api/kit\" }\nabi_stable = \"0.11.3\"\n";
    let ws = skew_workspace(
        "appended",
        |api| {
            edit(&api.join("Cargo.toml"), &format!("version = \"{API_VERSION}\""), "version = \"0.2.99\"");
            edit(
                &api.join("src/env.rs"),
                "    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> PResult<RVec<Trajectory>>;\n}",
                "    fn demos(&mut self, task: u64, episodes: u32, seed: u64) -> PResult<RVec<Trajectory>>;\n    \
                 /// Added in 0.2.99.\n    fn describe(&self) -> PResult<RString> {\n        \
                 abi_stable::std_types::ROk(RString::from(\"absent: the plugin predates it\"))\n    }\n}",
            );
            edit(
                &api.join("src/export.rs"),
                "    pub reference_scores: extern \"C\" fn() -> PResult<RVec<ReferenceScores>>,\n}",
                "    pub reference_scores: extern \"C\" fn() -> PResult<RVec<ReferenceScores>>,\n    /// Added in 0.2.99.\n    pub api_patch: u32,\n}",
            );
            edit(
                &api.join("src/export.rs"),
                "            reference_scores: reference_scores_impl::<P>,\n",
                "            reference_scores: reference_scores_impl::<P>,\n            api_patch: 1,\n",
            );
        },
        &[("newer-host", manifest, NEWER_HOST)],
    );
    let bin = build_in(&ws, "newer-host").join("newer-host");
    let o = std::process::Command::new(&bin).arg(&lib).output().unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(out.contains("loaded fixture-env 0.2.0"), "{out}");
    assert!(out.contains("appended field: None"), "an older plugin's root module lacks the new field: {out}");
    assert!(out.contains("0.2.1 field: true"), "the plugin's own fields are all there: {out}");
    assert!(out.contains("spec: vector: vector f32 [2]"), "{out}");
    assert!(out.contains("appended method: absent: the plugin predates it"), "an older env answers with the default: {out}");
}

#[test]
fn this_host_loads_a_plugin_built_against_0_2_0_which_offers_no_task_sets() {
    // plugin-api as it was in 0.2.0: no `task_sets` root field (added in 0.2.1).
    let lib = build_skewed("v0_2_0", |api| {
        edit(&api.join("Cargo.toml"), &format!("version = \"{API_VERSION}\""), "version = \"0.2.0\"");
        let export = api.join("src/export.rs");
        let text = std::fs::read_to_string(&export).unwrap();
        // Both appended fields go: 0.2.1's task sets and 0.2.2's reference scores.
        let start = text.find("    /// Added in 0.2.1: the named task sets").expect("the task_sets field");
        let tail = "PResult<RVec<ReferenceScores>>,\n";
        let end = start + text[start..].find(tail).expect("the reference_scores field") + tail.len();
        std::fs::write(&export, format!("{}{}", &text[..start], &text[end..])).unwrap();
        edit(&export, "            task_sets: task_sets_impl::<P>,\n", "");
        edit(&export, "            reference_scores: reference_scores_impl::<P>,\n", "");
    });
    let (_d, reg) = registry(&entry("old", "env", &lib));
    let o = metarl(&reg, &["plugins", "list"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(out.contains("families: count (1 tasks), parts (4 tasks)"), "{out}");
    assert!(!out.contains("task sets:"), "a 0.2.0 plugin offers none: {out}");
    assert!(!out.contains("references:"), "nor reference scores: {out}");
    // Selectors without sets work as before; a set name is an unknown task.
    let o = metarl(&reg, &["env", "bench", "old", "--task", "parts:1,3", "--envs", "2", "--steps", "50"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = metarl(&reg, &["env", "bench", "old", "--task", "parts:odd", "--envs", "2", "--steps", "50"]);
    assert!(stderr(&o).contains("'odd' is not an index; tasks of 'parts' are numbered 0..4\n"), "{}", stderr(&o));
}

#[test]
fn a_plugin_of_the_previous_patch_release_does_not_break_the_up_to_date_plugins_loaded_after_it() {
    // plugin-api as it was in 0.2.3: `HostServicesFfi` without 0.2.4's checkpoint methods.
    // abi_stable's process-wide layout checks used to remember the older vtable, and every
    // up-to-date plugin loaded after it was then refused ("too many fields"), under its own
    // name.
    let lib = build_skewed("v0_2_3", |api| {
        edit(&api.join("Cargo.toml"), &format!("version = \"{API_VERSION}\""), "version = \"0.2.3\"");
        let meta = api.join("src/meta.rs");
        let text = std::fs::read_to_string(&meta).unwrap();
        let start = text.find("    /// Added in 0.2.4: whether the host wants").expect("checkpoint_due");
        let tail = "(plugin-api < 0.2.4)\"))\n    }\n";
        let end = start + text[start..].find(tail).expect("checkpoint") + tail.len();
        std::fs::write(&meta, format!("{}{}", &text[..start], &text[end..])).unwrap();
        // The kit of 0.2.3 took no checkpoints.
        let driver = api.join("kit/src/driver.rs");
        edit(&driver, "    if !ctx.host.checkpoint_due() {", "    if true {");
        edit(&driver, "    ffi(\"checkpoint\", ctx.host.checkpoint(ctx.algo, state.as_slice().into()))?;", "    drop(state);");
    });
    let text = [entry("old", "env", &lib), entry("mt", "meta", &plugin("metarl-meta-mt")), entry("fx-algo", "algo", &plugin("metarl-fixture-algo"))]
        .join("\n");
    let (_d, reg) = registry(&text);
    let o = metarl(&reg, &["plugins", "check"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("3 plugins ok, 0 failed"), "{}", stdout(&o));
}

#[test]
fn an_algo_built_against_0_2_4_starts_adaptation_with_its_load() {
    // plugin-api as it was in 0.2.4: `AlgoFfi` without 0.2.5's `load_pretrained`. The host
    // then gets the default body, the plugin's `load`, which is what hosts before 0.2.5 called.
    let ws = skew_workspace_of(
        "algo_v0_2_4",
        "fixture-algo",
        |api| {
            edit(&api.join("Cargo.toml"), &format!("version = \"{API_VERSION}\""), "version = \"0.2.4\"");
            let algo = api.join("src/algo.rs");
            let text = std::fs::read_to_string(&algo).unwrap();
            let start = text.find("    /// Added in 0.2.5: see [`Algo::load_pretrained`]").expect("the FFI method");
            let tail = "        self.load(bytes)\n    }\n";
            let end = start + text[start..].find(tail).expect("its body") + tail.len();
            std::fs::write(&algo, format!("{}{}", &text[..start], &text[end..])).unwrap();
            edit(
                &algo,
                "    fn load_pretrained(&mut self, bytes: RSlice<'_, u8>) -> PResult<()> {\n        let inner = &mut self.inner;\n        \
                 guard(&self.poisoned, \"load_pretrained\", || inner.load_pretrained(bytes.as_slice()))\n    }\n",
                "",
            );
        },
        &[],
    );
    let lib = build_in(&ws, "metarl-fixture-skew-algo_v0_2_4").join("libmetarl_fixture_skew_algo_v0_2_4.so");
    let text = [entry("gridworld", "env", &plugin("metarl-env-gridworld")), entry("mt", "meta", &plugin("metarl-meta-mt")), entry("old", "algo", &lib)]
        .join("\n");
    let (d, reg) = registry(&text);
    let exp = d.path().join("exp.toml");
    std::fs::write(
        &exp,
        "seeds = [0]\nnum_envs = 4\n[env]\nplugin = \"gridworld\"\ntrain = \"gridworld:0..12\"\ntest = \"gridworld:12\"\n\
         [algo]\nplugin = \"old\"\nconfig = { update_adds = 1.0 }\n[pretrain]\nenv_steps = 400\n\
         [adapt]\nenv_steps = 64\neval_every = 64\neval_episodes = 4\n[[method]]\nlabel = \"MT\"\nmeta = \"mt\"\n",
    )
    .unwrap();
    let out = d.path().join("out");
    let o = metarl(&reg, &["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The fixture adds 1 to each parameter per update: the adaptation's first update starts
    // from the pretrained value, so its `load` ran.
    let param0 = |unit: &str| -> Vec<f64> {
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["unit"] == unit)
            .filter_map(|v| v["param0"].as_f64())
            .collect()
    };
    let pretrained = *param0("pretrain/12 train tasks/MT/seed 0").last().unwrap();
    assert!(pretrained >= 10.0, "{pretrained}");
    assert_eq!(param0("adapt/12 train tasks/MT/seed 0/12")[0], pretrained + 1.0);
}

#[test]
fn named_task_sets_are_listed_and_select_their_tasks() {
    let (_d, reg) = registry(&entry("fx", "env", &plugin("metarl-fixture-env")));
    let o = metarl(&reg, &["plugins", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("task sets: parts:odd (2 tasks)"), "{}", stdout(&o));
    let o = metarl(&reg, &["env", "bench", "fx", "--task", "parts:odd", "--envs", "2", "--steps", "50"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = metarl(&reg, &["env", "bench", "fx", "--task", "parts:even", "--envs", "2", "--steps", "50"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("plugin 'fx': --task: task selector 'parts:even': 'even' is not an index; tasks of 'parts' are numbered 0..4 or a set (odd)"), "{}", stderr(&o));
}

#[test]
fn reference_scores_are_listed_and_wrong_ones_refused_at_load() {
    let (_d, reg) = registry(&entry("fx", "env", &plugin("metarl-fixture-env")));
    let o = metarl(&reg, &["plugins", "list"]);
    assert!(stdout(&o).contains("references: bandit2: fraction of the best return for 16 tasks"), "{}", stdout(&o));
    for (mode, needle) in [
        ("twice", "reference scores of family 'bandit2': task '3' is listed twice"),
        ("panic", "reference_scores failed: panicked: in reference_scores: fixture panics in reference_scores as asked"),
    ] {
        let o = metarl_env(&reg, &["plugins", "check"], &[("METARL_FIXTURE_REFS", mode)]);
        assert_eq!(o.status.code(), Some(1), "{mode}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("FAIL  plugin 'fx'") && out.contains(needle), "{mode}: {out}");
    }
}

#[test]
fn a_plugin_whose_task_sets_are_wrong_is_refused_at_load() {
    let reg_text = entry("fx", "env", &plugin("metarl-fixture-env"));
    let (_d, reg) = registry(&reg_text);
    for (mode, needle) in [
        ("out-of-range", "task set 'odd' of family 'parts': task 9 is out of range (the family has 4)"),
        ("panic", "task_sets failed: panicked: in task_sets: fixture panics in task_sets as asked"),
    ] {
        let o = metarl_env(&reg, &["plugins", "check"], &[("METARL_FIXTURE_SETS", mode)]);
        assert_eq!(o.status.code(), Some(1), "{mode}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("FAIL  plugin 'fx'") && out.contains(needle), "{mode}: {out}");
    }
}
