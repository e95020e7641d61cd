//! The results tables: markdown for people, CSV for programs. Markdown cells show NaN as
//! `n/a` and a reduced seed count as `(n=k)`; CSV cells hold full-precision numbers.
//!
//! Two kinds: the summary (the paper's mean ± SE of zero-shot, final and AUC per method) and
//! the aggregates (rliable's statistics of the final scores with bootstrap intervals).

use std::fmt::Write as _;

use super::rliable::{Aggregates, Interval};
use super::stats::{Stat, SummaryStats};
use super::{ScoreKind, SummaryRow};

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

pub(super) fn summary_markdown(title: &str, what: &str, stats: &[SummaryStats]) -> String {
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

pub(super) fn summary_csv(rows: &[SummaryRow]) -> String {
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


/// One method's row of the aggregate table.
pub(super) struct AggregateRow {
    pub(super) panel: String,
    pub(super) method: String,
    /// Distinct seeds among the method's curves.
    pub(super) seeds: usize,
    /// Held-out tasks among them.
    pub(super) tasks: usize,
    /// Finite final scores behind the statistics (at most seeds × tasks).
    pub(super) scores: usize,
    /// `None` without a single finite final score.
    pub(super) stats: Option<Aggregates>,
}

/// P(method > versus) within one panel.
pub(super) struct ImprovementRow {
    pub(super) panel: String,
    pub(super) method: String,
    pub(super) versus: String,
    /// Finite scores of both methods on the tasks both have scores for.
    pub(super) scores: usize,
    /// `None` when the two share no task with scores.
    pub(super) p: Option<Interval>,
}

/// `0.51 [0.42, 0.60]`: at least two significant digits of the largest magnitude shown.
fn fmt_interval(i: Option<Interval>) -> String {
    let Some(i) = i else { return "n/a".to_string() };
    let scale = i.estimate.abs().max(i.low.abs()).max(i.high.abs());
    let mut d = 2;
    while d < 6 && scale > 0.0 && scale * 10f64.powi(d as i32) < 10.0 {
        d += 1;
    }
    format!("{:.d$} [{:.d$}, {:.d$}]", i.estimate, i.low, i.high)
}

fn scores_phrase(kind: ScoreKind<'_>) -> String {
    match kind {
        ScoreKind::Return => "Scores: test returns as they are (neither the experiment's `[report] reference_scores` \
                              nor the env plugin gives references for every held-out task); the optimality gap is \
                              still taken against 1."
            .to_string(),
        ScoreKind::Normalised { name, source } => {
            format!("Scores: {name}, (return − low) / (high − low) with {source}, so that 0 is the low reference and 1 the high one.")
        }
        ScoreKind::Success => "Scores: success rates, the fraction of evaluation episodes that solved the task; the optimality \
                               gap is taken against 1 (every episode solved)."
            .to_string(),
    }
}

pub(super) fn aggregates_markdown(
    title: &str,
    kind: ScoreKind<'_>,
    resamples: u32,
    rows: &[AggregateRow],
    better: &[ImprovementRow],
) -> String {
    let mut md = format!("# {}\n\n{}\n\n", title.replace(['\n', '\r'], " "), scores_phrase(kind));
    md.push_str("| panel | method | seeds × tasks | mean | median | IQM | optimality gap |\n");
    md.push_str("|---|---|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let mut count = format!("{} × {}", r.seeds, r.tasks);
        if r.scores != r.seeds * r.tasks {
            count = format!("{} of {count}", r.scores);
        }
        let s = r.stats;
        let _ = writeln!(
            md,
            "| {} | {} | {count} | {} | {} | {} | {} |",
            md_cell(&r.panel),
            md_cell(&r.method),
            fmt_interval(s.map(|s| s.mean)),
            fmt_interval(s.map(|s| s.median)),
            fmt_interval(s.map(|s| s.iqm)),
            fmt_interval(s.map(|s| s.optimality_gap)),
        );
    }
    if !better.is_empty() {
        md.push_str("\n| panel | method | versus | P(method > versus) |\n|---|---|---|---:|\n");
        for b in better {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                md_cell(&b.panel),
                md_cell(&b.method),
                md_cell(&b.versus),
                fmt_interval(b.p)
            );
        }
    }
    let _ = write!(
        md,
        "\nOne score per seed and held-out task: the final value of its adaptation curve (its \
         last evaluation). As in rliable (Agarwal et al. 2021): mean and median of the per-task \
         mean scores; IQM, the mean of the middle half of all scores (a quarter, rounded down, \
         cut from each end); optimality gap, 1 − the mean of min(score, 1); P(method > versus), \
         the probability that a run of `method` scores higher than a run of `versus` on the same \
         held-out task (ties count ½), averaged over the tasks both have. Each is shown as \
         estimate [95% CI], the percentile interval of {resamples} stratified bootstrap \
         resamples (each task's seeds drawn with replacement, task by task); with one seed, \
         the interval is the estimate itself. `n/a`: no final score. `k of s × t`: k of the \
         s × t scores exist.\n"
    );
    md
}

pub(super) fn aggregates_csv(kind: ScoreKind<'_>, rows: &[AggregateRow], better: &[ImprovementRow]) -> String {
    let score = match kind {
        ScoreKind::Return => "return",
        ScoreKind::Normalised { .. } => "normalised",
        ScoreKind::Success => "success",
    };
    let mut csv = String::from("panel,method,statistic,versus,estimate,ci_low,ci_high,scores,score\n");
    let mut line = |panel: &str, method: &str, statistic: &str, versus: &str, i: Option<Interval>, n: usize| {
        let i = i.unwrap_or(Interval { estimate: f64::NAN, low: f64::NAN, high: f64::NAN });
        let _ = writeln!(
            csv,
            "{},{},{statistic},{},{},{},{},{n},{score}",
            csv_field(panel),
            csv_field(method),
            csv_field(versus),
            i.estimate,
            i.low,
            i.high
        );
    };
    for r in rows {
        let s = r.stats;
        line(&r.panel, &r.method, "mean", "", s.map(|s| s.mean), r.scores);
        line(&r.panel, &r.method, "median", "", s.map(|s| s.median), r.scores);
        line(&r.panel, &r.method, "iqm", "", s.map(|s| s.iqm), r.scores);
        line(&r.panel, &r.method, "optimality_gap", "", s.map(|s| s.optimality_gap), r.scores);
    }
    for b in better {
        line(&b.panel, &b.method, "probability_of_improvement", &b.versus, b.p, b.scores);
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::super::summarize;
    use super::super::test_curves::*;
    use super::*;

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
}
