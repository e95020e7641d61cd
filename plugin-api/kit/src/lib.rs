//! Helper code for metarl plugins and hosts. **Not part of the ABI**: nothing here crosses
//! the plugin boundary, and every user compiles its own copy, so it can change in any
//! release without breaking a built plugin.
//!
//! - [`bytes`]: the little-endian `save`/`load` format plugins write their state in.
//! - [`buf`]: owned, typed buffers for a space's parts, and the views the ABI takes.
//! - [`driver`]: an env driven by an algo (act, step, record, memory resets), the one
//!   training loop every meta-method uses ([`driver::train`]), and evaluation through the
//!   meta-method as the host asks for it ([`driver::evaluate`]).
//! - [`seeds`]: SplitMix64, the one seed source: streams for meta-methods, and seeds derived
//!   from names for the host.
//! - [`config`]: plugin configs from TOML text, with errors that name the key.
//! - [`load`]: opening a plugin library's root module, as a host does.
//! - [`locate`]: files the set-up installs into the project venv, found at run time.
//! - [`process`]: process-wide settings a host applies at start (malloc, thread pools).
#![deny(missing_docs)]

pub mod buf;
pub mod bytes;
pub mod config;
pub mod driver;
pub mod load;
pub mod locate;
pub mod process;
pub mod seeds;

pub use config::parse_config;
