//! The crate's tests that drive whole agents. They live inside the crate (not in `tests/`)
//! because they link the gridworld plugin's rlib, whose exported root-module symbol would
//! clash with this plugin's in an integration-test binary.
#![allow(dead_code)]

mod common;
mod contract;
mod learning;
