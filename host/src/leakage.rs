//! Train/test leakage: held-out tasks that look exactly like a training task.
//!
//! Different task seeds can produce the same level (openai/procgen#100 reports about 24% of
//! CoinRun layouts repeating in easy mode), which would quietly turn a "held-out" task into a
//! training task. The check renders each task's first frame through the env plugin and
//! compares them; it works for any env plugin.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use indicatif::{ProgressBar, ProgressStyle};
use metarl_plugin_api::env::EnvRequest;

use metarl_plugin_kit::buf::Data;

use crate::envrun::{self, call};
use crate::loader::Plugin;

/// Result of a leakage check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakageReport {
    /// Number of held-out tasks checked.
    pub test_tasks: usize,
    /// `(held-out task, training task)` pairs with identical first frames, one per leaked
    /// held-out task.
    pub leaked: Vec<(u64, u64)>,
}

impl LeakageReport {
    /// One line for people.
    pub fn summary(&self) -> String {
        let examples: Vec<String> = self.leaked.iter().take(5).map(|(t, r)| format!("{t}={r}")).collect();
        format!(
            "{} of {} held-out tasks have a first frame identical to a training task's{}",
            self.leaked.len(),
            self.test_tasks,
            if examples.is_empty() { String::new() } else { format!(" (held-out=train: {})", examples.join(", ")) }
        )
    }
}

/// Hash of the first observation of `task` (one env, fixed seed).
pub fn first_frame(plugin: &Plugin, family: &str, config: &str, task: u64) -> anyhow::Result<u64> {
    let req = EnvRequest { family: family.into(), tasks: vec![task].into(), num_envs: 1, trials: 1, seed: 0, threads: 1, config: config.into() };
    let mut env = envrun::open(plugin, &req)?;
    call(&plugin.name, env.reset(0))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for part in &env.obs.parts {
        match part {
            Data::U8(v) => v.hash(&mut h),
            Data::F32(v) => v.iter().for_each(|x| x.to_bits().hash(&mut h)),
            Data::I32(v) => v.hash(&mut h),
        }
    }
    Ok(h.finish())
}

/// Compares the first frames of `test` tasks against those of `train` tasks.
pub fn check(plugin: &Plugin, family: &str, config: &str, train: &[u64], test: &[u64]) -> anyhow::Result<LeakageReport> {
    let bar = ProgressBar::new((train.len() + test.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("  leakage check [{bar:30}] {pos}/{len} first frames  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut seen: HashMap<u64, u64> = HashMap::with_capacity(train.len());
    for &t in train {
        seen.entry(first_frame(plugin, family, config, t)?).or_insert(t);
        bar.inc(1);
    }
    let mut leaked = Vec::new();
    for &t in test {
        if let Some(&r) = seen.get(&first_frame(plugin, family, config, t)?) {
            leaked.push((t, r));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(LeakageReport { test_tasks: test.len(), leaked })
}
