//! Task selectors: how people name sets of tasks on the command line and in experiment files.
//!
//! `FAMILY` (every task), `FAMILY:7` (one task), `FAMILY:0..100` (a half-open range),
//! `FAMILY:pong,breakout` or `FAMILY:3,5,9` (a list of names or indices). Ranges and lists
//! combine: `coinrun:0..10,20,30..32`.

use metarl_plugin_api::types::TaskFamily;

/// A resolved selection: a family and task indices (empty = the whole family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSelection {
    /// Family name.
    pub family: String,
    /// Task indices within the family; empty means every task.
    pub tasks: Vec<u64>,
}

impl TaskSelection {
    /// Number of tasks selected, given the family.
    pub fn count(&self, family: &TaskFamily) -> u64 {
        if self.tasks.is_empty() {
            family.tasks.len()
        } else {
            self.tasks.len() as u64
        }
    }
}

const MAX_LISTED: usize = 12;

fn list_names(names: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = names.collect();
    if all.len() > MAX_LISTED {
        format!("{}, ... ({} in all)", all[..MAX_LISTED].join(", "), all.len())
    } else {
        all.join(", ")
    }
}

/// Resolves `selector` against the families an env plugin offers.
pub fn resolve(selector: &str, families: &[TaskFamily]) -> Result<TaskSelection, String> {
    let (fam_name, spec) = match selector.split_once(':') {
        Some((f, s)) => (f.trim(), Some(s.trim())),
        None => (selector.trim(), None),
    };
    let family = families.iter().find(|f| f.name.as_str() == fam_name).ok_or_else(|| {
        format!(
            "unknown task family '{fam_name}' (valid: {})",
            list_names(families.iter().map(|f| f.name.to_string()))
        )
    })?;
    let count = family.tasks.len();
    let Some(spec) = spec else {
        return Ok(TaskSelection { family: fam_name.to_string(), tasks: Vec::new() });
    };
    if spec.is_empty() {
        return Err(format!("task selector '{selector}': nothing after ':'"));
    }
    let mut tasks = Vec::new();
    for part in spec.split(',').map(str::trim) {
        if let Some((a, b)) = part.split_once("..") {
            let parse = |s: &str| {
                s.trim().parse::<u64>().map_err(|_| format!("task selector '{selector}': '{part}' is not a range of indices like 0..100"))
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if a >= b {
                return Err(format!("task selector '{selector}': empty range {a}..{b}"));
            }
            if b > count {
                return Err(format!("task selector '{selector}': range {a}..{b} exceeds the {count} tasks of '{fam_name}'"));
            }
            tasks.extend(a..b);
        } else if let Ok(i) = part.parse::<u64>() {
            if i >= count {
                return Err(format!("task selector '{selector}': task {i} is out of range (family '{fam_name}' has {count})"));
            }
            tasks.push(i);
        } else {
            let names = &family.tasks.names;
            if names.is_empty() {
                return Err(format!("task selector '{selector}': '{part}' is not an index; tasks of '{fam_name}' are numbered 0..{count}"));
            }
            let i = names.iter().position(|n| n.as_str() == part).ok_or_else(|| {
                format!("unknown task '{part}' in family '{fam_name}' (valid: {})", list_names(names.iter().map(|n| n.to_string())))
            })?;
            tasks.push(i as u64);
        }
    }
    let mut sorted = tasks.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("task selector '{selector}': task {} is listed twice", w[0]));
    }
    Ok(TaskSelection { family: fam_name.to_string(), tasks })
}

/// A readable name for task `i` of `family`.
pub fn task_name(family: &TaskFamily, i: u64) -> String {
    family.tasks.name(i).map_or_else(|| i.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use metarl_plugin_api::types::TaskSet;

    fn fams() -> Vec<TaskFamily> {
        vec![
            TaskFamily { name: "levels".into(), description: "".into(), tasks: TaskSet::indexed(1000) },
            TaskFamily {
                name: "games".into(),
                description: "".into(),
                tasks: TaskSet::named(&["pong", "breakout"]),
            },
        ]
    }

    #[test]
    fn parses_ranges_lists_and_names() {
        assert_eq!(resolve("levels", &fams()).unwrap().tasks, Vec::<u64>::new());
        assert_eq!(resolve("levels:3", &fams()).unwrap().tasks, vec![3]);
        assert_eq!(resolve("levels:0..3,10", &fams()).unwrap().tasks, vec![0, 1, 2, 10]);
        assert_eq!(resolve("games:breakout,pong", &fams()).unwrap().tasks, vec![1, 0]);
    }

    #[test]
    fn errors_name_the_fault() {
        assert!(resolve("nope:1", &fams()).unwrap_err().contains("unknown task family 'nope' (valid: levels, games)"));
        assert!(resolve("levels:5..2", &fams()).unwrap_err().contains("empty range"));
        assert!(resolve("levels:0..2000", &fams()).unwrap_err().contains("exceeds the 1000 tasks"));
        assert!(resolve("games:tetris", &fams()).unwrap_err().contains("unknown task 'tetris' in family 'games' (valid: pong, breakout)"));
        assert!(resolve("levels:1,1", &fams()).unwrap_err().contains("listed twice"));
    }
}
