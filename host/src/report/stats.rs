//! Mean and standard error across seeds, step grids and grouping: the statistics behind the
//! summary tables and the curve figures (the paper's; see the module docs of [`super`] for
//! how NaNs and uneven grids are handled).

use std::collections::HashMap;

use super::{AggregatedCurve, Curve, SummaryRow};

/// Mean and standard error of the non-NaN values, and how many there were.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Stat {
    pub(super) mean: f64,
    pub(super) se: f64,
    pub(super) n: usize,
}

impl Stat {
    fn pair(self) -> (f64, f64) {
        (self.mean, self.se)
    }
}

pub(super) fn mean_se(values: impl IntoIterator<Item = f64>) -> Stat {
    let xs: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
    let n = xs.len();
    if n == 0 {
        return Stat {
            mean: f64::NAN,
            se: f64::NAN,
            n,
        };
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let se = if n == 1 {
        0.0
    } else {
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (var / n as f64).sqrt()
    };
    Stat { mean, se, n }
}

/// Trapezoid area over the non-NaN points divided by their step range; a lone point is its
/// own mean.
fn mean_over_steps(steps: &[u64], values: &[f64]) -> f64 {
    let pts: Vec<(f64, f64)> = steps
        .iter()
        .zip(values)
        .filter(|(_, v)| !v.is_nan())
        .map(|(&s, &v)| (s as f64, v))
        .collect();
    match pts.as_slice() {
        [] => f64::NAN,
        [(_, v)] => *v,
        [first, .., last] => {
            let area: f64 = pts
                .windows(2)
                .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
                .sum();
            area / (last.0 - first.0)
        }
    }
}

/// `points` sorted by step, with repeated steps merged by a NaN-skipping mean.
fn normalized(points: &[(u64, f64)]) -> Vec<(u64, f64)> {
    let mut sorted = points.to_vec();
    sorted.sort_by_key(|p| p.0);
    let mut out: Vec<(u64, f64)> = Vec::with_capacity(sorted.len());
    let mut i = 0;
    while i < sorted.len() {
        let step = sorted[i].0;
        let j = i + sorted[i..].iter().take_while(|p| p.0 == step).count();
        out.push((step, mean_se(sorted[i..j].iter().map(|p| p.1)).mean));
        i = j;
    }
    out
}

/// Linear interpolation of `points` at each grid step; NaN outside the curve's step range.
fn resample(points: &[(u64, f64)], grid: &[u64]) -> Vec<f64> {
    let pts = normalized(points);
    grid.iter()
        .map(|&s| match pts.binary_search_by_key(&s, |p| p.0) {
            Ok(i) => pts[i].1,
            Err(i) if i == 0 || i == pts.len() => f64::NAN,
            Err(i) => {
                let ((s0, v0), (s1, v1)) = (pts[i - 1], pts[i]);
                let t = (s - s0) as f64 / (s1 - s0) as f64;
                v0 + t * (v1 - v0)
            }
        })
        .collect()
}

/// One (panel, method): its step grid and each seed's task-averaged curve on it.
struct Group<'a> {
    panel: &'a str,
    method: &'a str,
    steps: Vec<u64>,
    /// One task-averaged curve per distinct seed, in first-appearance order.
    seed_curves: Vec<Vec<f64>>,
}

/// Index of `key` in `order`, appending it on first sight.
pub(super) fn first_appearance<'a>(order: &mut Vec<&'a str>, key: &'a str) -> usize {
    order.iter().position(|k| *k == key).unwrap_or_else(|| {
        order.push(key);
        order.len() - 1
    })
}

/// The curves of each (panel, method), sorted by panel then method, each in first-appearance
/// order; within a group, curves keep their order.
fn members(curves: &[Curve]) -> Vec<(&str, &str, Vec<&Curve>)> {
    let (mut panels, mut methods) = (Vec::new(), Vec::new());
    let mut members: Vec<((usize, usize), Vec<&Curve>)> = Vec::new();
    let mut index: HashMap<(usize, usize), usize> = HashMap::new();
    for c in curves {
        let key = (
            first_appearance(&mut panels, &c.panel),
            first_appearance(&mut methods, &c.method),
        );
        let slot = *index.entry(key).or_insert_with(|| {
            members.push((key, Vec::new()));
            members.len() - 1
        });
        members[slot].1.push(c);
    }
    members.sort_by_key(|(key, _)| *key);
    members
        .into_iter()
        .map(|((p, m), group)| (panels[p], methods[m], group))
        .collect()
}

/// Groups by (panel, method), sorted by panel then method, each in first-appearance order.
fn groups(curves: &[Curve]) -> Vec<Group<'_>> {
    members(curves)
        .into_iter()
        .map(|(panel, method, group)| {
            let mut steps: Vec<u64> = group.iter().flat_map(|c| c.points.iter().map(|p| p.0)).collect();
            steps.sort_unstable();
            steps.dedup();
            let mut seeds: Vec<u64> = Vec::new();
            let mut per_seed: Vec<Vec<Vec<f64>>> = Vec::new();
            for c in &group {
                let slot = seeds.iter().position(|&s| s == c.seed).unwrap_or_else(|| {
                    seeds.push(c.seed);
                    per_seed.push(Vec::new());
                    seeds.len() - 1
                });
                per_seed[slot].push(resample(&c.points, &steps));
            }
            let seed_curves = per_seed
                .iter()
                .map(|tasks| {
                    (0..steps.len())
                        .map(|i| mean_se(tasks.iter().map(|t| t[i])).mean)
                        .collect()
                })
                .collect();
            Group {
                panel,
                method,
                steps,
                seed_curves,
            }
        })
        .collect()
}

/// Summary statistics with the number of seeds behind each.
pub(super) struct SummaryStats {
    pub(super) row: SummaryRow,
    pub(super) zero_shot: Stat,
    pub(super) final_return: Stat,
    pub(super) auc: Stat,
}

pub(super) fn summary_stats(curves: &[Curve]) -> Vec<SummaryStats> {
    groups(curves)
        .into_iter()
        .map(|g| {
            let zero_shot = mean_se(
                g.seed_curves
                    .iter()
                    .map(|c| c.first().copied().unwrap_or(f64::NAN)),
            );
            let final_return = mean_se(
                g.seed_curves
                    .iter()
                    .map(|c| c.last().copied().unwrap_or(f64::NAN)),
            );
            let auc = mean_se(g.seed_curves.iter().map(|c| mean_over_steps(&g.steps, c)));
            let row = SummaryRow {
                panel: g.panel.to_string(),
                method: g.method.to_string(),
                seeds: g.seed_curves.len(),
                zero_shot: zero_shot.pair(),
                final_return: final_return.pair(),
                auc: auc.pair(),
            };
            SummaryStats {
                row,
                zero_shot,
                final_return,
                auc,
            }
        })
        .collect()
}

/// One row per (panel, method), sorted by panel then method, each in first-appearance order.
pub fn summarize(curves: &[Curve]) -> Vec<SummaryRow> {
    summary_stats(curves).into_iter().map(|s| s.row).collect()
}

/// One curve per (panel, method), in the order of [`summarize`].
pub fn aggregate(curves: &[Curve]) -> Vec<AggregatedCurve> {
    groups(curves)
        .into_iter()
        .map(|g| {
            let stats: Vec<Stat> = (0..g.steps.len())
                .map(|i| mean_se(g.seed_curves.iter().map(|c| c[i])))
                .collect();
            AggregatedCurve {
                panel: g.panel.to_string(),
                method: g.method.to_string(),
                seeds: g.seed_curves.len(),
                mean: stats.iter().map(|s| s.mean).collect(),
                se: stats.iter().map(|s| s.se).collect(),
                steps: g.steps,
            }
        })
        .collect()
}


/// The final scores of one (panel, method), by held-out task: what the aggregate statistics
/// ([`super::rliable`]) are computed over.
pub(super) struct FinalScores<'a> {
    pub(super) panel: &'a str,
    pub(super) method: &'a str,
    /// Number of distinct seeds among the group's curves.
    pub(super) seeds: usize,
    /// Each task with the final scores of its curves; tasks ordered by name and runs by seed,
    /// so that neither the statistics nor their bootstrap depend on the order the curves came
    /// in. A curve whose final value is NaN is left out.
    pub(super) tasks: Vec<(&'a str, Vec<f64>)>,
}

/// Per (panel, method), in the order of [`summarize`], each curve's final value: its value at
/// its own last step (a curve says nothing past it), as one run's score on its task.
pub(super) fn final_scores(curves: &[Curve]) -> Vec<FinalScores<'_>> {
    members(curves)
        .into_iter()
        .map(|(panel, method, group)| {
            let mut seeds: Vec<u64> = group.iter().map(|c| c.seed).collect();
            seeds.sort_unstable();
            seeds.dedup();
            let mut tasks: Vec<(&str, Vec<(u64, f64)>)> = Vec::new();
            for c in &group {
                let slot = match tasks.iter().position(|(t, _)| *t == c.task) {
                    Some(i) => i,
                    None => {
                        tasks.push((&c.task, Vec::new()));
                        tasks.len() - 1
                    }
                };
                let last = normalized(&c.points).last().map_or(f64::NAN, |p| p.1);
                if !last.is_nan() {
                    tasks[slot].1.push((c.seed, last));
                }
            }
            tasks.sort_by_key(|t| t.0);
            let tasks = tasks
                .into_iter()
                .map(|(task, mut runs)| {
                    runs.sort_by_key(|r| r.0);
                    (task, runs.into_iter().map(|r| r.1).collect())
                })
                .collect();
            FinalScores { panel, method, seeds: seeds.len(), tasks }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tables::summary_markdown;
    use super::super::test_curves::*;
    use super::*;

    #[test]
    fn means_and_standard_errors_match_a_hand_computation() {
        let rows = summarize(&study());
        let third = 1.0 / 3f64.sqrt(); // SE of three values one apart: sd 1 over sqrt(3)
        assert_eq!(
            rows.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
            ["reptile", "pre+ft"]
        );

        let reptile = &rows[0];
        assert_eq!(reptile.seeds, 3);
        assert_pair(reptile.zero_shot, (2.0, third), "reptile zero-shot");
        assert_pair(reptile.final_return, (4.0, third), "reptile final");
        // Per seed: ((2s+3)/2*10 + (2s+5)/2*20) / 30 = s + 13/6.
        assert_pair(reptile.auc, (1.0 + 13.0 / 6.0, third), "reptile AUC");

        let pre = &rows[1];
        assert_pair(pre.zero_shot, (3.0, third), "pre+ft zero-shot");
        assert_pair(pre.final_return, (7.0, third), "pre+ft final");
        // Trapezoid areas 130, 160, 235 over a range of 30 (uniform spacing would give
        // 4, 5, 7.5 instead): mean 175/30; deviations -45, -15, 60 give variance 2925.
        assert_pair(
            pre.auc,
            (175.0 / 30.0, (2925f64 / 3.0).sqrt() / 30.0),
            "pre+ft AUC",
        );

        let curves = aggregate(&study());
        let pre = &curves[1];
        assert_eq!(pre.steps, [0, 10, 30]);
        // Step 10: seeds 4, 5, 9 -> mean 6, variance (4+1+9)/2 = 7.
        assert!(
            close(pre.mean[1], 6.0) && close(pre.se[1], (7f64 / 3.0).sqrt()),
            "{pre:?}"
        );
        assert!(close(pre.mean[2], 7.0) && close(pre.se[2], third), "{pre:?}");
    }

    #[test]
    fn nan_points_are_skipped_and_one_seed_has_zero_se() {
        let curves = [
            curve("p", "m", 7, "a", &[(0, 1.0), (10, f64::NAN), (20, 3.0)]),
            curve("p", "m", 7, "b", &[(0, 3.0), (10, 4.0), (20, f64::NAN)]),
        ];
        let agg = &aggregate(&curves)[0];
        assert_eq!(
            agg.mean,
            [2.0, 4.0, 3.0],
            "a NaN task is left out of the task average"
        );
        assert_eq!(agg.se, [0.0, 0.0, 0.0]);
        let row = &summarize(&curves)[0];
        assert_eq!(row.seeds, 1);
        assert_eq!((row.zero_shot, row.final_return), ((2.0, 0.0), (3.0, 0.0)));
        assert_pair(row.auc, ((30.0 + 35.0) / 20.0, 0.0), "AUC over [2, 4, 3]");

        // A step where no task has a value stays NaN, and the AUC bridges it.
        let gap = [curve("p", "m", 1, "a", &[(0, 2.0), (10, f64::NAN), (20, 4.0)])];
        assert!(aggregate(&gap)[0].mean[1].is_nan());
        assert_pair(summarize(&gap)[0].auc, (3.0, 0.0), "AUC across a gap");

        let stats = summary_stats(&curves);
        let md = summary_markdown("t", "return", &stats);
        assert!(
            md.contains("| p | m | 1 | 2.00 ± 0.00 (n=1) | 3.00 ± 0.00 (n=1) | 3.25 ± 0.00 (n=1) |"),
            "{md}"
        );
    }

    #[test]
    fn mismatched_grids_are_interpolated_onto_their_union() {
        let curves = [
            curve("p", "m", 0, "a", &[(0, 0.0), (10, 1.0), (20, 2.0)]),
            curve("p", "m", 0, "b", &[(0, 4.0), (20, 8.0)]), // 6 at step 10
            curve("p", "m", 1, "a", &[(0, 2.0), (10, 2.0)]), // nothing at step 20
        ];
        let agg = &aggregate(&curves)[0];
        assert_eq!(agg.steps, [0, 10, 20]);
        // Seed 0 averages [2, 3.5, 5]; seed 1 is [2, 2, NaN].
        assert_eq!(agg.mean, [2.0, 2.75, 5.0]);
        assert_eq!(agg.se[2], 0.0, "only seed 0 reaches step 20");
        let md = summary_markdown("t", "return", &summary_stats(&curves));
        assert!(
            md.contains("| 5.00 ± 0.00 (n=1) |"),
            "the final value rests on one seed: {md}"
        );
    }

    #[test]
    fn rows_follow_panel_then_method_first_appearance() {
        let p = &[(0, 1.0)];
        let curves = [
            curve("100", "b", 0, "t", p),
            curve("10", "a", 0, "t", p),
            curve("100", "a", 0, "t", p),
            curve("10", "b", 0, "t", p),
        ];
        let order: Vec<(String, String)> = summarize(&curves)
            .into_iter()
            .map(|r| (r.panel, r.method))
            .collect();
        let want = [("100", "b"), ("100", "a"), ("10", "b"), ("10", "a")];
        assert_eq!(order, want.map(|(p, m)| (p.to_string(), m.to_string())));
    }
}
