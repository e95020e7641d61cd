//! The root module every plugin library exports, and the glue that builds it.
//!
//! A plugin author implements [`PluginFactory`] and writes `export_plugin!(MyPlugin);`.
//! The macro exports a [`PluginRoot`] whose every function catches panics, forwards the
//! plugin's `log` records to the host's logger, and wraps the author's objects so that their
//! methods catch panics too.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    prefix_type::PrefixTypeTrait,
    sabi_types::VersionStrings,
    std_types::{RErr, ROk, RStr, RString, RVec},
    StableAbi,
};

use crate::algo::{self, Algo, AlgoBox, AlgoRequest};
use crate::env::{self, Env, EnvBox, EnvRequest};
use crate::meta::{self, Meta, MetaBox, MetaRequest};
use crate::types::*;

/// Who a plugin is and what it offers, as printed by `metarl plugins list`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct PluginDescriptor {
    /// The plugin's own name (the registry may refer to it by another).
    pub name: RString,
    /// The plugin's version (its crate version).
    pub version: RString,
    /// Its kind; must match the registry entry and the root module.
    pub kind: PluginKind,
    /// One line for people.
    pub description: RString,
    /// Capability flags.
    pub caps: Caps,
    /// Task families (env plugins only).
    pub families: RVec<TaskFamily>,
    /// For meta plugins: algo capabilities it requires, known without building it.
    pub requires: Caps,
}

/// The host's logger, handed to a plugin when it is loaded.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct HostLogger {
    /// Most verbose level the host wants: 0 off, 1 error, ..., 5 trace.
    pub max_level: u8,
    /// Receives one record: level (1 error ... 5 trace), target, message. Must not panic.
    pub log: extern "C" fn(level: u8, target: RStr<'_>, message: RStr<'_>),
}

/// The root module of a plugin library.
///
/// Fields after the last prefix field may be added in later 0.2.x versions; their accessors
/// on [`PluginRoot_Ref`] return `Option`, `None` for a plugin built before they existed.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginRoot_Ref)))]
pub struct PluginRoot {
    /// The plugin's kind.
    pub kind: PluginKind,
    /// Installs the log bridge and describes the plugin. Called once, right after loading.
    pub init: extern "C" fn(logger: HostLogger) -> PResult<PluginDescriptor>,
    /// Builds a batched env (env plugins).
    pub new_env: extern "C" fn(req: &EnvRequest) -> PResult<EnvBox>,
    /// Builds an agent (algo plugins).
    pub new_algo: extern "C" fn(req: &AlgoRequest) -> PResult<AlgoBox>,
    /// Builds a meta-method (meta plugins).
    #[sabi(last_prefix_field)]
    pub new_meta: extern "C" fn(req: &MetaRequest) -> PResult<MetaBox>,
    /// Added in 0.2.1: the named task sets of the plugin's families (env plugins; empty for
    /// the others). `None` through [`PluginRoot_Ref::task_sets`] for a plugin built against
    /// 0.2.0, which offers no sets.
    pub task_sets: extern "C" fn() -> PResult<RVec<NamedTaskSet>>,
    /// Added in 0.2.2: reference scores of the plugin's families (env plugins; empty for the
    /// others). `None` through [`PluginRoot_Ref::reference_scores`] for a plugin built against
    /// 0.2.0 or 0.2.1, which supplies none.
    pub reference_scores: extern "C" fn() -> PResult<RVec<ReferenceScores>>,
}

impl RootModule for PluginRoot_Ref {
    declare_root_module_statics! {PluginRoot_Ref}
    const BASE_NAME: &'static str = "metarl_plugin";
    const NAME: &'static str = "metarl_plugin";
    // The version of this crate: abi_stable refuses a plugin whose plugin-api version is not
    // compatible with the host's (for 0.x: same minor; patch versions only add after the
    // prefix markers).
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The version of this crate, which is the version of the plugin ABI.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a plugin author implements. Only the constructor matching [`PluginFactory::KIND`]
/// needs overriding.
pub trait PluginFactory: 'static {
    /// The plugin's kind.
    const KIND: PluginKind;
    /// Describes the plugin.
    fn descriptor() -> PluginDescriptor;
    /// Builds a batched env.
    fn new_env(req: &EnvRequest) -> Result<Box<dyn Env>, PluginError> {
        let _ = req;
        Err(PluginError::unsupported(format!("a {} plugin builds no env", Self::KIND)))
    }
    /// Builds an agent.
    fn new_algo(req: &AlgoRequest) -> Result<Box<dyn Algo>, PluginError> {
        let _ = req;
        Err(PluginError::unsupported(format!("a {} plugin builds no algo", Self::KIND)))
    }
    /// Builds a meta-method.
    fn new_meta(req: &MetaRequest) -> Result<Box<dyn Meta>, PluginError> {
        let _ = req;
        Err(PluginError::unsupported(format!("a {} plugin builds no meta-method", Self::KIND)))
    }
    /// Named task sets of the plugin's families (since 0.2.1; env plugins). The host checks
    /// them when it loads the plugin: known family, ids in range, no repeats, a name that is
    /// neither another set's nor a task's.
    fn task_sets() -> Vec<NamedTaskSet> {
        Vec::new()
    }
    /// Reference scores of the plugin's families (since 0.2.2; env plugins), which reports
    /// normalise held-out returns with (Atari's human-normalised score). The host checks them
    /// when it loads the plugin: known family, ids in range, each task once, finite pairs
    /// with `high != low`.
    fn reference_scores() -> Vec<ReferenceScores> {
        Vec::new()
    }
}

impl PluginRoot {
    /// The root module for plugin `P`; used by [`export_plugin!`].
    pub fn for_plugin<P: PluginFactory>() -> PluginRoot_Ref {
        PluginRoot {
            kind: P::KIND,
            init: init_impl::<P>,
            new_env: new_env_impl::<P>,
            new_algo: new_algo_impl::<P>,
            new_meta: new_meta_impl::<P>,
            task_sets: task_sets_impl::<P>,
            reference_scores: reference_scores_impl::<P>,
        }
        .leak_into_prefix()
    }
}

extern "C" fn init_impl<P: PluginFactory>(logger: HostLogger) -> PResult<PluginDescriptor> {
    guard(&AtomicBool::new(false), "init", || {
        install_log_bridge(logger);
        let d = P::descriptor();
        if d.kind != P::KIND {
            return Err(PluginError::failed(format!(
                "descriptor says kind '{}' but the root module says '{}'",
                d.kind,
                P::KIND
            )));
        }
        Ok(d)
    })
}

extern "C" fn new_env_impl<P: PluginFactory>(req: &EnvRequest) -> PResult<EnvBox> {
    guard(&AtomicBool::new(false), "new_env", || P::new_env(req).map(env::into_ffi))
}

extern "C" fn new_algo_impl<P: PluginFactory>(req: &AlgoRequest) -> PResult<AlgoBox> {
    guard(&AtomicBool::new(false), "new_algo", || P::new_algo(req).map(algo::into_ffi))
}

extern "C" fn new_meta_impl<P: PluginFactory>(req: &MetaRequest) -> PResult<MetaBox> {
    guard(&AtomicBool::new(false), "new_meta", || P::new_meta(req).map(meta::into_ffi))
}

extern "C" fn task_sets_impl<P: PluginFactory>() -> PResult<RVec<NamedTaskSet>> {
    guard(&AtomicBool::new(false), "task_sets", || Ok(P::task_sets().into()))
}

extern "C" fn reference_scores_impl<P: PluginFactory>() -> PResult<RVec<ReferenceScores>> {
    guard(&AtomicBool::new(false), "reference_scores", || Ok(P::reference_scores().into()))
}

/// Exports `$plugin` (a [`PluginFactory`]) as this library's root module.
///
/// The plugin crate must be a `cdylib` and depend on `abi_stable` directly (the exporting
/// attribute refers to it by its crate name).
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        /// The library's root module, found by the host through abi_stable's `LibHeader`.
        #[::abi_stable::export_root_module]
        pub fn metarl_plugin_root() -> $crate::export::PluginRoot_Ref {
            $crate::export::PluginRoot::for_plugin::<$plugin>()
        }
    };
}

/// Runs `f`, turning a panic into [`ErrorKind::PANICKED`]. After a panic, `poisoned` is set
/// and later calls fail at once: the object may be half-updated. An atomic flag, so that a
/// panic in a `&self` method (`spec`, `info`, `params`, `save`) poisons the object too.
pub(crate) fn guard<T>(
    poisoned: &AtomicBool,
    what: &str,
    f: impl FnOnce() -> Result<T, PluginError>,
) -> PResult<T> {
    if poisoned.load(Ordering::Acquire) {
        return RErr(PluginError::failed(format!("{what}: refused, an earlier call panicked")));
    }
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => ROk(v),
        Ok(Err(e)) => RErr(e),
        Err(payload) => {
            poisoned.store(true, Ordering::Release);
            RErr(PluginError {
                kind: ErrorKind::PANICKED,
                message: format!("in {what}: {}", panic_message(payload.as_ref())).into(),
            })
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

// --- log bridge -------------------------------------------------------------------------------
//
// Each cdylib links its own copy of `log`, with its own global logger. `init` installs, in the
// plugin's copy, a logger that forwards every record to the host through `HostLogger`. The
// plugin's own panic hook is replaced too, so that a caught panic is reported once, as the
// host's error, and its location goes to the debug log rather than straight to stderr.

static HOST_LOGGER: OnceLock<HostLogger> = OnceLock::new();

struct Forward;

impl log::Log for Forward {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        HOST_LOGGER.get().is_some_and(|h| (metadata.level() as usize) <= h.max_level as usize)
    }

    fn log(&self, record: &log::Record<'_>) {
        if let Some(h) = HOST_LOGGER.get() {
            if (record.level() as usize) <= h.max_level as usize {
                let msg = record.args().to_string();
                (h.log)(record.level() as u8, RStr::from_str(record.target()), RStr::from_str(&msg));
            }
        }
    }

    fn flush(&self) {}
}

static FORWARD: Forward = Forward;

fn install_log_bridge(logger: HostLogger) {
    if HOST_LOGGER.set(logger).is_ok() {
        let _ = log::set_logger(&FORWARD);
        log::set_max_level(match logger.max_level {
            0 => log::LevelFilter::Off,
            1 => log::LevelFilter::Error,
            2 => log::LevelFilter::Warn,
            3 => log::LevelFilter::Info,
            4 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        });
        std::panic::set_hook(Box::new(|info| {
            log::debug!("plugin panic: {info}");
        }));
    }
}
