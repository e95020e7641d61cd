//! The metarl host runtime.
//!
//! `metarl` loads env, algo and meta plugins (independently built `cdylib`s) through the
//! stable ABI of `metarl-plugin-api`, composes them from `registry.toml`, and drives them.
//! The binary (`main.rs`) is a thin clap front end over this library, so integration tests
//! can exercise loading and calling plugins in-process as well as through the CLI.
//!
//! Architecture invariant: the host never links libtorch and knows no plugin by name; all it
//! knows of a plugin is what crosses the ABI.
#![deny(missing_docs)]

pub mod cli;
pub mod envrun;
pub mod executor;
pub mod experiment;
pub mod leakage;
pub mod loader;
pub mod lock;
pub mod registry;
pub mod report;
pub mod run;
pub mod services;
pub mod slurm;
pub mod tasks;
pub mod tensorboard;
