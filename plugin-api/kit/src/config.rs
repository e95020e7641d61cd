//! Plugin configs: a TOML table as text in every request, parsed into the plugin's own struct.

use metarl_plugin_api::types::PluginError;

/// Parses a plugin config (a TOML table as text) into `T`, with errors that name the key.
pub fn parse_config<T: serde::de::DeserializeOwned>(plugin: &str, text: &str) -> Result<T, PluginError> {
    toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().replace('\n', " ");
        // Type errors ("invalid type: string, expected u32") say what but not where: name the
        // key of the line the error points at.
        let key = e.span().and_then(|span| key_at(text, span.start));
        match key {
            Some(key) if !msg.contains(&key) => PluginError::invalid(format!("{plugin} config: key `{key}`: {msg}")),
            _ => PluginError::invalid(format!("{plugin} config: {msg}")),
        }
    })
}

/// The key of the `key = value` line holding byte `at` of `text`.
fn key_at(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        frame_skip: u32,
        #[serde(default)]
        name: String,
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse_config::<Cfg>("ale", "name = \"x\"\nframe_skip = \"four\"\n").unwrap_err();
        assert!(
            e.message.contains("ale config: key `frame_skip`: invalid type: string \"four\", expected u32"),
            "{}",
            e.message
        );
        let e = parse_config::<Cfg>("ale", "frame_skip = 4\nframe_skp = 4\n").unwrap_err();
        assert!(e.message.contains("unknown field `frame_skp`"), "{}", e.message);
        let e = parse_config::<Cfg>("ale", "name = \"x\"\n").unwrap_err();
        assert!(e.message.contains("missing field `frame_skip`"), "{}", e.message);
        assert_eq!(parse_config::<Cfg>("ale", "frame_skip = 4").unwrap().frame_skip, 4);
    }
}
