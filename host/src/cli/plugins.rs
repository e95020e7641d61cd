//! `metarl plugins list` and `metarl plugins check`.

use std::process::ExitCode;

use metarl_plugin_api::export::PluginDescriptor;
use metarl_plugin_api::types::PluginKind;

use crate::loader::Plugin;
use crate::registry::Registry;

fn family_summary(d: &PluginDescriptor) -> String {
    d.families
        .iter()
        .map(|f| format!("{} ({} tasks)", f.name, f.tasks.len()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints one row per registry entry. Entries that fail to load are reported and make the
/// command exit non-zero, but do not hide the others.
pub fn list(registry: &Registry) -> anyhow::Result<ExitCode> {
    println!("{:<16} {:<5} {:<10} {:<28} DESCRIPTION", "NAME", "KIND", "VERSION", "CAPABILITIES");
    let mut failed = 0;
    for entry in &registry.entries {
        match Plugin::load(entry) {
            Ok(p) => {
                let d = &p.descriptor;
                let mut caps = d.caps.to_string();
                if d.kind == PluginKind::META && !d.requires.is_empty() {
                    caps = format!("requires {}", d.requires);
                }
                println!("{:<16} {:<5} {:<10} {:<28} {}", entry.name, d.kind, d.version, caps, d.description);
                if !d.families.is_empty() {
                    println!("{:<16} families: {}", "", family_summary(d));
                }
                if !p.task_sets.is_empty() {
                    let sets: Vec<String> =
                        p.task_sets.iter().map(|s| format!("{}:{} ({} tasks)", s.family, s.name, s.tasks.len())).collect();
                    println!("{:<16} task sets: {}", "", sets.join(", "));
                }
                for r in &p.reference_scores {
                    println!("{:<16} references: {}: {} for {} tasks ({})", "", r.family, r.name, r.tasks.len(), r.description);
                }
            }
            Err(e) => {
                failed += 1;
                println!("{:<16} {:<5} {:<10} {:<28} (failed to load)", entry.name, entry.kind, "-", "-");
                log::error!("{e}");
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Checks the descriptor for things the ABI cannot enforce.
fn validate(p: &Plugin) -> Result<(), String> {
    let d = &p.descriptor;
    if d.name.is_empty() || d.version.is_empty() {
        return Err("descriptor has an empty name or version".into());
    }
    if d.kind == PluginKind::ENV {
        if d.families.is_empty() {
            return Err("env plugin offers no task family".into());
        }
        let mut names: Vec<&str> = d.families.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("task family '{}' is listed twice", w[0]));
        }
        if let Some(f) = d.families.iter().find(|f| f.tasks.is_empty()) {
            return Err(format!("task family '{}' has no tasks", f.name));
        }
    } else if !d.families.is_empty() {
        return Err(format!("a {} plugin must not list task families", d.kind));
    }
    Ok(())
}

/// Loads and validates every entry; prints one line each and a summary.
pub fn check(registry: &Registry) -> anyhow::Result<ExitCode> {
    let (mut ok, mut failed) = (0, 0);
    for entry in &registry.entries {
        match Plugin::load(entry).map_err(|e| e.to_string()).and_then(|p| {
            validate(&p).map_err(|m| format!("plugin '{}' ({}): {m}", entry.name, entry.path.display()))?;
            Ok(p)
        }) {
            Ok(p) => {
                ok += 1;
                println!("ok    {} ({} {} {})", entry.name, p.descriptor.kind, p.descriptor.name, p.descriptor.version);
            }
            Err(msg) => {
                failed += 1;
                println!("FAIL  {msg}");
            }
        }
    }
    println!("{ok} plugins ok, {failed} failed ({})", registry.path.display());
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
