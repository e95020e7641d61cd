//! metarl env plugin for the Procgen Benchmark (16 games), running the real Procgen 0.10.7.
//!
//! Procgen is C++ behind Qt; the only supported binary is the `libenv.so` inside the pinned
//! `procgen2==0.10.7` wheel, which exports gym3's libenv C ABI. This plugin `dlopen`s that
//! library and drives it directly, so the step loop has no Python in it and the frames are
//! Procgen's own (the same options and `rand_seed` give Python's frames). The wheel is found
//! in the repository's `.venv` (or through `procgen_dir` / `$METARL_PROCGEN_DIR`) at run time
//! rather than linked, so the plugin builds without Procgen installed.
//!
//! Each task family is a game and each task a level seed. Procgen only knows level ranges,
//! so a contiguous list runs natively; explicit lists and repeated trials (RL²) steer each
//! game to its next level by patching one field of its serialised state, once per task (see
//! `state`). `reset(seed)` rebuilds the games with a `rand_seed` derived from the request
//! and reset seeds, since Procgen has no seeded reset.

#![allow(clippy::needless_range_loop)]

pub mod env;
pub mod games;
pub mod libenv;
pub mod locate;
pub mod state;

use metarl_plugin_api::prelude::*;

pub use env::{Config, ProcgenEnv, LEVELS, NUM_ACTIONS};

/// Trials (for RL²); no final observations (libenv resets inside its step).
pub const CAPS: Caps = Caps::ENV_TRIALS;

/// The plugin's factory.
pub struct ProcgenPlugin;

impl PluginFactory for ProcgenPlugin {
    const KIND: PluginKind = PluginKind::ENV;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "procgen".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::ENV,
            description: "Procgen Benchmark 0.10.7: 16 games, tasks are level seeds (needs procgen2==0.10.7 in .venv)"
                .into(),
            caps: CAPS,
            families: games::GAMES
                .iter()
                .map(|g| TaskFamily {
                    name: g.name.into(),
                    description: g.description.into(),
                    tasks: TaskSet::indexed(LEVELS),
                })
                .collect::<Vec<_>>()
                .into(),
            requires: Caps::NONE,
        }
    }

    fn new_env(req: &EnvRequest) -> Result<Box<dyn Env>, PluginError> {
        Ok(Box::new(ProcgenEnv::new(req)?))
    }
}

metarl_plugin_api::export_plugin!(ProcgenPlugin);
