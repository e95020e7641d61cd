//! The crate's tests. They live inside the crate (not in `tests/`) because they link the
//! gridworld plugin's rlib, whose exported root-module symbol would clash with this plugin's
//! in an integration-test binary; the unit-test build leaves this plugin's export out.
#![allow(dead_code)]

mod common;
mod contract;
mod learning;
