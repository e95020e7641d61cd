//! Task selectors: how people name sets of tasks on the command line and in experiment files.
//!
//! `FAMILY` (every task), `FAMILY:7` (one task), `FAMILY:0..100` (a half-open range),
//! `FAMILY:pong,breakout` or `FAMILY:3,5,9` (a list of names or indices), `FAMILY:train-5` (a
//! named set the env plugin offers, since plugin-api 0.2.1). Ranges, lists and sets combine:
//! `coinrun:0..10,20,30..32`, `atari:train-5,alien`.

use metarl_plugin_api::types::{NamedTaskSet, ReferenceScores, TaskFamily};

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

/// Checks the named sets an env plugin offers against its families: a known family, task ids
/// in range and not repeated, a name that is neither another set's of that family nor one of
/// its tasks' (so that a selector's names stay unambiguous).
pub fn check_sets(families: &[TaskFamily], sets: &[NamedTaskSet]) -> Result<(), String> {
    for (i, set) in sets.iter().enumerate() {
        let at = format!("task set '{}' of family '{}'", set.name, set.family);
        let family = families.iter().find(|f| f.name == set.family).ok_or_else(|| format!("{at}: no such family"))?;
        if set.name.is_empty() || set.name.contains([',', ':']) || set.name.contains("..") || set.name.parse::<u64>().is_ok() {
            return Err(format!("{at}: a set name must be non-empty and not an index, range or list"));
        }
        if set.tasks.is_empty() {
            return Err(format!("{at}: holds no task"));
        }
        if let Some(t) = set.tasks.iter().find(|&&t| t >= family.tasks.len()) {
            return Err(format!("{at}: task {t} is out of range (the family has {})", family.tasks.len()));
        }
        let mut sorted = set.tasks.to_vec();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("{at}: task '{}' is listed twice", task_name(family, w[0])));
        }
        if family.tasks.names.contains(&set.name) {
            return Err(format!("{at}: the name is also one of the family's tasks"));
        }
        if sets[..i].iter().any(|o| o.family == set.family && o.name == set.name) {
            return Err(format!("{at}: offered twice"));
        }
    }
    Ok(())
}

/// Checks the reference scores an env plugin supplies (0.2.2): a known family, each family
/// once, a name, ids in range, each task once, finite pairs with `high != low`.
pub fn check_references(families: &[TaskFamily], refs: &[ReferenceScores]) -> Result<(), String> {
    for (i, r) in refs.iter().enumerate() {
        let at = format!("reference scores of family '{}'", r.family);
        let family = families.iter().find(|f| f.name == r.family).ok_or_else(|| format!("{at}: no such family"))?;
        if refs[..i].iter().any(|o| o.family == r.family) {
            return Err(format!("{at}: supplied twice"));
        }
        if r.name.trim().is_empty() {
            return Err(format!("{at}: no name for the normalised score"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in r.tasks.iter() {
            if t.task >= family.tasks.len() {
                return Err(format!("{at}: task {} is out of range (the family has {})", t.task, family.tasks.len()));
            }
            let name = task_name(family, t.task);
            if !seen.insert(t.task) {
                return Err(format!("{at}: task '{name}' is listed twice"));
            }
            if !(t.low.is_finite() && t.high.is_finite()) || t.low == t.high {
                return Err(format!("{at}: task '{name}' needs two different finite scores, got [{}, {}]", t.low, t.high));
            }
        }
    }
    Ok(())
}

/// Resolves `selector` against the families an env plugin offers and its named `sets`.
pub fn resolve(selector: &str, families: &[TaskFamily], sets: &[NamedTaskSet]) -> Result<TaskSelection, String> {
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
    let family_sets: Vec<&NamedTaskSet> = sets.iter().filter(|s| s.family == fam_name).collect();
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
        } else if let Some(set) = family_sets.iter().find(|s| s.name == part) {
            tasks.extend(set.tasks.iter().copied());
        } else {
            let names = &family.tasks.names;
            let set_names = || list_names(family_sets.iter().map(|s| s.name.to_string()));
            if names.is_empty() {
                let sets = if family_sets.is_empty() { String::new() } else { format!(" or a set ({})", set_names()) };
                return Err(format!(
                    "task selector '{selector}': '{part}' is not an index; tasks of '{fam_name}' are numbered 0..{count}{sets}"
                ));
            }
            let i = names.iter().position(|n| n.as_str() == part).ok_or_else(|| {
                let sets = if family_sets.is_empty() { String::new() } else { format!("; sets: {}", set_names()) };
                format!(
                    "unknown task '{part}' in family '{fam_name}' (valid: {}{sets})",
                    list_names(names.iter().map(|n| n.to_string()))
                )
            })?;
            tasks.push(i as u64);
        }
    }
    let mut sorted = tasks.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("task selector '{selector}': task '{}' is listed twice", task_name(family, w[0])));
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
        assert_eq!(resolve("levels", &fams(), &[]).unwrap().tasks, Vec::<u64>::new());
        assert_eq!(resolve("levels:3", &fams(), &[]).unwrap().tasks, vec![3]);
        assert_eq!(resolve("levels:0..3,10", &fams(), &[]).unwrap().tasks, vec![0, 1, 2, 10]);
        assert_eq!(resolve("games:breakout,pong", &fams(), &[]).unwrap().tasks, vec![1, 0]);
    }

    #[test]
    fn errors_name_the_fault() {
        assert!(resolve("nope:1", &fams(), &[]).unwrap_err().contains("unknown task family 'nope' (valid: levels, games)"));
        assert!(resolve("levels:5..2", &fams(), &[]).unwrap_err().contains("empty range"));
        assert!(resolve("levels:0..2000", &fams(), &[]).unwrap_err().contains("exceeds the 1000 tasks"));
        assert!(resolve("games:tetris", &fams(), &[]).unwrap_err().contains("unknown task 'tetris' in family 'games' (valid: pong, breakout)"));
        assert!(resolve("levels:1,1", &fams(), &[]).unwrap_err().contains("task '1' is listed twice"));
    }

    fn sets() -> Vec<NamedTaskSet> {
        vec![NamedTaskSet::new("games", "both", "", vec![1, 0]), NamedTaskSet::new("levels", "first-ten", "", (0..10).collect())]
    }

    #[test]
    fn named_sets_expand_in_place_and_combine() {
        assert_eq!(resolve("games:both", &fams(), &sets()).unwrap().tasks, vec![1, 0]);
        assert_eq!(resolve("levels:first-ten,20", &fams(), &sets()).unwrap().tasks, [(0..10).collect(), vec![20]].concat());
        // A set belongs to its family only.
        let e = resolve("games:first-ten", &fams(), &sets()).unwrap_err();
        assert!(e.contains("unknown task 'first-ten' in family 'games' (valid: pong, breakout; sets: both)"), "{e}");
        let e = resolve("levels:both", &fams(), &sets()).unwrap_err();
        assert!(e.contains("'both' is not an index; tasks of 'levels' are numbered 0..1000 or a set (first-ten)"), "{e}");
        let e = resolve("games:both,pong", &fams(), &sets()).unwrap_err();
        assert!(e.contains("task 'pong' is listed twice"), "{e}");
    }

    #[test]
    fn bad_sets_are_refused_with_their_name() {
        let check = |set: NamedTaskSet| check_sets(&fams(), &[set]).unwrap_err();
        assert!(check(NamedTaskSet::new("nope", "s", "", vec![0])).contains("task set 's' of family 'nope': no such family"));
        assert!(check(NamedTaskSet::new("games", "s", "", vec![0, 2])).contains("task 2 is out of range (the family has 2)"));
        assert!(check(NamedTaskSet::new("games", "s", "", vec![0, 0])).contains("task 'pong' is listed twice"));
        assert!(check(NamedTaskSet::new("games", "pong", "", vec![0])).contains("also one of the family's tasks"));
        assert!(check(NamedTaskSet::new("games", "s", "", vec![])).contains("holds no task"));
        for name in ["", "3", "a,b", "0..2", "a:b"] {
            assert!(check(NamedTaskSet::new("levels", name, "", vec![0])).contains("not an index, range or list"), "{name:?}");
        }
        let twice = [NamedTaskSet::new("games", "s", "", vec![0]), NamedTaskSet::new("games", "s", "", vec![1])];
        assert!(check_sets(&fams(), &twice).unwrap_err().contains("offered twice"));
        assert_eq!(check_sets(&fams(), &sets()), Ok(()));
    }
}
