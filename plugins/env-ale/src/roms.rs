//! Finding the Atari ROMs: the `ale_py/roms/` directory of the pinned `ale-py==0.12.1` wheel,
//! which `.ci/setup` installs into the project venv.

use std::path::{Path, PathBuf};

use metarl_plugin_api::types::PluginError;

/// Environment variable naming a ROM directory.
pub const ENV_VAR: &str = "METARL_ALE_ROMS";
const INSTALL: &str =
    "run `bash .ci/setup`, which installs the pinned ale-py==0.12.1 wheel (it ships the ROMs) into .venv";

fn looks_like_roms(dir: &Path) -> bool {
    dir.join("pong.bin").is_file()
}

/// The ROM directory: config `rom_dir`, then `$METARL_ALE_ROMS`, then the project venv's
/// `ale_py/roms`.
pub fn find(configured: Option<&Path>) -> Result<PathBuf, PluginError> {
    let explicit = |dir: PathBuf, from: &str| {
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(PluginError::invalid(format!(
                "{from} {} is not a directory of Atari ROMs (<game>.bin files)",
                dir.display()
            )))
        }
    };
    if let Some(dir) = configured {
        return explicit(dir.to_path_buf(), "rom_dir");
    }
    if let Some(dir) = std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()) {
        return explicit(PathBuf::from(dir), ENV_VAR);
    }
    metarl_plugin_kit::locate::venv_package("ale_py/roms", &looks_like_roms).ok_or_else(|| {
        PluginError::failed(format!(
            "Atari ROMs not found: no .venv/lib/python3*/site-packages/ale_py/roms in the current directory or above the \
             plugin library, and neither rom_dir nor ${ENV_VAR} is set; {INSTALL}"
        ))
    })
}

/// The ROM file of `game` in `dir`, which must exist.
pub fn rom(dir: &Path, game: &str) -> Result<PathBuf, PluginError> {
    let path = dir.join(format!("{game}.bin"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(PluginError::failed(format!("ROM of '{game}' missing: {} does not exist; {INSTALL}", path.display())))
    }
}
