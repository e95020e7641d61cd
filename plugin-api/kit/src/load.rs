//! Opening a plugin library as a host does: the root module, with a layout check that lets
//! plugins and hosts of different 0.2.x patch versions work together.

use metarl_plugin_api::abi_stable::{
    self,
    abi_stability::abi_checking::{check_layout_compatibility_with_globals, CheckingGlobals},
    library::{lib_header_from_path, LibHeader, LibraryError, RootModuleError},
    std_types::RBoxError,
};
use metarl_plugin_api::export::PluginRoot_Ref;

/// Compares the library's root-module layout with this program's, in both directions.
///
/// abi_stable's own check (`init_root_module`) takes the loading program as the interface
/// and accepts a library whose prefix types (the root module, every `#[sabi_trait]` vtable)
/// have *at least* the program's fields: a plugin built against a later 0.2.x loads into an
/// earlier host. It refuses the other way round, a plugin built against an earlier 0.2.x in a
/// later host, although that is sound too: the host reads fields added after a prefix marker
/// through accessors that return `None` when the library lacks them, and calls methods added
/// after a marker through their default bodies. So the check also runs with the roles
/// swapped, which accepts exactly the libraries whose layout is a prefix of the program's.
/// Any other difference is refused with abi_stable's report.
///
/// Each check starts from fresh checking state, not abi_stable's process-wide one, which
/// merges the prefix types of every library checked before: there, a plugin built against an
/// earlier 0.2.x, once accepted, made the check of every later up-to-date plugin fail ("too
/// many fields"), under the later plugin's name. Each library is judged against this program
/// alone; prefix-type accessors and default methods check at run time what a library has.
pub fn check_root_layout(header: &LibHeader) -> Result<(), LibraryError> {
    let ours = <PluginRoot_Ref as abi_stable::StableAbi>::LAYOUT;
    let Some(theirs) = header.layout() else {
        // Built with layout checking off: nothing to compare, refuse.
        return Err(LibraryError::RootModule {
            err: RootModuleError::Unwound,
            module_name: "metarl_plugin",
            version: header.version_strings(),
        });
    };
    let check = |interface, implementation| check_layout_compatibility_with_globals(interface, implementation, &CheckingGlobals::new());
    match check(ours, theirs) {
        Ok(()) => Ok(()),
        Err(report) => match check(theirs, ours) {
            Ok(()) => Ok(()),
            Err(_) => Err(LibraryError::AbiInstability(RBoxError::from_fmt(&report))),
        },
    }
}

/// The root module of an opened library, after [`check_root_layout`] (the caller checks the
/// version first, to report it in its own words).
pub fn init_root(header: &LibHeader) -> Result<PluginRoot_Ref, LibraryError> {
    check_root_layout(header)?;
    // SAFETY: the layout was checked just above: equal to ours, or one a prefix of the other,
    // which prefix-type accessors and sabi_trait default methods handle.
    unsafe { header.init_root_module_with_unchecked_layout::<PluginRoot_Ref>() }
}

/// Opens the library at `path` and returns its root module: version, then layout.
pub fn root_module(path: impl AsRef<std::path::Path>) -> Result<PluginRoot_Ref, LibraryError> {
    let header = lib_header_from_path(path.as_ref())?;
    init_root(header)
}
