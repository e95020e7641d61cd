//! Loading plugin libraries and calling into them safely.
//!
//! Each library is opened through its own abi_stable `LibHeader` (never `RootModule::load_from*`,
//! which caches one module per interface type), so any number of plugins of one kind load side
//! by side. Libraries are never unloaded. Every failure becomes a [`LoadError`] that names the
//! registry entry and the file.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use abi_stable::library::{lib_header_from_path, LibraryError, RootModuleError};
use abi_stable::std_types::{RResult, RStr};
use metarl_plugin_api::algo::{AlgoBox, AlgoRequest};
use metarl_plugin_api::env::{EnvBox, EnvRequest};
use metarl_plugin_api::export::{HostLogger, PluginDescriptor, PluginRoot_Ref, API_VERSION};
use metarl_plugin_api::meta::{MetaBox, MetaRequest};
use metarl_plugin_api::types::{NamedTaskSet, PluginError, PluginKind, ReferenceScores};

use crate::registry::Entry;
use crate::tasks::{self, TaskSelection};

/// Why a registry entry could not be loaded. Displays as one line.
#[derive(Debug, thiserror::Error)]
#[error("plugin '{name}' ({path}, {origin}): {problem}")]
pub struct LoadError {
    /// Registry name.
    pub name: String,
    /// Library path.
    pub path: String,
    /// Where the entry is defined.
    pub origin: String,
    /// What went wrong.
    pub problem: String,
}

/// A loaded, initialised plugin library.
pub struct Plugin {
    /// Registry name.
    pub name: String,
    /// Library path.
    pub path: PathBuf,
    /// What the plugin says about itself.
    pub descriptor: PluginDescriptor,
    /// The named task sets of its families (none for a plugin built against plugin-api 0.2.0).
    pub task_sets: Vec<NamedTaskSet>,
    /// Reference scores of its families (none for a plugin built against plugin-api 0.2.0
    /// or 0.2.1).
    pub reference_scores: Vec<ReferenceScores>,
    /// The registry entry's default config.
    pub config: toml::Table,
    root: PluginRoot_Ref,
}

/// A failed call into a plugin: names the plugin and the call.
#[derive(Debug, thiserror::Error)]
#[error("plugin '{plugin}': {call} failed: {error}")]
pub struct CallError {
    /// Registry name of the plugin.
    pub plugin: String,
    /// The call, e.g. `step`.
    pub call: &'static str,
    /// The plugin's error.
    pub error: PluginError,
}

/// Turns a plugin call's `RResult` into a `Result` whose error names the plugin and call.
pub fn check<T>(plugin: &str, call: &'static str, r: RResult<T, PluginError>) -> Result<T, CallError> {
    r.into_result().map_err(|error| CallError { plugin: plugin.to_string(), call, error })
}

extern "C" fn host_log(level: u8, target: RStr<'_>, message: RStr<'_>) {
    // Must never unwind into the plugin.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let level = match level {
            0 | 1 => log::Level::Error,
            2 => log::Level::Warn,
            3 => log::Level::Info,
            4 => log::Level::Debug,
            _ => log::Level::Trace,
        };
        log::log!(target: target.as_str(), level, "{}", message.as_str());
    }));
}

fn host_logger() -> HostLogger {
    HostLogger { max_level: log::max_level() as usize as u8, log: host_log }
}

fn describe_library_error(e: &LibraryError) -> String {
    match e {
        LibraryError::OpenError { err, .. } => {
            format!("cannot open the library: {}", err.to_string().replace('\n', " "))
        }
        LibraryError::GetSymbolError { .. } => {
            "not a metarl plugin (it exports no abi_stable root module)".to_string()
        }
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => format!(
            "built against metarl-plugin-api {actual_version}, incompatible with this host's {expected_version} \
             (rebuild the plugin against plugin-api {API_VERSION})"
        ),
        LibraryError::AbiInstability(_) | LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => {
            let report = e.to_string();
            log::debug!("layout check failed: {report}");
            format!(
                "its ABI layout differs from this host's metarl-plugin-api {API_VERSION}{} \
                 (rebuild the plugin against it; RUST_LOG=debug shows the full report)",
                first_layout_difference(&report).map(|d| format!(": {d}")).unwrap_or_default()
            )
        }
        LibraryError::RootModule { err: RootModuleError::Unwound, .. } => {
            "panicked while building its root module".to_string()
        }
        LibraryError::RootModule { err, .. } => format!("root module failed: {}", err.to_string().replace('\n', " ")),
        LibraryError::ParseVersionError(e) => format!("unreadable version string: {e}"),
        LibraryError::Many(errs) => {
            errs.iter().map(describe_library_error).collect::<Vec<_>>().join("; ")
        }
    }
}

/// Condenses abi_stable's long layout report to its first difference:
/// `mismatched type (expected f32, found f64)`.
fn first_layout_difference(report: &str) -> Option<String> {
    let mut lines = report.lines().map(str::trim).skip_while(|l| !l.starts_with("Error:"));
    let what = lines.next()?.trim_start_matches("Error:").trim().to_string();
    let rest: Vec<&str> = lines.take(4).collect();
    match rest.as_slice() {
        ["Expected:", expected, "Found:", found] => Some(format!("{what} (expected {expected}, found {found})")),
        _ => Some(what),
    }
}

/// Refuses a library built against an incompatible plugin-api version before its layout is
/// compared, so the message says "version" rather than listing every type that carries it.
fn check_api_version(header: &abi_stable::library::LibHeader) -> Result<(), String> {
    let ours = <PluginRoot_Ref as abi_stable::library::RootModule>::VERSION_STRINGS;
    let theirs = header.version_strings();
    match (ours.parsed(), theirs.parsed()) {
        (Ok(o), Ok(t)) if !o.is_loosely_compatible(t) => Err(format!(
            "built against metarl-plugin-api {t}, incompatible with this host's {o} \
             (rebuild the plugin against plugin-api {API_VERSION})"
        )),
        (_, Err(e)) => Err(format!("unreadable plugin-api version: {e}")),
        _ => Ok(()),
    }
}

impl Plugin {
    /// Opens, checks and initialises the library of `entry`.
    pub fn load(entry: &Entry) -> Result<Plugin, LoadError> {
        let fail = |problem: String| LoadError {
            name: entry.name.clone(),
            path: entry.path.display().to_string(),
            origin: entry.origin.to_string(),
            problem,
        };
        if !entry.path.is_file() {
            return Err(fail("library file not found (build it with `cargo build --release --workspace`)".into()));
        }
        // Opening runs the library's initialisers; a foreign library could panic there only in
        // Rust code, which abi_stable's loader does not run, so this is just belt and braces.
        let header = catch_unwind(|| lib_header_from_path(&entry.path))
            .map_err(|_| fail("panicked while opening the library".into()))?
            .map_err(|e| fail(describe_library_error(&e)))?;
        check_api_version(header).map_err(fail)?;
        let root = metarl_plugin_kit::load::init_root(header).map_err(|e| fail(describe_library_error(&e)))?;
        let kind = root.kind();
        if kind != entry.kind {
            return Err(fail(format!("the library is a {kind} plugin but the registry says {}", entry.kind)));
        }
        let descriptor = (root.init())(host_logger())
            .into_result()
            .map_err(|e| fail(format!("initialisation failed: {e}")))?;
        // Appended in 0.2.1: absent from a plugin built against 0.2.0.
        let task_sets = match root.task_sets() {
            Some(f) => f().into_result().map_err(|e| fail(format!("task_sets failed: {e}")))?.into_vec(),
            None => Vec::new(),
        };
        tasks::check_sets(&descriptor.families, &task_sets).map_err(fail)?;
        // Appended in 0.2.2: absent from a plugin built against 0.2.0 or 0.2.1.
        let reference_scores = match root.reference_scores() {
            Some(f) => f().into_result().map_err(|e| fail(format!("reference_scores failed: {e}")))?.into_vec(),
            None => Vec::new(),
        };
        tasks::check_references(&descriptor.families, &reference_scores).map_err(fail)?;
        log::debug!("loaded plugin '{}' ({} {}) from {}", entry.name, descriptor.name, descriptor.version, entry.path.display());
        Ok(Plugin {
            name: entry.name.clone(),
            path: entry.path.clone(),
            descriptor,
            task_sets,
            reference_scores,
            config: entry.config.clone(),
            root,
        })
    }

    /// The plugin's kind.
    pub fn kind(&self) -> PluginKind {
        self.descriptor.kind
    }

    /// Resolves a task selector (`atari:train-5`, `coinrun:0..100`) against the plugin's
    /// families and named sets.
    pub fn resolve_tasks(&self, selector: &str) -> Result<TaskSelection, String> {
        tasks::resolve(selector, &self.descriptor.families, &self.task_sets)
    }

    /// Builds a batched env (env plugins only).
    pub fn new_env(&self, req: &EnvRequest) -> Result<EnvBox, CallError> {
        check(&self.name, "new_env", (self.root.new_env())(req))
    }

    /// Builds an agent (algo plugins only).
    pub fn new_algo(&self, req: &AlgoRequest) -> Result<AlgoBox, CallError> {
        check(&self.name, "new_algo", (self.root.new_algo())(req))
    }

    /// Builds a meta-method (meta plugins only).
    pub fn new_meta(&self, req: &MetaRequest) -> Result<MetaBox, CallError> {
        check(&self.name, "new_meta", (self.root.new_meta())(req))
    }

    /// The registry default config merged with `overrides` (overrides win, tables merge), as
    /// TOML text for a request.
    pub fn config_with(&self, overrides: &toml::Table) -> anyhow::Result<String> {
        toml_text(&self.merged_config(overrides)).map_err(|e| anyhow::anyhow!("plugin '{}': config: {e}", self.name))
    }

    /// The registry default config merged with `overrides`, as a table.
    pub fn merged_config(&self, overrides: &toml::Table) -> toml::Table {
        let mut merged = self.config.clone();
        merge_tables(&mut merged, overrides);
        merged
    }
}

/// A config table as TOML text. Fails only for values TOML cannot write (such as a table
/// after plain keys in an array); the error says which.
pub fn toml_text(table: &toml::Table) -> Result<String, String> {
    toml::to_string(table).map_err(|e| e.to_string().trim().replace('\n', " "))
}

/// Recursively merges `over` into `base`.
pub fn merge_tables(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}
