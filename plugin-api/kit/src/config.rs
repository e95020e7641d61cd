//! Plugin configs: a TOML table as text in every request, parsed into the plugin's own struct.

use metarl_plugin_api::types::PluginError;

/// Parses a plugin config (a TOML table as text) into `T`, with errors that name the key.
pub fn parse_config<T: serde::de::DeserializeOwned>(plugin: &str, text: &str) -> Result<T, PluginError> {
    toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().replace('\n', " ");
        PluginError::invalid(format!("{plugin} config: {msg}"))
    })
}
