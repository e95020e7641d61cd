//! metarl env plugin for Atari 2600 games on the Arcade Learning Environment 0.12.1.
//!
//! ALE's C++ core is compiled into this library (see `build.rs`) behind a small `extern "C"`
//! shim (`csrc/shim.cpp`), so the step loop has no Python in it. The ROMs are those of the
//! pinned `ale-py==0.12.1` wheel in the project venv. Preprocessing is DER's (see [`env`]).
//!
//! **Licence:** ALE is GPL-2.0-only, so this crate is GPL-2.0-only. No other crate of the
//! workspace links it; the host loads it at run time like any plugin.

#![allow(clippy::needless_range_loop)]

pub mod ale;
pub mod env;
pub mod games;
pub mod resize;
pub mod roms;

use metarl_plugin_api::prelude::*;

pub use env::{ActionSet, AleEnv, Config};

/// Final observations and repeated trials.
pub const CAPS: Caps = Caps(Caps::ENV_FINAL_OBS.0 | Caps::ENV_TRIALS.0);

/// The plugin's factory.
pub struct AlePlugin;

impl PluginFactory for AlePlugin {
    const KIND: PluginKind = PluginKind::ENV;

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "ale".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::ENV,
            description: "Atari 2600 on ALE 0.12.1 (GPL-2.0-only), DER preprocessing; tasks are games (ROMs from ale-py==0.12.1 in .venv)"
                .into(),
            caps: CAPS,
            families: vec![TaskFamily {
                name: games::FAMILY.into(),
                description: "every ROM of the ale-py 0.12.1 wheel; the study's sets: train-5, train-10, test".into(),
                tasks: TaskSet::named(&games::GAMES),
            }]
            .into(),
            requires: Caps::NONE,
        }
    }

    fn new_env(req: &EnvRequest) -> Result<Box<dyn Env>, PluginError> {
        Ok(Box::new(AleEnv::new(req)?))
    }

    fn task_sets() -> Vec<NamedTaskSet> {
        games::SETS.iter().map(|set| NamedTaskSet::new(games::FAMILY, set.name, set.description, games::set_tasks(set))).collect()
    }

    fn reference_scores() -> Vec<ReferenceScores> {
        vec![ReferenceScores {
            family: games::FAMILY.into(),
            name: "human-normalised score".into(),
            description: "random = 0, human = 1, with the standard Atari-57 random and human scores (as in DQN Zoo)".into(),
            tasks: games::reference_tasks().into_iter().map(|(task, low, high)| TaskReference { task, low, high }).collect(),
        }]
    }
}

metarl_plugin_api::export_plugin!(AlePlugin);
