//! Study results from adaptation curves: the table and the figure of the reference paper's
//! Figure 4 (test return against adaptation env steps, one panel per number of training
//! levels, one line per method with a ±SE band across seeds).
//!
//! **Aggregation** follows the paper. For each (panel, method) and each seed, the curves of the
//! held-out tasks are averaged step by step; then the seeds' task-averaged curves give a mean
//! and a standard error (sample std with n-1, over sqrt(n); 0 for one seed). The summary
//! statistics (zero-shot, final, AUC) are computed per seed from its task-averaged curve and
//! then summarised across seeds the same way, so every ± is seed-to-seed spread.
//!
//! **Step grids.** All curves of one (panel, method) are linearly interpolated onto the union
//! of their steps, without extrapolation: a curve says nothing outside its own step range. In
//! normal use they share one grid and this is the identity. Points are sorted by step first;
//! repeated steps in one curve are averaged.
//!
//! **Missing values.** A NaN return means no episode finished in that window. NaNs are skipped
//! wherever values are averaged (over tasks, over seeds); a value interpolated next to a NaN
//! is NaN too, and an average of nothing is NaN. A seed whose zero-shot or final value is NaN
//! does not count for that statistic (the table then shows the smaller `n=`); its AUC covers
//! the steps where it has values. Tables show NaN as `n/a`; plotted lines break there.
//!
//! **Aggregates** ([`write_aggregates`]) are the interval estimates Agarwal et al. (2021)
//! recommend with few seeds: over the matrix of final scores (one per seed and held-out task),
//! each method's mean, median, interquartile mean and optimality gap, and the probability that
//! one method beats another, each with a 95% stratified-bootstrap confidence interval;
//! [`rliable`] defines them.
//!
//! Code map: `stats` (mean ± SE, interpolation onto step grids, grouping), [`rliable`]
//! (aggregate statistics and the bootstrap), `tables` (markdown and CSV), `figures`
//! (hand-written SVG, PNG through resvg). This file holds the types and the functions that
//! write files.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

mod figures;
pub mod rliable;
mod stats;
mod tables;

pub use figures::{render_svg, render_svg_labelled};
pub use stats::{aggregate, summarize};

use figures::render_png;
use tables::{aggregates_csv, aggregates_markdown, summary_csv, summary_markdown, AggregateRow, ImprovementRow};

/// One adaptation curve: a method's test return on one held-out task, for one seed, as
/// adaptation goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Which figure panel the curve belongs to (in the paper: the number of training levels).
    pub panel: String,
    /// The method, e.g. `multi-task + fine-tune` or `reptile`; one line (and colour) per method.
    pub method: String,
    /// Training seed; seeds are the unit of the standard error.
    pub seed: u64,
    /// The held-out task the curve was measured on; tasks are averaged within a seed.
    pub task: String,
    /// (adaptation env steps, mean episode return), starting with the zero-shot point at step 0.
    /// A NaN return means no episode finished in that window (`null` in JSON).
    #[serde(deserialize_with = "points_with_gaps")]
    pub points: Vec<(u64, f64)>,
}

/// The curve of one (panel, method): task-averaged per seed, then mean and standard error
/// across seeds at every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregatedCurve {
    /// Figure panel.
    pub panel: String,
    /// Method.
    pub method: String,
    /// Number of distinct seeds.
    pub seeds: usize,
    /// The step grid: the union of the steps of the group's curves, ascending.
    pub steps: Vec<u64>,
    /// Mean across seeds at each step (NaN where no seed has a value).
    pub mean: Vec<f64>,
    /// Standard error across seeds at each step (0 with one seed, NaN with none).
    pub se: Vec<f64>,
}

/// One row of the results table; every pair is (mean, standard error) across seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Figure panel.
    pub panel: String,
    /// Method.
    pub method: String,
    /// Number of distinct seeds.
    pub seeds: usize,
    /// Return at the first step (before any adaptation).
    pub zero_shot: (f64, f64),
    /// Return at the last step.
    pub final_return: (f64, f64),
    /// Area under the curve divided by its step range: the mean return over adaptation.
    pub auc: (f64, f64),
}

/// Where [`write_report`] put its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    /// The results table in markdown.
    pub summary_md: PathBuf,
    /// The results table as CSV.
    pub summary_csv: PathBuf,
    /// The figure as SVG.
    pub svg: PathBuf,
    /// The figure rasterised to PNG.
    pub png: PathBuf,
}

/// Reads curve points back from JSON, where serde_json writes a NaN as `null`.
fn points_with_gaps<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(u64, f64)>, D::Error> {
    let points: Vec<(u64, Option<f64>)> = Vec::deserialize(d)?;
    Ok(points.into_iter().map(|(step, v)| (step, v.unwrap_or(f64::NAN))).collect())
}

/// Which scores the aggregates are computed over; the table says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreKind<'a> {
    /// Test returns as they are.
    Return,
    /// (return − low) / (high − low) per held-out task.
    Normalised {
        /// What the score is called (`human-normalised score`).
        name: &'a str,
        /// Where the references come from, in words.
        source: &'a str,
    },
    /// Success rates in [0, 1] (the manipulation benchmarks' measure): already on one scale
    /// across tasks, with 1 the optimality gap's natural target.
    Success,
}

impl ScoreKind<'_> {
    /// The prefix of the aggregate files: `success-` for success rates, none otherwise.
    pub fn file_prefix(&self) -> &'static str {
        match self {
            ScoreKind::Success => "success-",
            _ => "",
        }
    }
}

/// Where [`write_aggregates`] put its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateFiles {
    /// The aggregate table in markdown.
    pub md: PathBuf,
    /// The aggregate table as CSV, one statistic per line.
    pub csv: PathBuf,
    /// The interval estimates as a figure (`aggregates.svg`; `.png` beside it).
    pub svg: PathBuf,
    /// The performance profiles (`profiles.svg`; `.png` beside it).
    pub profiles_svg: PathBuf,
}

/// Writes one report file whole or not at all: through a temporary file renamed into place,
/// removed again if the write fails (a full disk), so no truncated table or figure is left.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("partial");
    let written = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("writing {}", path.display()))
}

/// Writes `summary.md`, `summary.csv`, `curves.svg` and `curves.png` into `dir` (created if
/// missing).
pub fn write_report(dir: &Path, title: &str, curves: &[Curve]) -> anyhow::Result<ReportFiles> {
    write_metric_report(dir, "", "test return", title, curves)
}

/// [`write_report`] for another metric: files named `{prefix}summary.md`, `{prefix}curves.png`
/// and so on, the figure's y axis labelled `y_label`.
pub fn write_metric_report(dir: &Path, prefix: &str, y_label: &str, title: &str, curves: &[Curve]) -> anyhow::Result<ReportFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = ReportFiles {
        summary_md: dir.join(format!("{prefix}summary.md")),
        summary_csv: dir.join(format!("{prefix}summary.csv")),
        svg: dir.join(format!("{prefix}curves.svg")),
        png: dir.join(format!("{prefix}curves.png")),
    };
    let stats = stats::summary_stats(curves);
    let rows: Vec<SummaryRow> = stats.iter().map(|s| s.row.clone()).collect();
    let svg = render_svg_labelled(title, y_label, &aggregate(curves));
    let png = render_png(&svg)?;
    let write = write_file;
    let what = if y_label == "test return" { "return" } else { y_label };
    write(&files.summary_md, summary_markdown(title, what, &stats).as_bytes())?;
    write(&files.summary_csv, summary_csv(&rows).as_bytes())?;
    write(&files.svg, svg.as_bytes())?;
    write(&files.png, &png)?;
    Ok(files)
}

/// Writes `aggregates.md` and `aggregates.csv` into `dir` (created if missing): per (panel,
/// method), rliable's mean, median, IQM and optimality gap of the curves' final scores (one per
/// seed and held-out task), and the probability of improvement of each method over each other
/// method of its panel, each with a 95% stratified-bootstrap interval from `resamples`
/// resamples. Also the figures: `aggregates.svg`/`.png` (the four interval estimates per method,
/// rliable's aggregate figure) and `profiles.svg`/`.png` (performance profiles: the fraction of
/// runs scoring above each threshold, with 95% bands, one panel per panel). `kind` says what
/// the curves' values are (success rates go to `success-aggregates.*` and
/// `success-profiles.*`); `title` heads every file.
pub fn write_aggregates(
    dir: &Path,
    title: &str,
    kind: ScoreKind<'_>,
    curves: &[Curve],
    resamples: u32,
) -> anyhow::Result<AggregateFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let prefix = kind.file_prefix();
    let files = AggregateFiles {
        md: dir.join(format!("{prefix}aggregates.md")),
        csv: dir.join(format!("{prefix}aggregates.csv")),
        svg: dir.join(format!("{prefix}aggregates.svg")),
        profiles_svg: dir.join(format!("{prefix}profiles.svg")),
    };
    let (rows, better) = aggregate_rows(curves, resamples);
    let write = write_file;
    write(&files.md, aggregates_markdown(&format!("{title}: aggregates of the final scores"), kind, resamples, &rows, &better).as_bytes())?;
    write(&files.csv, aggregates_csv(kind, &rows, &better).as_bytes())?;
    let score = match kind {
        ScoreKind::Return => "final test return",
        ScoreKind::Normalised { name, .. } => name,
        ScoreKind::Success => "final success rate",
    };
    let svg = interval_figure(&format!("{title}: interval estimates (95% CI)"), score, &rows);
    write(&files.svg, svg.as_bytes())?;
    write(&files.svg.with_extension("png"), &figures::render_png(&svg)?)?;
    let svg = profile_figure(&format!("{title}: performance profiles (95% CI)"), score, curves, resamples);
    write(&files.profiles_svg, svg.as_bytes())?;
    write(&files.profiles_svg.with_extension("png"), &figures::render_png(&svg)?)?;
    Ok(files)
}

/// Writes `tasks-curves.svg`/`.png` into `dir`: one panel per held-out task, each with its own
/// y range since tasks score on their own scales, one line per method with its ±SE band
/// across seeds. With one training panel, at most three tasks to a row (the paper's per-game
/// Figure 8); with several, one row per training panel and one column per task (its Figure 6,
/// whose rows are demo counts).
pub fn write_task_figure(dir: &Path, title: &str, curves: &[Curve]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let training_panels = method_order(curves.iter().map(|c| c.panel.as_str()));
    let tasks = {
        let mut t: Vec<&str> = curves.iter().map(|c| c.task.as_str()).collect();
        t.sort_unstable();
        t.dedup();
        t
    };
    // One aggregated curve per (training panel, task, method), relabelled by task.
    let mut relabelled = Vec::new();
    for panel in &training_panels {
        for task in &tasks {
            let label = if training_panels.len() > 1 { format!("{task} ({panel})") } else { task.to_string() };
            let mine: Vec<Curve> =
                curves.iter().filter(|c| c.panel == *panel && c.task == *task).map(|c| Curve { panel: label.clone(), ..c.clone() }).collect();
            relabelled.extend(aggregate(&mine));
        }
    }
    let methods = method_order(relabelled.iter().map(|c: &AggregatedCurve| c.method.as_str()));
    let panels: Vec<figures::Panel> = method_order(relabelled.iter().map(|c| c.panel.as_str()))
        .into_iter()
        .map(|p| figures::Panel {
            title: p.to_string(),
            series: relabelled
                .iter()
                .filter(|c| c.panel == p)
                .map(|c| figures::Series::of_curve(methods.iter().position(|m| *m == c.method).unwrap_or(0), c))
                .collect(),
        })
        .collect();
    // Several training panels: one row each, one column per task (the paper's Figure 6, rows
    // per demo count); one panel: at most three tasks to a row (its Figure 8).
    let columns = if training_panels.len() > 1 { tasks.len().max(1) } else { panels.len().clamp(1, 3) };
    let figure = figures::Figure { title, y_label: "test return", x: figures::XAxis::Steps, methods, panels, columns, shared_y: false };
    let svg = figures::render_figure(&figure);
    let path = dir.join("tasks-curves.svg");
    write_file(&path, svg.as_bytes())?;
    let png = path.with_extension("png");
    write_file(&png, &figures::render_png(&svg)?)?;
    Ok(path)
}

/// Methods in first-appearance order: the colour index of each, as in the curve figures.
fn method_order<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut order = Vec::new();
    for n in names {
        stats::first_appearance(&mut order, n);
    }
    order
}

/// The interval figure of `rows`: median, IQM, mean, optimality gap per (panel, method).
fn interval_figure(title: &str, score: &str, rows: &[AggregateRow]) -> String {
    let methods = method_order(rows.iter().map(|r| r.method.as_str()));
    let panels = method_order(rows.iter().map(|r| r.panel.as_str()));
    let rows: Vec<figures::IntervalRow> = rows
        .iter()
        .map(|r| figures::IntervalRow {
            label: if panels.len() > 1 { format!("{} ({})", r.method, r.panel) } else { r.method.clone() },
            method: methods.iter().position(|m| *m == r.method).unwrap_or(0),
            intervals: match &r.stats {
                Some(a) => vec![Some(&a.median), Some(&a.iqm), Some(&a.mean), Some(&a.optimality_gap)],
                None => vec![None; 4],
            },
        })
        .collect();
    figures::render_intervals(title, score, &["Median", "IQM", "Mean", "Optimality gap"], &rows)
}

/// Thresholds of a performance profile: 101, evenly from the lowest score to the highest.
fn thresholds(scores: impl Iterator<Item = f64>) -> Vec<f64> {
    let (lo, hi) = scores.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    let (lo, hi) = if !lo.is_finite() {
        (0.0, 1.0)
    } else if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    (0..=100).map(|i| lo + (hi - lo) * i as f64 / 100.0).collect()
}

/// The performance profiles of the curves' final scores, one panel per panel, with 95% bands
/// from `resamples` stratified resamples (each bootstrap named `profiles/<panel>/<method>`).
fn profile_figure(title: &str, score: &str, curves: &[Curve], resamples: u32) -> String {
    let groups = stats::final_scores(curves);
    let methods = method_order(groups.iter().map(|g| g.method));
    let mut panels: Vec<figures::Panel> = Vec::new();
    for panel in method_order(groups.iter().map(|g| g.panel)) {
        let members: Vec<_> = groups.iter().filter(|g| g.panel == panel).collect();
        let taus = thresholds(members.iter().flat_map(|g| g.tasks.iter().flat_map(|(_, s)| s.iter().copied())));
        let series = members
            .iter()
            .filter_map(|g| {
                let m = rliable::ScoreMatrix::from_columns(g.tasks.iter().filter(|(_, s)| !s.is_empty()).map(|(_, s)| s.clone()).collect())?;
                let p = rliable::profile_intervals(&m, &taus, resamples, &format!("profiles/{}/{}", g.panel, g.method));
                Some(figures::Series {
                    method: methods.iter().position(|m| *m == g.method).unwrap_or(0),
                    x: taus.clone(),
                    y: p.iter().map(|i| i.estimate).collect(),
                    lo: p.iter().map(|i| i.low).collect(),
                    hi: p.iter().map(|i| i.high).collect(),
                })
            })
            .collect();
        panels.push(figures::Panel { title: panel.to_string(), series });
    }
    let y_label = "fraction of runs with score > τ";
    let columns = panels.len().max(1);
    let x_label = format!("{score} threshold τ");
    figures::render_figure(&figures::Figure {
        title,
        y_label,
        x: figures::XAxis::Threshold(&x_label),
        methods,
        panels,
        columns,
        shared_y: true,
    })
}

/// The aggregate rows of every (panel, method), in the order of [`summarize`], and the
/// probability of improvement of every ordered pair of methods within each panel.
///
/// Every bootstrap draws from a generator named after what it estimates
/// (`aggregates/<panel>/<method>`, `aggregates/<panel>/<a> vs <b>`), so adding a method or a
/// panel changes no other interval, and tasks and runs are ordered by name and seed
/// ([`stats::final_scores`]), so the order of the curves changes none. A pair is resampled
/// under the name of its two labels in sorted order, and P(b > a) is 1 − P(a > b) on the same
/// resamples, so the two rows agree.
fn aggregate_rows(curves: &[Curve], resamples: u32) -> (Vec<AggregateRow>, Vec<ImprovementRow>) {
    let groups = stats::final_scores(curves);
    let matrix = |tasks: &[(&str, Vec<f64>)]| {
        rliable::ScoreMatrix::from_columns(tasks.iter().filter(|(_, s)| !s.is_empty()).map(|(_, s)| s.clone()).collect())
    };
    let rows = groups
        .iter()
        .map(|g| {
            let m = matrix(&g.tasks);
            AggregateRow {
                panel: g.panel.to_string(),
                method: g.method.to_string(),
                seeds: g.seeds,
                tasks: g.tasks.len(),
                scores: m.as_ref().map_or(0, |m| m.scores()),
                stats: m.map(|m| rliable::aggregates(&m, resamples, &format!("aggregates/{}/{}", g.panel, g.method))),
            }
        })
        .collect();
    let mut better = Vec::new();
    for x in &groups {
        for y in groups.iter().filter(|y| y.panel == x.panel && y.method != x.method) {
            // The pair in label order: the resamples do not depend on which of the two is
            // asked about.
            let (a, b) = if x.method < y.method { (x, y) } else { (y, x) };
            let pairs: Vec<(Vec<f64>, Vec<f64>)> = a
                .tasks
                .iter()
                .filter_map(|(t, s)| {
                    let v = &b.tasks.iter().find(|(u, _)| u == t)?.1;
                    (!s.is_empty() && !v.is_empty()).then(|| (s.clone(), v.clone()))
                })
                .collect();
            let scores = pairs.iter().map(|(s, v)| s.len() + v.len()).sum();
            let (xa, xb): (Vec<Vec<f64>>, Vec<Vec<f64>>) = pairs.into_iter().unzip();
            let p = rliable::ScoreMatrix::from_columns(xa).zip(rliable::ScoreMatrix::from_columns(xb)).map(|(ma, mb)| {
                let p = rliable::improvement(&ma, &mb, resamples, &format!("aggregates/{}/{} vs {}", x.panel, a.method, b.method));
                if std::ptr::eq(a, x) {
                    p
                } else {
                    p.complement()
                }
            });
            better.push(ImprovementRow {
                panel: x.panel.to_string(),
                method: x.method.to_string(),
                versus: y.method.to_string(),
                scores,
                p,
            });
        }
    }
    (rows, better)
}

/// Curves shared by the tests of every part of the report.
#[cfg(test)]
mod test_curves {
    use super::*;

    pub(super) fn curve(panel: &str, method: &str, seed: u64, task: &str, points: &[(u64, f64)]) -> Curve {
        Curve {
            panel: panel.into(),
            method: method.into(),
            seed,
            task: task.into(),
            points: points.to_vec(),
        }
    }

    pub(super) fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    pub(super) fn assert_pair(got: (f64, f64), want: (f64, f64), what: &str) {
        assert!(
            close(got.0, want.0) && close(got.1, want.1),
            "{what}: got {got:?}, want {want:?}"
        );
    }

    /// Two methods x 3 seeds x 2 tasks on the uneven grid 0, 10, 30, given in scrambled order.
    ///
    /// "pre+ft" task-averages per seed: s0 [2,4,6], s1 [3,5,7], s2 [4,9,8].
    /// "reptile" seed s: task a [s,s,s], task b [s+2,s+4,s+6] -> average [s+1,s+2,s+3].
    pub(super) fn study() -> Vec<Curve> {
        vec![
            curve("10 levels", "reptile", 1, "a", &[(0, 1.0), (10, 1.0), (30, 1.0)]),
            curve("10 levels", "pre+ft", 0, "a", &[(0, 1.0), (10, 3.0), (30, 5.0)]),
            curve("10 levels", "pre+ft", 0, "b", &[(0, 3.0), (10, 5.0), (30, 7.0)]),
            curve("10 levels", "pre+ft", 1, "a", &[(0, 2.0), (10, 4.0), (30, 10.0)]),
            curve("10 levels", "pre+ft", 1, "b", &[(0, 4.0), (10, 6.0), (30, 4.0)]),
            curve("10 levels", "reptile", 1, "b", &[(0, 3.0), (10, 5.0), (30, 7.0)]),
            curve("10 levels", "pre+ft", 2, "b", &[(30, 9.0), (0, 5.0), (10, 10.0)]),
            curve("10 levels", "pre+ft", 2, "a", &[(0, 3.0), (10, 8.0), (30, 7.0)]),
            curve("10 levels", "reptile", 0, "a", &[(0, 0.0), (10, 0.0), (30, 0.0)]),
            curve("10 levels", "reptile", 0, "b", &[(0, 2.0), (10, 4.0), (30, 6.0)]),
            curve("10 levels", "reptile", 2, "a", &[(0, 2.0), (10, 2.0), (30, 2.0)]),
            curve("10 levels", "reptile", 2, "b", &[(0, 4.0), (10, 6.0), (30, 8.0)]),
        ]
    }

    pub(super) fn realistic() -> Vec<Curve> {
        let methods = ["multi-task + fine-tune", "Reptile", "RL² (from scratch)"];
        let mut curves = Vec::new();
        for (pi, panel) in [
            "10 training levels",
            "100 training levels",
            "1000 training levels",
        ]
        .iter()
        .enumerate()
        {
            for (mi, method) in methods.iter().enumerate() {
                for seed in 0..3u64 {
                    for task in 0..4u64 {
                        let start = [2.5, 1.5, 0.0][mi] + pi as f64 * 1.2;
                        let end = [8.0, 6.5, 5.0][mi] + pi as f64 * 0.5;
                        // Seeds differ a lot more than tasks average out, so the bands show.
                        let seed_offset = [0.0, 0.7, -0.5][seed as usize] * (1.0 + mi as f64 * 0.4);
                        let wobble = ((seed * 7 + task * 3) % 5) as f64 * 0.25 + seed_offset;
                        let points = (0..=8u64)
                            .map(|k| {
                                let t = k as f64 / 8.0;
                                let v =
                                    start + (end - start) * (1.0 - (-3.0 * t).exp()) / (1.0 - (-3f64).exp());
                                (k * 25_000, v + wobble * (1.0 - t * 0.5))
                            })
                            .collect::<Vec<_>>();
                        curves.push(Curve {
                            panel: panel.to_string(),
                            method: method.to_string(),
                            seed,
                            task: format!("coinrun:{}", 500 + task),
                            points,
                        });
                    }
                }
            }
        }
        curves
    }
}

#[cfg(test)]
mod tests {
    use super::figures::{LEFT, LEGEND_ROW, PANEL_W, PLOT_H, PNG_SCALE, RIGHT, TOP};
    use super::test_curves::*;
    use super::*;

    #[test]
    fn write_report_writes_all_four_files() {
        let dir = tempfile::tempdir().unwrap();
        let curves = realistic();
        let files = write_report(
            &dir.path().join("out"),
            "Fine-tuning vs meta-RL on CoinRun",
            &curves,
        )
        .unwrap();

        let md = std::fs::read_to_string(&files.summary_md).unwrap();
        assert!(md.starts_with("# Fine-tuning vs meta-RL on CoinRun\n"));
        assert!(md.contains("| panel | method | seeds | zero-shot | final | AUC |"));
        assert_eq!(
            md.lines().filter(|l| l.starts_with("| 1")).count(),
            9,
            "3 panels x 3 methods"
        );
        let csv = std::fs::read_to_string(&files.summary_csv).unwrap();
        assert_eq!(csv.lines().count(), 1 + 9);

        let svg = std::fs::read_to_string(&files.svg).unwrap();
        assert_eq!(
            svg.matches(r#"class="legend-entry""#).count(),
            3,
            "one legend entry per method"
        );
        assert_eq!(
            svg.matches(r#"class="panel-title""#).count(),
            3,
            "one title per panel"
        );
        for name in [
            "10 training levels",
            "100 training levels",
            "1000 training levels",
            "Reptile",
        ] {
            assert!(svg.contains(&format!(">{name}</text>")), "{name} missing");
        }

        let png = std::fs::read(&files.png).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let width = (LEFT + 3.0 * PANEL_W + RIGHT) * PNG_SCALE as f64;
        let height = (TOP + PLOT_H + 62.0 + LEGEND_ROW + 8.0) * PNG_SCALE as f64;
        assert_eq!(
            (be(&png[16..20]), be(&png[20..24])),
            (width as u32, height as u32)
        );

        let image = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
        let pixels = image.pixels();
        let not_white = pixels
            .iter()
            .filter(|p| (p.red(), p.green(), p.blue()) != (255, 255, 255))
            .count();
        assert!(not_white > pixels.len() / 100, "only {not_white} drawn pixels");
        // The first method's lines come out in its palette colour (#0072B2).
        let blue = pixels
            .iter()
            .filter(|p| (p.red(), p.green(), p.blue()) == (0x00, 0x72, 0xB2))
            .count();
        assert!(blue > 500, "only {blue} pixels of the first method's colour");
    }

    /// Renders the realistic example and an edge-case figure to /tmp for a look:
    /// `cargo test -p metarl --lib report -- --ignored`.
    #[test]
    #[ignore]
    fn sample_report_in_tmp() {
        let title = "Fine-tuning vs meta-RL on CoinRun";
        let files = write_report(Path::new("/tmp/metarl-report-sample"), title, &realistic()).unwrap();
        eprintln!("{}", files.png.display());

        // One point, a flat line broken by NaN, negative returns, ten methods, long names.
        let mut edge = vec![
            curve("one point", "lonely", 0, "t", &[(0, 3.0)]),
            curve(
                "flat & broken",
                "flat",
                0,
                "t",
                &[(0, 1.0), (10, 1.0), (20, f64::NAN), (30, 1.0)],
            ),
        ];
        for m in 0..10u64 {
            for seed in 0..2 {
                let points: Vec<(u64, f64)> = (0..6)
                    .map(|k| (k * 300_000, -500.0 + (m * 40 + k * 60 + seed * 30) as f64))
                    .collect();
                edge.push(curve(
                    "negative returns, a rather long panel title <here>",
                    &format!("method number {m}"),
                    seed,
                    "t",
                    &points,
                ));
            }
        }
        write_report(Path::new("/tmp/metarl-report-edge"), "Edge cases", &edge).unwrap();
    }

    /// Final scores (value at the last step; points given out of order) of two methods on
    /// two tasks, plus a third seed of A whose final value is NaN:
    ///
    /// A, runs x tasks [[0.2, 0.4], [0.6, 0.8]]: task means 0.4, 0.6 -> mean 0.5, median 0.5;
    ///   IQM of 0.2 0.4 0.6 0.8 cuts one from each end -> 0.5; gap 1 - 0.5 = 0.5.
    /// B, [[0.1, 0.3], [0.3, 0.9]]: task means 0.2, 0.6 -> mean 0.4, median 0.4; IQM of
    ///   0.1 0.3 0.3 0.9 -> 0.3; gap 1 - 1.6/4 = 0.6.
    /// P(A > B): t1, A [0.2, 0.6] vs B [0.1, 0.3]: 0.2 beats 0.1, 0.6 beats both -> 3/4;
    ///   t2, A [0.4, 0.8] vs B [0.3, 0.9]: 0.4 and 0.8 beat 0.3 -> 2/4; mean 5/8.
    fn finals() -> Vec<Curve> {
        let c = |method: &str, seed: u64, task: &str, last: f64| {
            curve("p", method, seed, task, &[(10, last), (0, 7.0)])
        };
        vec![
            c("A", 0, "t1", 0.2),
            c("A", 0, "t2", 0.4),
            c("B", 0, "t1", 0.1),
            c("B", 0, "t2", 0.3),
            c("A", 1, "t1", 0.6),
            c("A", 1, "t2", 0.8),
            c("B", 1, "t1", 0.3),
            c("B", 1, "t2", 0.9),
            c("A", 2, "t1", f64::NAN),
        ]
    }

    #[test]
    fn aggregates_are_rliables_statistics_of_the_final_scores() {
        let (rows, better) = aggregate_rows(&finals(), 1000);
        let est = |i: rliable::Interval| i.estimate;
        let a = rows[0].stats.unwrap();
        assert_eq!((rows[0].method.as_str(), rows[0].seeds, rows[0].tasks, rows[0].scores), ("A", 3, 2, 4));
        assert!(close(est(a.mean), 0.5) && close(est(a.median), 0.5) && close(est(a.iqm), 0.5) && close(est(a.optimality_gap), 0.5), "{a:?}");
        let b = rows[1].stats.unwrap();
        assert!(close(est(b.mean), 0.4) && close(est(b.median), 0.4) && close(est(b.iqm), 0.3) && close(est(b.optimality_gap), 0.6), "{b:?}");
        for i in [a.mean, a.median, a.iqm, a.optimality_gap, b.mean, b.iqm] {
            assert!(i.low <= i.estimate && i.estimate <= i.high && i.low < i.high, "{i:?}");
        }
        assert_eq!(better.len(), 2);
        let (ab, ba) = (better[0].p.unwrap(), better[1].p.unwrap());
        assert_eq!((better[0].method.as_str(), better[0].versus.as_str(), better[0].scores), ("A", "B", 8));
        assert!(close(ab.estimate, 0.625), "{ab:?}");
        // P(B > A) comes from the same resamples: the complement, interval mirrored.
        assert!(close(ba.estimate, 0.375) && close(ba.low, 1.0 - ab.high) && close(ba.high, 1.0 - ab.low), "{ab:?} {ba:?}");

        let dir = tempfile::tempdir().unwrap();
        let files = write_aggregates(dir.path(), "T", ScoreKind::Return, &finals(), 1000).unwrap();
        for figure in [&files.svg, &files.profiles_svg] {
            let svg = std::fs::read_to_string(figure).unwrap();
            assert!(svg.contains("<rect") && !svg.contains("NaN") && figure.with_extension("png").exists(), "{}", figure.display());
        }
        let md = std::fs::read_to_string(&files.md).unwrap();
        assert!(md.starts_with("# T: aggregates of the final scores\n\nScores: test returns as they are"), "{md}");
        assert!(md.contains("| p | A | 4 of 3 × 2 | 0.50 ["), "one of A's six scores is NaN: {md}");
        assert!(md.contains("| p | B | 2 × 2 | 0.40 ["), "{md}");
        assert!(md.contains("1000 stratified bootstrap resamples"), "{md}");
        let csv = std::fs::read_to_string(&files.csv).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "panel,method,statistic,versus,estimate,ci_low,ci_high,scores,score");
        assert_eq!(lines.len(), 1 + 2 * 4 + 2);
        assert!(lines[3].starts_with("p,A,iqm,,0.5,") && lines[3].ends_with(",4,return"), "{csv}");
        assert!(lines[9].starts_with("p,A,probability_of_improvement,B,0.625,") && lines[9].ends_with(",8,return"), "{csv}");
        let kind = ScoreKind::Normalised { name: "normalised score", source: "each held-out task's `[report] reference_scores`" };
        let normalised = write_aggregates(dir.path(), "T", kind, &finals(), 1000).unwrap();
        let md = std::fs::read_to_string(&normalised.md).unwrap();
        assert!(md.contains("Scores: normalised score, (return − low) / (high − low) with each held-out task's `[report] reference_scores`"), "{md}");
        assert!(std::fs::read_to_string(normalised.csv).unwrap().lines().nth(1).unwrap().ends_with(",normalised"));
        // Success rates get files of their own beside the others, which they leave as they were.
        let before = std::fs::read(&normalised.md).unwrap();
        let success = write_aggregates(dir.path(), "T: success rate", ScoreKind::Success, &finals(), 1000).unwrap();
        assert_eq!(success.md, dir.path().join("success-aggregates.md"));
        assert_eq!(success.profiles_svg, dir.path().join("success-profiles.svg"));
        assert!(success.svg.with_extension("png").exists() && success.profiles_svg.with_extension("png").exists());
        let md = std::fs::read_to_string(&success.md).unwrap();
        assert!(md.contains("Scores: success rates") && md.contains("| p | B | 2 × 2 | 0.40 ["), "{md}");
        assert!(std::fs::read_to_string(success.csv).unwrap().lines().nth(1).unwrap().ends_with(",success"));
        assert!(std::fs::read_to_string(success.svg).unwrap().contains("final success rate"));
        assert_eq!(std::fs::read(&normalised.md).unwrap(), before);
    }

    #[test]
    fn aggregates_do_not_depend_on_the_order_of_the_curves() {
        // Five seeds of two methods on two tasks, scores spread enough that every percentile
        // falls between distinct resample values: any change in the resamples shows.
        let mut curves = Vec::new();
        for seed in 0..5u64 {
            for (m, method) in ["A", "B"].iter().enumerate() {
                for task in 0..2u64 {
                    let v = ((seed * 7 + task * 3 + m as u64 * 5) % 11) as f64 / 10.0 + seed as f64 * 0.013;
                    curves.push(curve("p", method, seed, &format!("t{task}"), &[(0, 0.0), (10, v)]));
                }
            }
        }
        let reversed: Vec<Curve> = curves.iter().rev().cloned().collect();
        let ((rows, better), (rows2, better2)) = (aggregate_rows(&curves, 1000), aggregate_rows(&reversed, 1000));
        let stats = |rows: &[AggregateRow], m: &str| rows.iter().find(|r| r.method == m).unwrap().stats.unwrap();
        let p = |better: &[ImprovementRow], m: &str| better.iter().find(|b| b.method == m).unwrap().p.unwrap();
        for m in ["A", "B"] {
            assert_eq!(stats(&rows, m), stats(&rows2, m), "method {m}");
            assert_eq!(p(&better, m), p(&better2, m), "method {m}");
        }
    }

    #[test]
    fn curves_read_back_from_json_keep_their_gaps() {
        // serde_json writes NaN as null; reading it back must give NaN, not an error.
        let curves = vec![curve("p", "m", 0, "t", &[(0, 1.5), (10, f64::NAN)])];
        let json = serde_json::to_string(&curves).unwrap();
        assert!(json.contains("[10,null]"), "{json}");
        let back: Vec<Curve> = serde_json::from_str(&json).unwrap();
        assert_eq!(back[0].points[0], (0, 1.5));
        assert!(back[0].points[1].0 == 10 && back[0].points[1].1.is_nan());
    }

    #[test]
    fn the_task_figure_is_a_grid_of_training_panels_by_tasks() {
        let dir = tempfile::tempdir().unwrap();
        // One training panel, two tasks: one row of two, titled by task.
        let svg = std::fs::read_to_string(write_task_figure(dir.path(), "T", &test_curves::study()).unwrap()).unwrap();
        assert_eq!(svg.matches(r#"class="panel-title""#).count(), 2, "{svg}");
        assert!(svg.contains(">a</text>") && svg.contains(">b</text>") && dir.path().join("tasks-curves.png").exists());
        // Three training panels x four tasks (Figure 6): twelve panels, one row per panel.
        let svg = std::fs::read_to_string(write_task_figure(dir.path(), "T", &test_curves::realistic()).unwrap()).unwrap();
        assert_eq!(svg.matches(r#"class="panel-title""#).count(), 12);
        assert!(svg.contains("(100 training levels)"), "{svg}");
        let height: f64 = svg.split("height=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(height > 3.0 * figures::PLOT_H, "three rows: {height}");
    }

}
