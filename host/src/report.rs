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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

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
    /// A NaN return means no episode finished in that window.
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

// ---------------------------------------------------------------------------------------------
// Statistics

/// Mean and standard error of the non-NaN values, and how many there were.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    mean: f64,
    se: f64,
    n: usize,
}

impl Stat {
    fn pair(self) -> (f64, f64) {
        (self.mean, self.se)
    }
}

fn mean_se(values: impl IntoIterator<Item = f64>) -> Stat {
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
fn first_appearance<'a>(order: &mut Vec<&'a str>, key: &'a str) -> usize {
    order.iter().position(|k| *k == key).unwrap_or_else(|| {
        order.push(key);
        order.len() - 1
    })
}

/// Groups by (panel, method), sorted by panel then method, each in first-appearance order.
fn groups(curves: &[Curve]) -> Vec<Group<'_>> {
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
        .map(|((p, m), group)| {
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
                panel: panels[p],
                method: methods[m],
                steps,
                seed_curves,
            }
        })
        .collect()
}

/// Summary statistics with the number of seeds behind each.
struct SummaryStats {
    row: SummaryRow,
    zero_shot: Stat,
    final_return: Stat,
    auc: Stat,
}

fn summary_stats(curves: &[Curve]) -> Vec<SummaryStats> {
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

// ---------------------------------------------------------------------------------------------
// Tables

/// `7.12 ± 0.31`, with `(n=k)` when fewer than two seeds, or fewer than the row's, are behind
/// it. At least two significant digits of the larger of mean and SE.
fn fmt_stat(s: Stat, seeds: usize) -> String {
    if s.n == 0 {
        return "n/a".to_string();
    }
    let scale = s.mean.abs().max(s.se);
    let mut d = 2;
    while d < 6 && scale > 0.0 && scale * 10f64.powi(d as i32) < 10.0 {
        d += 1;
    }
    let mut out = format!("{:.d$} ± {:.d$}", s.mean, s.se);
    if s.n < 2 || s.n != seeds {
        let _ = write!(out, " (n={})", s.n);
    }
    out
}

/// Markdown cells cannot hold `|` or line breaks.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn summary_markdown(title: &str, what: &str, stats: &[SummaryStats]) -> String {
    let mut md = format!("# {}\n\n", title.replace(['\n', '\r'], " "));
    md.push_str("| panel | method | seeds | zero-shot | final | AUC |\n");
    md.push_str("|---|---|---:|---:|---:|---:|\n");
    for s in stats {
        let r = &s.row;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            md_cell(&r.panel),
            md_cell(&r.method),
            r.seeds,
            fmt_stat(s.zero_shot, r.seeds),
            fmt_stat(s.final_return, r.seeds),
            fmt_stat(s.auc, r.seeds),
        );
    }
    md.push_str(
        &format!(
            "\nMean ± standard error across seeds (each seed's curve first averaged over tasks). \
             zero-shot: {what} at the first step, before adaptation; final: at the last step; \
             AUC: trapezoid area under the curve divided by its step range, i.e. the mean {what} \
             over adaptation. `n=` counts the seeds behind a value when fewer than two, or fewer \
             than the row's, have one.\n"
        ),
    );
    md
}

/// RFC 4180 quoting, only where needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn summary_csv(rows: &[SummaryRow]) -> String {
    let mut csv =
        String::from("panel,method,seeds,zero_shot_mean,zero_shot_se,final_mean,final_se,auc_mean,auc_se\n");
    for r in rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{}",
            csv_field(&r.panel),
            csv_field(&r.method),
            r.seeds,
            r.zero_shot.0,
            r.zero_shot.1,
            r.final_return.0,
            r.final_return.1,
            r.auc.0,
            r.auc.1
        );
    }
    csv
}

// ---------------------------------------------------------------------------------------------
// Figure

/// Okabe–Ito: distinguishable under the common colour-vision deficiencies. Yellow, weakest on
/// white, comes last; past eight methods the colours repeat with dashed lines.
const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000", "#F0E442",
];
const DASHES: [&str; 3] = ["", "7 4", "2 3"];

const FONT_FAMILY: &str = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif";
const TEXT: &str = "#222222";
/// Rough advance of a DejaVu Sans character, in ems; generous so estimates do not overlap.
const CHAR_EM: f64 = 0.62;

// Layout, in SVG user units (= PNG pixels before scaling).
const PLOT_W: f64 = 340.0;
const PLOT_H: f64 = 250.0;
/// Left of each plot: y tick labels.
const GUTTER: f64 = 64.0;
/// Right of each plot: room for the last x tick label before the next panel.
const PANEL_GAP: f64 = 28.0;
const PANEL_W: f64 = GUTTER + PLOT_W + PANEL_GAP;
/// Left of the first panel: the y axis label.
const LEFT: f64 = 28.0;
const RIGHT: f64 = 8.0;
/// Above the plots: the title and the panel titles.
const TOP: f64 = 84.0;
const LEGEND_ROW: f64 = 24.0;
/// PNG pixels per SVG unit.
const PNG_SCALE: f32 = 2.0;

fn text_width(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * CHAR_EM
}

/// The font size, at most `size`, at which `s` fits in `width`.
fn fit_font(s: &str, size: f64, width: f64) -> f64 {
    let w = text_width(s, size);
    if w > width {
        (size * width / w).max(8.0)
    } else {
        size
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Ticks covering [lo, hi] (lo < hi) at a 1-2-2.5-5 step giving about `target` intervals;
/// the axis then spans from the first tick to the last. `integer` keeps steps whole.
fn nice_ticks(lo: f64, hi: f64, target: f64, integer: bool) -> (Vec<f64>, f64) {
    let raw = (hi - lo) / target;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let mut step = mag
        * if norm <= 1.0 {
            1.0
        } else if norm <= 2.0 {
            2.0
        } else if norm <= 2.5 {
            2.5
        } else if norm <= 5.0 {
            5.0
        } else {
            10.0
        };
    if integer && step.fract() != 0.0 {
        step = if step < 1.0 { 1.0 } else { 5.0 * mag };
    }
    let k0 = (lo / step + 1e-9).floor() as i64;
    let k1 = (hi / step - 1e-9).ceil() as i64;
    ((k0..=k1.max(k0 + 1)).map(|k| k as f64 * step).collect(), step)
}

/// `0`, `2.5k`, `50k`, `1.2M`.
fn fmt_steps(v: f64) -> String {
    let (x, suffix) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{suffix}")
}

/// A y tick label with as many decimals as the tick step needs.
fn fmt_tick(v: f64, step: f64) -> String {
    let mut d = 0;
    while d < 6 && ((step * 10f64.powi(d)).round() - step * 10f64.powi(d)).abs() > 1e-6 {
        d += 1;
    }
    let s = format!("{:.*}", d as usize, v);
    // "-0" and "-0.0" read as glitches.
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// `[lo, hi]` padded so that it is never empty.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    }
}

struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    step: f64,
}

impl Axis {
    fn new(lo: f64, hi: f64, target: f64, integer: bool) -> Axis {
        let (lo, hi) = padded(lo, hi);
        let (ticks, step) = nice_ticks(lo, hi, target, integer);
        Axis {
            lo: ticks[0],
            hi: ticks[ticks.len() - 1],
            ticks,
            step,
        }
    }
    /// `v`'s position along a `len`-long axis from the low end.
    fn frac(&self, v: f64, len: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo) * len
    }
}

/// Runs of consecutive indices where `mean` is finite: the pieces of a broken line.
fn finite_runs(mean: &[f64]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, m) in mean.iter().enumerate() {
        match (m.is_finite(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(s..mean.len());
    }
    runs
}

fn style_of(method_index: usize) -> (&'static str, &'static str) {
    (
        PALETTE[method_index % PALETTE.len()],
        DASHES[(method_index / PALETTE.len()) % DASHES.len()],
    )
}

fn dash_attr(dash: &str) -> String {
    if dash.is_empty() {
        String::new()
    } else {
        format!(" stroke-dasharray=\"{dash}\"")
    }
}

/// A curve's columns cut to a common length, in case a hand-made one is ragged.
struct Columns<'a> {
    steps: &'a [u64],
    mean: &'a [f64],
    se: &'a [f64],
}

impl<'a> Columns<'a> {
    fn of(c: &'a AggregatedCurve) -> Columns<'a> {
        let n = c.steps.len().min(c.mean.len()).min(c.se.len());
        Columns {
            steps: &c.steps[..n],
            mean: &c.mean[..n],
            se: &c.se[..n],
        }
    }
}

/// Draws one panel with its plot area's top-left corner at (`px`, `py`); returns the estimated
/// width of its widest y tick label.
fn render_panel(
    svg: &mut String,
    px: f64,
    py: f64,
    title: &str,
    curves: &[(usize, &AggregatedCurve)],
) -> f64 {
    let (w, h) = (PLOT_W, PLOT_H);
    let curves: Vec<(usize, Columns)> = curves.iter().map(|&(mi, c)| (mi, Columns::of(c))).collect();
    let all_steps = || curves.iter().flat_map(|(_, c)| c.steps.iter().map(|&s| s as f64));
    let x_lo = all_steps().fold(f64::INFINITY, f64::min);
    let x_hi = all_steps().fold(f64::NEG_INFINITY, f64::max);
    let (x_lo, x_hi) = if x_lo.is_finite() {
        (x_lo, x_hi)
    } else {
        (0.0, 1.0)
    };
    let band_values = || {
        curves.iter().flat_map(|(_, c)| {
            c.mean.iter().zip(c.se).flat_map(|(&m, &se)| {
                let se = if se.is_finite() { se } else { 0.0 };
                [m - se, m + se]
            })
        })
    };
    let y_lo = band_values()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let y_hi = band_values()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let (y_lo, y_hi) = if y_lo.is_finite() {
        (y_lo, y_hi)
    } else {
        (0.0, 1.0)
    };
    // A lone step is padded on both sides, but never into negative steps.
    let (x_lo, x_hi) = match padded(x_lo, x_hi) {
        (lo, hi) if x_lo >= 0.0 => (lo.max(0.0), hi),
        other => other,
    };
    let x_axis = Axis::new(x_lo, x_hi, 5.0, true);
    let y_axis = Axis::new(y_lo, y_hi, 5.0, false);
    let x = |v: f64| px + x_axis.frac(v, w);
    let y = |v: f64| py + h - y_axis.frac(v, h);

    // Panel title, grid, ticks.
    let size = fit_font(title, 15.0, w);
    let _ = writeln!(
        svg,
        r#"<text class="panel-title" x="{:.2}" y="{:.2}" font-size="{size:.1}" font-weight="bold" text-anchor="middle">{}</text>"#,
        px + w / 2.0,
        py - 12.0,
        xml_escape(title)
    );
    for &t in &x_axis.ticks {
        let tx = x(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{tx:.2}" y1="{py:.2}" x2="{tx:.2}" y2="{:.2}" stroke="#e6e6e6"/><line x1="{tx:.2}" y1="{:.2}" x2="{tx:.2}" y2="{:.2}" stroke="#444"/><text x="{tx:.2}" y="{:.2}" font-size="12" text-anchor="middle">{}</text>"##,
            py + h,
            py + h,
            py + h + 4.0,
            py + h + 18.0,
            xml_escape(&fmt_steps(t))
        );
    }
    for &t in &y_axis.ticks {
        let ty = y(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.2}" y1="{ty:.2}" x2="{:.2}" y2="{ty:.2}" stroke="#e6e6e6"/><line x1="{:.2}" y1="{ty:.2}" x2="{px:.2}" y2="{ty:.2}" stroke="#444"/><text x="{:.2}" y="{:.2}" font-size="12" text-anchor="end">{}</text>"##,
            px + w,
            px - 4.0,
            px - 7.0,
            ty + 4.0,
            xml_escape(&fmt_tick(t, y_axis.step))
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.2}" y="{:.2}" font-size="13" text-anchor="middle">adaptation env steps</text>"#,
        px + w / 2.0,
        py + h + 40.0
    );

    // Bands under every line, so no band covers another method's line.
    for (mi, c) in &curves {
        let (colour, _) = style_of(*mi);
        for run in finite_runs(c.mean) {
            let se = |i: usize| if c.se[i].is_finite() { c.se[i] } else { 0.0 };
            if run.len() == 1 {
                let i = run.start;
                if se(i) > 0.0 {
                    let sx = x(c.steps[i] as f64);
                    let _ = writeln!(
                        svg,
                        r#"<line x1="{sx:.2}" y1="{:.2}" x2="{sx:.2}" y2="{:.2}" stroke="{colour}" stroke-opacity="0.45" stroke-width="6"/>"#,
                        y(c.mean[i] - se(i)),
                        y(c.mean[i] + se(i))
                    );
                }
                continue;
            }
            // Forward along the top edge, back along the bottom one.
            let upper = run.clone().map(|i| (i, c.mean[i] + se(i)));
            let lower = run.clone().rev().map(|i| (i, c.mean[i] - se(i)));
            let pts: Vec<String> = upper
                .chain(lower)
                .map(|(i, v)| format!("{:.2},{:.2}", x(c.steps[i] as f64), y(v)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polygon points="{}" fill="{colour}" fill-opacity="0.2" stroke="none"/>"#,
                pts.join(" ")
            );
        }
    }
    for (mi, c) in &curves {
        let (colour, dash) = style_of(*mi);
        for run in finite_runs(c.mean) {
            if run.len() == 1 {
                let i = run.start;
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.2}" cy="{:.2}" r="3.5" fill="{colour}"/>"#,
                    x(c.steps[i] as f64),
                    y(c.mean[i])
                );
                continue;
            }
            let pts: Vec<String> = run
                .map(|i| format!("{:.2},{:.2}", x(c.steps[i] as f64), y(c.mean[i])))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{} stroke-linejoin="round" stroke-linecap="round"/>"#,
                pts.join(" "),
                dash_attr(dash)
            );
        }
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{px:.2}" y="{py:.2}" width="{w:.2}" height="{h:.2}" fill="none" stroke="#444"/>"##
    );
    y_axis
        .ticks
        .iter()
        .map(|&t| text_width(&fmt_tick(t, y_axis.step), 12.0))
        .fold(0.0, f64::max)
}

/// The figure as standalone SVG text: one panel per distinct `panel` (first-appearance order)
/// side by side, test return against adaptation env steps, one line per method with a shaded
/// ±SE band, a shared legend below. A method keeps its colour in every panel.
pub fn render_svg(title: &str, curves: &[AggregatedCurve]) -> String {
    render_svg_labelled(title, "test return", curves)
}

/// [`render_svg`] with another y-axis label (`success rate`).
pub fn render_svg_labelled(title: &str, y_label: &str, curves: &[AggregatedCurve]) -> String {
    let mut panels: Vec<&str> = Vec::new();
    let mut methods: Vec<&str> = Vec::new();
    for c in curves {
        first_appearance(&mut panels, &c.panel);
        first_appearance(&mut methods, &c.method);
    }
    let n_panels = panels.len().max(1);
    let plots_width = LEFT + n_panels as f64 * PANEL_W + RIGHT;
    let width = plots_width.max(text_width(title, 20.0) + 40.0);
    let x0 = (width - plots_width) / 2.0;

    // Legend entries: swatch, gap, name, gap; wrapped into centred rows.
    let entry_w = |m: &str| 30.0 + 6.0 + text_width(m, 13.0) + 22.0;
    let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
    let mut row_w = 0.0;
    for (i, m) in methods.iter().enumerate() {
        let ew = entry_w(m);
        if row_w + ew > width - 40.0 && !rows[rows.len() - 1].is_empty() {
            rows.push(Vec::new());
            row_w = 0.0;
        }
        let last = rows.len() - 1;
        rows[last].push(i);
        row_w += ew;
    }
    let legend_top = TOP + PLOT_H + 62.0;
    let height = legend_top + rows.len() as f64 * LEGEND_ROW + 8.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="{FONT_FAMILY}" fill="{TEXT}">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text class="title" x="{:.2}" y="34" font-size="{:.1}" font-weight="bold" text-anchor="middle">{}</text>"#,
        width / 2.0,
        fit_font(title, 20.0, width - 20.0),
        xml_escape(title)
    );
    let mid_y = TOP + PLOT_H / 2.0;
    if curves.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.2}" y="{mid_y:.2}" font-size="14" text-anchor="middle">no data</text>"#,
            width / 2.0
        );
    }
    // The y axis label hugs the first panel's tick labels, however wide they are.
    let mut label_x = x0 + LEFT + GUTTER - 7.0 - text_width("0.0", 12.0) - 8.0;
    for (pi, panel) in panels.iter().enumerate() {
        let members: Vec<(usize, &AggregatedCurve)> = curves
            .iter()
            .filter(|c| c.panel == *panel)
            .map(|c| (methods.iter().position(|m| *m == c.method).unwrap_or(0), c))
            .collect();
        let px = x0 + LEFT + pi as f64 * PANEL_W + GUTTER;
        let tick_w = render_panel(&mut svg, px, TOP, panel, &members);
        if pi == 0 {
            label_x = px - 7.0 - tick_w - 8.0;
        }
    }
    let label_x = label_x.max(x0 + 16.0);
    let _ = writeln!(
        svg,
        r#"<text x="{label_x:.2}" y="{mid_y:.2}" font-size="13" text-anchor="middle" transform="rotate(-90 {label_x:.2} {mid_y:.2})">{y_label}</text>"#
    );

    for (r, row) in rows.iter().enumerate() {
        let row_width: f64 = row.iter().map(|&i| entry_w(methods[i])).sum::<f64>() - 22.0;
        let mut ex = (width - row_width) / 2.0;
        let ey = legend_top + r as f64 * LEGEND_ROW + LEGEND_ROW / 2.0;
        for &i in row {
            let (colour, dash) = style_of(i);
            let _ = writeln!(
                svg,
                r#"<g class="legend-entry"><rect x="{ex:.2}" y="{:.2}" width="30" height="12" fill="{colour}" fill-opacity="0.2"/><line x1="{ex:.2}" y1="{ey:.2}" x2="{:.2}" y2="{ey:.2}" stroke="{colour}" stroke-width="2.5"{}/><text x="{:.2}" y="{:.2}" font-size="13">{}</text></g>"#,
                ey - 6.0,
                ex + 30.0,
                dash_attr(dash),
                ex + 36.0,
                ey + 4.5,
                xml_escape(methods[i])
            );
            ex += entry_w(methods[i]);
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// Rasterises `svg` at [`PNG_SCALE`] on white, with the system's fonts; without any, text is
/// missing but the image is still made.
fn render_png(svg: &str) -> anyhow::Result<Vec<u8>> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    options.fontdb_mut().load_system_fonts();
    let tree = usvg::Tree::from_str(svg, &options).context("parsing the report SVG")?;
    let size = tree.size();
    let (w, h) = (
        (size.width() * PNG_SCALE).ceil() as u32,
        (size.height() * PNG_SCALE).ceil() as u32,
    );
    let mut pixmap = tiny_skia::Pixmap::new(w, h).with_context(|| format!("allocating a {w}x{h} image"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(PNG_SCALE, PNG_SCALE),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().context("encoding the PNG")
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
    let stats = summary_stats(curves);
    let rows: Vec<SummaryRow> = stats.iter().map(|s| s.row.clone()).collect();
    let svg = render_svg_labelled(title, y_label, &aggregate(curves));
    let png = render_png(&svg)?;
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    let what = if y_label == "test return" { "return" } else { y_label };
    write(&files.summary_md, summary_markdown(title, what, &stats).as_bytes())?;
    write(&files.summary_csv, summary_csv(&rows).as_bytes())?;
    write(&files.svg, svg.as_bytes())?;
    write(&files.png, &png)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(panel: &str, method: &str, seed: u64, task: &str, points: &[(u64, f64)]) -> Curve {
        Curve {
            panel: panel.into(),
            method: method.into(),
            seed,
            task: task.into(),
            points: points.to_vec(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn assert_pair(got: (f64, f64), want: (f64, f64), what: &str) {
        assert!(
            close(got.0, want.0) && close(got.1, want.1),
            "{what}: got {got:?}, want {want:?}"
        );
    }

    /// Two methods x 3 seeds x 2 tasks on the uneven grid 0, 10, 30, given in scrambled order.
    ///
    /// "pre+ft" task-averages per seed: s0 [2,4,6], s1 [3,5,7], s2 [4,9,8].
    /// "reptile" seed s: task a [s,s,s], task b [s+2,s+4,s+6] -> average [s+1,s+2,s+3].
    fn study() -> Vec<Curve> {
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

    #[test]
    fn csv_is_machine_readable() {
        let csv = summary_csv(&summarize(&[curve(
            "1,2",
            "m \"x\"",
            0,
            "t",
            &[(0, 1.5), (4, 2.5)],
        )]));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "panel,method,seeds,zero_shot_mean,zero_shot_se,final_mean,final_se,auc_mean,auc_se"
        );
        assert_eq!(lines[1], r#""1,2","m ""x""",1,1.5,0,2.5,0,2,0"#);
    }

    #[test]
    fn axis_ticks_are_round_and_labels_short() {
        let (ticks, step) = nice_ticks(0.0, 200_000.0, 5.0, true);
        assert_eq!((ticks.len(), step), (5, 50_000.0));
        assert_eq!(
            ticks.iter().map(|&t| fmt_steps(t)).collect::<Vec<_>>(),
            ["0", "50k", "100k", "150k", "200k"]
        );
        assert_eq!(fmt_steps(2_500.0), "2.5k");
        assert_eq!(fmt_steps(1_500_000.0), "1.5M");
        let (ticks, step) = nice_ticks(-0.3, 9.7, 5.0, false);
        assert_eq!((ticks[0], *ticks.last().unwrap(), step), (-2.0, 10.0, 2.0));
        assert_eq!(fmt_tick(2.5, 2.5), "2.5");
        assert_eq!(fmt_tick(-0.0, 0.5), "0.0");
    }

    #[test]
    fn svg_handles_edge_cases_and_escapes_text() {
        let one = AggregatedCurve {
            panel: "a<b & c".into(),
            method: "m\"1\"".into(),
            seeds: 1,
            steps: vec![0],
            mean: vec![5.0],
            se: vec![0.0],
        };
        let flat = AggregatedCurve {
            panel: "flat".into(),
            method: "m2".into(),
            seeds: 2,
            steps: vec![0, 10, 20, 30, 40],
            mean: vec![1.0, 1.0, f64::NAN, 1.0, 1.0],
            se: vec![0.0, 0.0, f64::NAN, 0.0, 0.0],
        };
        let svg = render_svg("T & <U>", &[one, flat]);
        assert!(
            svg.contains("a&lt;b &amp; c")
                && svg.contains("m&quot;1&quot;")
                && svg.contains("T &amp; &lt;U&gt;")
        );
        assert!(
            !svg.contains("NaN") && !svg.contains("inf"),
            "no non-finite coordinates"
        );
        assert_eq!(
            svg.matches("<circle").count(),
            1,
            "a single point is drawn as a marker"
        );
        assert_eq!(
            svg.matches("<polyline").count(),
            2,
            "the NaN breaks the flat line in two"
        );
        assert!(render_png(&svg).is_ok());
        assert!(render_svg("empty", &[]).contains("no data"));
    }

    fn realistic() -> Vec<Curve> {
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
}
