//! Finding the installed Procgen package (the `procgen` directory of the `procgen2==0.10.7`
//! wheel, which holds `data/prebuilt/libenv.so` and `data/assets/`).

use std::path::{Path, PathBuf};

use metarl_plugin_api::types::PluginError;

/// Environment variable naming the procgen package directory.
pub const ENV_VAR: &str = "METARL_PROCGEN_DIR";

/// An installed Procgen package.
#[derive(Debug, Clone)]
pub struct Procgen {
    /// The package directory.
    pub dir: PathBuf,
}

impl Procgen {
    /// The prebuilt libenv.
    pub fn libenv(&self) -> PathBuf {
        self.dir.join("data/prebuilt/libenv.so")
    }
    /// The assets directory, with the trailing separator Procgen's `resource_root` needs.
    pub fn resource_root(&self) -> String {
        format!("{}/", self.dir.join("data/assets").display())
    }
    /// `version.txt` of the package, if readable.
    pub fn version(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("version.txt")).ok().map(|s| s.trim().to_string())
    }
    fn is_complete(dir: &Path) -> bool {
        dir.join("data/prebuilt/libenv.so").is_file() && dir.join("data/assets").is_dir()
    }
}

/// Finds Procgen: config `procgen_dir`, then `$METARL_PROCGEN_DIR`, then a `.venv` in the
/// current directory, then a `.venv` in any ancestor of the plugin library (which sits in
/// `<repo>/target/release/`).
pub fn find(configured: Option<&Path>) -> Result<Procgen, PluginError> {
    let explicit = |dir: PathBuf, from: &str| {
        if Procgen::is_complete(&dir) {
            Ok(Procgen { dir })
        } else {
            Err(PluginError::invalid(format!(
                "{from} {} is not a Procgen install (no data/prebuilt/libenv.so and data/assets/); \
                 point it at the site-packages/procgen directory of procgen2==0.10.7",
                dir.display()
            )))
        }
    };
    if let Some(dir) = configured {
        return explicit(dir.to_path_buf(), "procgen_dir");
    }
    if let Some(dir) = std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()) {
        return explicit(PathBuf::from(dir), ENV_VAR);
    }
    if let Some(dir) = metarl_plugin_kit::locate::venv_package("procgen", &Procgen::is_complete) {
        return Ok(Procgen { dir });
    }
    Err(PluginError::failed(format!(
        "Procgen is not installed: no .venv/lib/python3*/site-packages/procgen in the current directory or above the plugin \
         library, and neither procgen_dir nor ${ENV_VAR} is set; run `bash .ci/setup` to install the pinned procgen2==0.10.7"
    )))
}
