//! The figure: hand-written SVG, rasterised to PNG with resvg.
//!
//! **Why hand-written.** A figure here is a few panels of lines with bands, ticks and a legend;
//! writing that SVG directly takes about 500 lines and no dependency beyond resvg, and it is
//! byte-deterministic: every coordinate is printed with two decimals from the same
//! arithmetic, which the resume test relies on when it compares a resumed run's files with an
//! uninterrupted run's, byte for byte. A plotting crate (`plotters`) would bring its own text
//! layout, font handling and a larger surface to keep deterministic, and these figures need
//! none of what it adds.
//!
//! Layout: one panel per distinct `panel` (first-appearance order) side by side, one line per
//! method with its ±SE band, a shared legend below. Okabe–Ito colours, then dashes past eight
//! methods. Text widths are estimated, never measured, so the SVG does not depend on the
//! fonts installed; only the PNG does.

use std::fmt::Write as _;

use anyhow::Context as _;

use super::stats::first_appearance;
use super::AggregatedCurve;

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
pub(super) const PLOT_H: f64 = 250.0;
/// Left of each plot: y tick labels.
const GUTTER: f64 = 64.0;
/// Right of each plot: room for the last x tick label before the next panel.
const PANEL_GAP: f64 = 28.0;
pub(super) const PANEL_W: f64 = GUTTER + PLOT_W + PANEL_GAP;
/// Left of the first panel: the y axis label.
pub(super) const LEFT: f64 = 28.0;
pub(super) const RIGHT: f64 = 8.0;
/// Above the plots: the title and the panel titles.
pub(super) const TOP: f64 = 84.0;
pub(super) const LEGEND_ROW: f64 = 24.0;
/// PNG pixels per SVG unit.
pub(super) const PNG_SCALE: f32 = 2.0;

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

/// One line of a panel: points (x, y) with a band [lo, hi] around each (NaN y: a gap), in the
/// colour and dash of legend entry `method`.
pub(super) struct Series {
    /// Index into the figure's legend.
    pub method: usize,
    /// X values, ascending.
    pub x: Vec<f64>,
    /// Y values.
    pub y: Vec<f64>,
    /// Lower edge of the band at each point (NaN: no band there).
    pub lo: Vec<f64>,
    /// Upper edge of the band.
    pub hi: Vec<f64>,
}

impl Series {
    /// An aggregated curve: adaptation steps against the mean, ±SE band; cut to a common
    /// length in case a hand-made one is ragged.
    pub(super) fn of_curve(method: usize, c: &AggregatedCurve) -> Series {
        let n = c.steps.len().min(c.mean.len()).min(c.se.len());
        let se = |i: usize| if c.se[i].is_finite() { c.se[i] } else { 0.0 };
        Series {
            method,
            x: c.steps[..n].iter().map(|&s| s as f64).collect(),
            y: c.mean[..n].to_vec(),
            lo: (0..n).map(|i| c.mean[i] - se(i)).collect(),
            hi: (0..n).map(|i| c.mean[i] + se(i)).collect(),
        }
    }
    /// Band edges that can be drawn: the point itself where there is no band.
    fn band(&self, i: usize) -> (f64, f64) {
        let lo = if self.lo[i].is_finite() { self.lo[i] } else { self.y[i] };
        let hi = if self.hi[i].is_finite() { self.hi[i] } else { self.y[i] };
        (lo, hi)
    }
}

/// A panel: a title and its lines.
pub(super) struct Panel {
    /// Shown above the plot.
    pub title: String,
    /// The lines, in drawing order.
    pub series: Vec<Series>,
}

/// What the x axis shows.
#[derive(Clone, Copy)]
pub(super) enum XAxis<'a> {
    /// Adaptation env steps: whole numbers, labelled `50k`, never below 0.
    Steps,
    /// A score threshold τ (performance profiles), with the axis's label.
    Threshold(&'a str),
}

/// A figure: panels in rows of at most `columns`, one legend below.
pub(super) struct Figure<'a> {
    /// Shown on top.
    pub title: &'a str,
    /// The y axis's label.
    pub y_label: &'a str,
    /// The x axis's kind.
    pub x: XAxis<'a>,
    /// The legend: one entry per method, indexed by [`Series::method`].
    pub methods: Vec<&'a str>,
    /// The panels.
    pub panels: Vec<Panel>,
    /// Panels per row.
    pub columns: usize,
    /// One y range for every panel (panels comparing methods on the same tasks), or one per
    /// panel (panels of different tasks, whose returns have different scales).
    pub shared_y: bool,
}

/// The extent of every band and point of `series` (NaN-free), or (0, 1) if none.
fn y_extent<'a>(series: impl Iterator<Item = &'a Series>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in series {
        for i in 0..s.y.len().min(s.lo.len()).min(s.hi.len()) {
            if s.y[i].is_finite() {
                let (a, b) = s.band(i);
                lo = lo.min(a.min(s.y[i]));
                hi = hi.max(b.max(s.y[i]));
            }
        }
    }
    if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// Draws one panel with its plot area's top-left corner at (`px`, `py`) and y range `y_range`;
/// returns the estimated width of its widest y tick label.
fn render_panel(svg: &mut String, px: f64, py: f64, panel: &Panel, x_kind: XAxis<'_>, y_range: (f64, f64)) -> f64 {
    let (w, h) = (PLOT_W, PLOT_H);
    let all_x = || panel.series.iter().flat_map(|s| s.x.iter().copied()).filter(|v| v.is_finite());
    let x_lo = all_x().fold(f64::INFINITY, f64::min);
    let x_hi = all_x().fold(f64::NEG_INFINITY, f64::max);
    let (x_lo, x_hi) = if x_lo.is_finite() { (x_lo, x_hi) } else { (0.0, 1.0) };
    let (x_axis, x_label, fmt_x): (Axis, &str, fn(f64, f64) -> String) = match x_kind {
        XAxis::Steps => {
            // A lone step is padded on both sides, but never into negative steps.
            let (lo, hi) = match padded(x_lo, x_hi) {
                (lo, hi) if x_lo >= 0.0 => (lo.max(0.0), hi),
                other => other,
            };
            (Axis::new(lo, hi, 5.0, true), "adaptation env steps", |v, _| fmt_steps(v))
        }
        XAxis::Threshold(label) => (Axis::new(x_lo, x_hi, 5.0, false), label, fmt_tick),
    };
    let y_axis = Axis::new(y_range.0, y_range.1, 5.0, false);
    let x = |v: f64| px + x_axis.frac(v, w);
    let y = |v: f64| py + h - y_axis.frac(v, h);

    // Panel title, grid, ticks.
    let size = fit_font(&panel.title, 15.0, w);
    let _ = writeln!(
        svg,
        r#"<text class="panel-title" x="{:.2}" y="{:.2}" font-size="{size:.1}" font-weight="bold" text-anchor="middle">{}</text>"#,
        px + w / 2.0,
        py - 12.0,
        xml_escape(&panel.title)
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
            xml_escape(&fmt_x(t, x_axis.step))
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
        r#"<text x="{:.2}" y="{:.2}" font-size="13" text-anchor="middle">{}</text>"#,
        px + w / 2.0,
        py + h + 40.0,
        xml_escape(x_label)
    );

    // Bands under every line, so no band covers another method's line.
    for s in &panel.series {
        let (colour, _) = style_of(s.method);
        for run in finite_runs(&s.y) {
            if run.len() == 1 {
                let i = run.start;
                let (lo, hi) = s.band(i);
                if hi > lo {
                    let sx = x(s.x[i]);
                    let _ = writeln!(
                        svg,
                        r#"<line x1="{sx:.2}" y1="{:.2}" x2="{sx:.2}" y2="{:.2}" stroke="{colour}" stroke-opacity="0.45" stroke-width="6"/>"#,
                        y(lo),
                        y(hi)
                    );
                }
                continue;
            }
            // Forward along the top edge, back along the bottom one.
            let upper = run.clone().map(|i| (i, s.band(i).1));
            let lower = run.clone().rev().map(|i| (i, s.band(i).0));
            let pts: Vec<String> = upper.chain(lower).map(|(i, v)| format!("{:.2},{:.2}", x(s.x[i]), y(v))).collect();
            let _ = writeln!(svg, r#"<polygon points="{}" fill="{colour}" fill-opacity="0.2" stroke="none"/>"#, pts.join(" "));
        }
    }
    for s in &panel.series {
        let (colour, dash) = style_of(s.method);
        for run in finite_runs(&s.y) {
            if run.len() == 1 {
                let i = run.start;
                let _ = writeln!(svg, r#"<circle cx="{:.2}" cy="{:.2}" r="3.5" fill="{colour}"/>"#, x(s.x[i]), y(s.y[i]));
                continue;
            }
            let pts: Vec<String> = run.map(|i| format!("{:.2},{:.2}", x(s.x[i]), y(s.y[i]))).collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{} stroke-linejoin="round" stroke-linecap="round"/>"#,
                pts.join(" "),
                dash_attr(dash)
            );
        }
    }
    let _ = writeln!(svg, r##"<rect x="{px:.2}" y="{py:.2}" width="{w:.2}" height="{h:.2}" fill="none" stroke="#444"/>"##);
    y_axis.ticks.iter().map(|&t| text_width(&fmt_tick(t, y_axis.step), 12.0)).fold(0.0, f64::max)
}

/// The figure as standalone SVG text: one panel per distinct `panel` (first-appearance order)
/// side by side, test return against adaptation env steps, one line per method with a shaded
/// ±SE band, a shared legend below. A method keeps its colour in every panel, and the panels
/// share their y range (they compare the methods on the same held-out tasks).
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
    let panels: Vec<Panel> = panels
        .iter()
        .map(|p| Panel {
            title: p.to_string(),
            series: curves
                .iter()
                .filter(|c| c.panel == *p)
                .map(|c| Series::of_curve(methods.iter().position(|m| *m == c.method).unwrap_or(0), c))
                .collect(),
        })
        .collect();
    let columns = panels.len().max(1);
    render_figure(&Figure { title, y_label, x: XAxis::Steps, methods, panels, columns, shared_y: true })
}

/// The start of a figure's SVG: the root element, a white background and the title.
fn svg_start(width: f64, height: f64, title: &str) -> String {
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
    svg
}

/// Vertical room of a row of panels beyond the plot: x tick labels, the x label, the next
/// row's panel titles.
const ROW_GAP: f64 = 84.0;

/// Any [`Figure`] as standalone SVG text.
pub(super) fn render_figure(f: &Figure<'_>) -> String {
    let n_panels = f.panels.len().max(1);
    let columns = f.columns.clamp(1, n_panels);
    let n_rows = n_panels.div_ceil(columns);
    let plots_width = LEFT + columns as f64 * PANEL_W + RIGHT;
    let width = plots_width.max(text_width(f.title, 20.0) + 40.0);
    let x0 = (width - plots_width) / 2.0;

    // Legend entries: swatch, gap, name, gap; wrapped into centred rows.
    let entry_w = |m: &str| 30.0 + 6.0 + text_width(m, 13.0) + 22.0;
    let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
    let mut row_w = 0.0;
    for (i, m) in f.methods.iter().enumerate() {
        let ew = entry_w(m);
        if row_w + ew > width - 40.0 && !rows[rows.len() - 1].is_empty() {
            rows.push(Vec::new());
            row_w = 0.0;
        }
        let last = rows.len() - 1;
        rows[last].push(i);
        row_w += ew;
    }
    let plots_bottom = TOP + n_rows as f64 * PLOT_H + (n_rows - 1) as f64 * ROW_GAP;
    let legend_top = plots_bottom + 62.0;
    let height = legend_top + rows.len() as f64 * LEGEND_ROW + 8.0;

    let mut svg = svg_start(width, height, f.title);
    if f.panels.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.2}" y="{:.2}" font-size="14" text-anchor="middle">no data</text>"#,
            width / 2.0,
            TOP + PLOT_H / 2.0
        );
    }
    let shared = y_extent(f.panels.iter().flat_map(|p| &p.series));
    for r in 0..n_rows {
        let py = TOP + r as f64 * (PLOT_H + ROW_GAP);
        let mid_y = py + PLOT_H / 2.0;
        // The y axis label hugs the row's first panel's tick labels, however wide they are.
        let mut label_x = x0 + LEFT + GUTTER - 7.0 - text_width("0.0", 12.0) - 8.0;
        for (c, panel) in f.panels.iter().enumerate().skip(r * columns).take(columns).map(|(i, p)| (i % columns, p)) {
            let px = x0 + LEFT + c as f64 * PANEL_W + GUTTER;
            let range = if f.shared_y { shared } else { y_extent(panel.series.iter()) };
            let tick_w = render_panel(&mut svg, px, py, panel, f.x, range);
            if c == 0 {
                label_x = px - 7.0 - tick_w - 8.0;
            }
        }
        let label_x = label_x.max(x0 + 16.0);
        let _ = writeln!(
            svg,
            r#"<text x="{label_x:.2}" y="{mid_y:.2}" font-size="13" text-anchor="middle" transform="rotate(-90 {label_x:.2} {mid_y:.2})">{}</text>"#,
            xml_escape(f.y_label)
        );
    }

    for (r, row) in rows.iter().enumerate() {
        let row_width: f64 = row.iter().map(|&i| entry_w(f.methods[i])).sum::<f64>() - 22.0;
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
                xml_escape(f.methods[i])
            );
            ex += entry_w(f.methods[i]);
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// One row of the interval figure: a label and, per statistic, an interval (if any).
pub(super) struct IntervalRow<'a> {
    /// Shown left of the row (`MT`, or `MT (5 games)` with several panels).
    pub label: String,
    /// Colour index, as in the curve figures.
    pub method: usize,
    /// One interval per statistic of [`render_intervals`]'s `statistics`.
    pub intervals: Vec<Option<&'a super::rliable::Interval>>,
}

/// rliable's interval-estimate figure: one column per statistic, one row per method, each
/// interval a bar from its low to its high end with a tick at the estimate.
pub(super) fn render_intervals(title: &str, x_label: &str, statistics: &[&str], rows: &[IntervalRow<'_>]) -> String {
    const COL_W: f64 = 200.0;
    const COL_GAP: f64 = 48.0;
    const ROW_H: f64 = 30.0;
    let label_w = rows.iter().map(|r| text_width(&r.label, 13.0)).fold(60.0, f64::max) + 16.0;
    let cols = statistics.len().max(1);
    let plots_width = LEFT + label_w + cols as f64 * (COL_W + COL_GAP) + RIGHT;
    let width = plots_width.max(text_width(title, 20.0) + 40.0);
    let x0 = (width - plots_width) / 2.0 + LEFT + label_w;
    let plot_h = rows.len().max(1) as f64 * ROW_H;
    let top = TOP;
    let height = top + plot_h + 62.0;
    let mut svg = svg_start(width, height, title);
    for (r, row) in rows.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.2}" y="{:.2}" font-size="13" text-anchor="end">{}</text>"#,
            x0 - 10.0,
            top + (r as f64 + 0.5) * ROW_H + 4.5,
            xml_escape(&row.label)
        );
    }
    for (c, stat) in statistics.iter().enumerate() {
        let px = x0 + c as f64 * (COL_W + COL_GAP);
        let ends = || rows.iter().filter_map(|r| r.intervals.get(c).copied().flatten()).flat_map(|i| [i.low, i.high, i.estimate]);
        let lo = ends().filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min);
        let hi = ends().filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, f64::max);
        let axis = if lo.is_finite() { Axis::new(lo, hi, 3.0, false) } else { Axis::new(0.0, 1.0, 3.0, false) };
        let x = |v: f64| px + axis.frac(v, COL_W);
        let _ = writeln!(
            svg,
            r#"<text class="panel-title" x="{:.2}" y="{:.2}" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
            px + COL_W / 2.0,
            top - 12.0,
            xml_escape(stat)
        );
        for &t in &axis.ticks {
            let tx = x(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{tx:.2}" y1="{top:.2}" x2="{tx:.2}" y2="{:.2}" stroke="#e6e6e6"/><text x="{tx:.2}" y="{:.2}" font-size="12" text-anchor="middle">{}</text>"##,
                top + plot_h,
                top + plot_h + 18.0,
                xml_escape(&fmt_tick(t, axis.step))
            );
        }
        for (r, row) in rows.iter().enumerate() {
            let Some(i) = row.intervals.get(c).copied().flatten() else { continue };
            if !(i.low.is_finite() && i.high.is_finite() && i.estimate.is_finite()) {
                continue;
            }
            let (colour, _) = style_of(row.method);
            let cy = top + (r as f64 + 0.5) * ROW_H;
            let (x1, x2) = (x(i.low), x(i.high).max(x(i.low) + 1.0));
            let _ = writeln!(
                svg,
                r#"<rect x="{x1:.2}" y="{:.2}" width="{:.2}" height="16" fill="{colour}" fill-opacity="0.7"/><line x1="{:.2}" y1="{:.2}" x2="{:.2}" y2="{:.2}" stroke="{TEXT}" stroke-width="2"/>"#,
                cy - 8.0,
                x2 - x1,
                x(i.estimate),
                cy - 11.0,
                x(i.estimate),
                cy + 11.0
            );
        }
        let _ = writeln!(svg, r##"<line x1="{px:.2}" y1="{:.2}" x2="{:.2}" y2="{:.2}" stroke="#444"/>"##, top + plot_h, px + COL_W, top + plot_h);
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.2}" y="{:.2}" font-size="13" text-anchor="middle">{}</text>"#,
        x0 + (cols as f64 * (COL_W + COL_GAP) - COL_GAP) / 2.0,
        top + plot_h + 44.0,
        xml_escape(x_label)
    );
    svg.push_str("</svg>\n");
    svg
}

/// Rasterises `svg` at [`PNG_SCALE`] on white, with the system's fonts; without any, text is
/// missing but the image is still made.
pub(super) fn render_png(svg: &str) -> anyhow::Result<Vec<u8>> {
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


#[cfg(test)]
mod tests {
    use super::*;

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
}
