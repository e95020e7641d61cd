//! Meta-World v3's 50 tasks and its benchmark suites, by name (Meta-World 3.1.1's
//! `ALL_V3_ENVIRONMENTS`, `ML10`, `ML45` and `MT10`, without the `-v3` suffix).

/// The family's name; its tasks are [`TASKS`], in this order.
pub const FAMILY: &str = "metaworld";

/// Every v3 task, in Meta-World's own order: task `i` is `TASKS[i]`.
pub const TASKS: [&str; 50] = [
    "assembly", "basketball", "bin-picking", "box-close", "button-press-topdown", "button-press-topdown-wall",
    "button-press", "button-press-wall", "coffee-button", "coffee-pull", "coffee-push", "dial-turn", "disassemble",
    "door-close", "door-lock", "door-open", "door-unlock", "hand-insert", "drawer-close", "drawer-open", "faucet-open",
    "faucet-close", "hammer", "handle-press-side", "handle-press", "handle-pull-side", "handle-pull", "lever-pull",
    "pick-place-wall", "pick-out-of-hole", "pick-place", "plate-slide", "plate-slide-side", "plate-slide-back",
    "plate-slide-back-side", "peg-insert-side", "peg-unplug-side", "soccer", "stick-push", "stick-pull", "push",
    "push-wall", "push-back", "reach", "reach-wall", "shelf-place", "sweep-into", "sweep", "window-open", "window-close",
];

/// A named suite of tasks.
pub struct Suite {
    /// Its name in selectors (`metaworld:ml10-train`).
    pub name: &'static str,
    /// One line for `plugins list`.
    pub description: &'static str,
    /// Its tasks.
    pub tasks: &'static [&'static str],
}

const ML10_TRAIN: [&str; 10] = [
    "reach", "push", "pick-place", "door-open", "drawer-close", "button-press-topdown", "peg-insert-side", "window-open",
    "sweep", "basketball",
];
const ML10_TEST: [&str; 5] = ["drawer-open", "door-close", "shelf-place", "sweep-into", "lever-pull"];
const ML45_TEST: [&str; 5] = ["bin-picking", "box-close", "hand-insert", "door-lock", "door-unlock"];
const MT10: [&str; 10] = [
    "reach", "push", "pick-place", "door-open", "drawer-open", "drawer-close", "button-press-topdown", "peg-insert-side",
    "window-open", "window-close",
];

/// ML45's training tasks: every task but its five test tasks.
fn ml45_train() -> Vec<&'static str> {
    TASKS.iter().copied().filter(|t| !ML45_TEST.contains(t)).collect()
}

/// The suites, with their task ids.
pub fn suites() -> Vec<(Suite, Vec<u64>)> {
    let ids = |names: &[&str]| names.iter().map(|n| index(n).expect("a suite's task is a Meta-World task")).collect();
    let ml45: &'static [&'static str] = Box::leak(ml45_train().into_boxed_slice());
    [
        Suite { name: "ml10-train", description: "ML10's 10 training tasks", tasks: &ML10_TRAIN },
        Suite { name: "ml10-test", description: "ML10's 5 held-out tasks", tasks: &ML10_TEST },
        Suite { name: "ml45-train", description: "ML45's 45 training tasks", tasks: ml45 },
        Suite { name: "ml45-test", description: "ML45's 5 held-out tasks", tasks: &ML45_TEST },
        Suite { name: "mt10", description: "MT10's 10 tasks", tasks: &MT10 },
    ]
    .into_iter()
    .map(|s| {
        let t = ids(s.tasks);
        (s, t)
    })
    .collect()
}

/// The id of task `name`.
pub fn index(name: &str) -> Option<u64> {
    TASKS.iter().position(|t| *t == name).map(|i| i as u64)
}
