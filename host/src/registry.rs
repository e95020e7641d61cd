//! `registry.toml`: which plugin libraries exist, under which names.
//!
//! Parsed in two layers, as ripgrep does with flags: a raw serde struct that only mirrors the
//! file (with spans, for error messages), then a resolved [`Registry`] with absolute paths,
//! validated names and kinds.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use metarl_plugin_api::types::PluginKind;
use serde::Deserialize;
use toml::Spanned;

/// A registry file that could not be read or is invalid. Displays as one line naming the file,
/// the line and column, and the entry at fault.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file is missing or unreadable.
    #[error("registry {path}: cannot read: {source}")]
    Read {
        /// The registry file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Invalid TOML, an unknown key, a missing key, a duplicate name or an unknown kind.
    #[error("registry {path}:{line}:{column}: {message}")]
    Invalid {
        /// The registry file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    #[serde(default)]
    plugin: Vec<Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Spanned<String>,
    kind: Spanned<String>,
    path: Spanned<String>,
    #[serde(default)]
    config: Option<toml::Table>,
}

/// One plugin the registry names.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The name experiments use.
    pub name: String,
    /// The kind the registry expects the library to be.
    pub kind: PluginKind,
    /// Absolute path of the shared library.
    pub path: PathBuf,
    /// Default config handed to the plugin (experiment settings are merged over it).
    pub config: toml::Table,
    /// Where the entry is defined, for messages: `registry.toml:12`.
    pub origin: Origin,
}

/// A place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A validated registry.
#[derive(Debug, Clone)]
pub struct Registry {
    /// The registry file.
    pub path: PathBuf,
    /// Entries in file order.
    pub entries: Vec<Entry>,
}

/// 1-based line and column of byte offset `pos` in `text`.
pub fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Registry {
    /// Reads and validates the registry at `path`. Library paths are resolved relative to the
    /// registry file's directory.
    pub fn load(path: &Path) -> Result<Registry, RegistryError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| RegistryError::Read { path: path.to_path_buf(), source })?;
        Self::parse(path, &text)
    }

    /// Validates registry `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Registry, RegistryError> {
        let invalid = |pos: usize, message: String| {
            let (line, column) = line_col(text, pos);
            RegistryError::Invalid { path: path.to_path_buf(), line, column, message }
        };
        let raw: RawRegistry = toml::from_str(text).map_err(|e| {
            let pos = e.span().map_or(0, |s| s.start);
            invalid(pos, e.message().trim().replace('\n', " "))
        })?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut entries = Vec::new();
        for spanned in raw.plugin {
            let (line, _) = line_col(text, spanned.span().start);
            let raw = spanned.into_inner();
            let name = raw.name.get_ref().trim().to_string();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(invalid(
                    raw.name.span().start,
                    format!("plugin name '{}' must be non-empty and use only letters, digits, '-' and '_'", name.escape_debug()),
                ));
            }
            if let Some(first) = seen.insert(name.clone(), line) {
                return Err(invalid(
                    raw.name.span().start,
                    format!("duplicate plugin name '{name}' (first defined at line {first})"),
                ));
            }
            let kind = PluginKind::parse(raw.kind.get_ref()).ok_or_else(|| {
                invalid(
                    raw.kind.span().start,
                    format!("plugin '{name}': unknown kind '{}' (expected env, algo or meta)", raw.kind.get_ref().escape_debug()),
                )
            })?;
            if raw.path.get_ref().is_empty() {
                return Err(invalid(raw.path.span().start, format!("plugin '{name}': empty path")));
            }
            let lib = Path::new(raw.path.get_ref());
            let lib = if lib.is_absolute() { lib.to_path_buf() } else { base.join(lib) };
            entries.push(Entry {
                name,
                kind,
                path: lib,
                config: raw.config.unwrap_or_default(),
                origin: Origin { file: path.to_path_buf(), line },
            });
        }
        Ok(Registry { path: path.to_path_buf(), entries })
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The entry called `name`, or an error listing the names of that kind.
    pub fn require(&self, name: &str, kind: PluginKind) -> Result<&Entry, String> {
        match self.get(name) {
            Some(e) if e.kind == kind => Ok(e),
            Some(e) => Err(format!("plugin '{name}' is a {} plugin ({}), not {kind}", e.kind, e.origin)),
            None => {
                let names: Vec<&str> =
                    self.entries.iter().filter(|e| e.kind == kind).map(|e| e.name.as_str()).collect();
                Err(format!(
                    "no {kind} plugin named '{name}' in {} (known: {})",
                    self.path.display(),
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Registry, RegistryError> {
        Registry::parse(Path::new("/r/registry.toml"), text)
    }

    #[test]
    fn resolves_paths_relative_to_the_registry() {
        let r = parse("[[plugin]]\nname = \"a\"\nkind = \"env\"\npath = \"lib/a.so\"\n[plugin.config]\nx = 1\n").unwrap();
        assert_eq!(r.entries[0].path, PathBuf::from("/r/lib/a.so"));
        assert_eq!(r.entries[0].kind, PluginKind::ENV);
        assert_eq!(r.entries[0].config.get("x").and_then(|v| v.as_integer()), Some(1));
        assert_eq!(r.entries[0].origin.line, 1);
    }

    #[test]
    fn reports_line_and_column_of_malformed_toml() {
        let e = parse("[[plugin]]\nname = \"a\"\nkind = = \"env\"\n").unwrap_err().to_string();
        assert!(e.starts_with("registry /r/registry.toml:3:"), "{e}");
    }

    #[test]
    fn rejects_unknown_keys_duplicates_and_kinds() {
        let e = parse("[[plugin]]\nname = \"a\"\nkind = \"env\"\npath = \"a.so\"\nfoo = 1\n").unwrap_err().to_string();
        assert!(e.contains(":5:") && e.contains("unknown field `foo`"), "{e}");
        let two = "[[plugin]]\nname = \"a\"\nkind = \"env\"\npath = \"a.so\"\n[[plugin]]\nname = \"a\"\nkind = \"algo\"\npath = \"b.so\"\n";
        let e = parse(two).unwrap_err().to_string();
        assert!(e.contains(":6:") && e.contains("duplicate plugin name 'a' (first defined at line 1)"), "{e}");
        let e = parse("[[plugin]]\nname = \"a\"\nkind = \"agent\"\npath = \"a.so\"\n").unwrap_err().to_string();
        assert!(e.contains(":3:") && e.contains("unknown kind 'agent'"), "{e}");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
