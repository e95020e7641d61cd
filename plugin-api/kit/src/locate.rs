//! Finding files a plugin needs at run time that the set-up installs into the repository's
//! project venv (Procgen's libenv, Atari ROMs): `<dir>/.venv/lib/python3*/site-packages/<package>`
//! for the current directory or any directory above the plugin library, which sits in
//! `<repo>/target/release/`.

use std::ffi::{CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The file the calling code was loaded from: a plugin library, or a test binary.
pub fn own_file() -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let addr = own_file as fn() -> Option<PathBuf> as *const libc::c_void;
    // SAFETY: dladdr only reads the address and fills `info`.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr returns a NUL-terminated path owned by the loader.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = PathBuf::from(OsStr::from_bytes(name.to_bytes()));
    path.canonicalize().ok().or(Some(path))
}

/// `dir/.venv/lib/python3*/site-packages/<package>`, if `complete` accepts it.
fn in_venv(dir: &Path, package: &str, complete: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(dir.join(".venv/lib"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages").join(package))
        .collect();
    pythons.sort();
    pythons.into_iter().find(|p| complete(p))
}

/// The first `.venv` site-packages directory of `package` that `complete` accepts, looking in
/// the current directory, then in every directory above the library this code was loaded from.
pub fn venv_package(package: &str, complete: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::current_dir().into_iter().collect();
    if let Some(file) = own_file() {
        candidates.extend(file.ancestors().skip(1).map(Path::to_path_buf));
    }
    candidates.iter().find_map(|dir| in_venv(dir, package, complete))
}
