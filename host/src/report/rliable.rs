//! Aggregate statistics with stratified-bootstrap confidence intervals, as recommended by
//! Agarwal et al. (NeurIPS 2021, "Deep Reinforcement Learning at the Edge of the Statistical
//! Precipice") and defined by their `rliable` library, over a **score matrix**: one score per
//! run (here: per seed) and task.
//!
//! **Statistics** (rliable's `metrics.py`), over a matrix with one column of run scores per task:
//!
//! - **mean**: the mean over tasks of each task's mean score;
//! - **median**: the median over tasks of each task's mean score (with an even number of tasks,
//!   the mean of the middle two);
//! - **IQM**, the interquartile mean: all scores pooled and sorted, `floor(n / 4)` of them cut
//!   from each end, the rest averaged (scipy's `trim_mean(scores, 0.25)`, which truncates the
//!   cut: with fewer than four scores nothing is cut, with 6 one from each end);
//! - **optimality gap** at γ (1: the target of a normalised score): γ − the mean over all scores
//!   of min(score, γ), how far the scores fall short of γ, a score above γ counting as γ;
//! - **performance profile** (rliable's score distribution): for each threshold τ, the
//!   fraction of all scores strictly above τ;
//! - **probability of improvement** P(X > Y): per task, the Mann–Whitney U statistic of X's runs
//!   against Y's (the number of pairs (x, y) with x > y, a tie counting ½) divided by the number
//!   of pairs; then the mean over tasks. So P(X > Y) + P(Y > X) = 1, and identical runs give ½.
//!
//! **Stratified bootstrap** (rliable's `StratifiedBootstrap`). A resample draws, for each task
//! on its own, as many runs as the task has, uniformly with replacement from that task's runs:
//! a task's scores never stand in for another task's, and every resample keeps every task. The
//! four statistics above are computed on the same resamples; the probability of improvement
//! resamples X and Y independently, each stratified by task (`StratifiedIndependentBootstrap`).
//! The 95% interval is the **percentile interval**: the 2.5th and 97.5th percentiles of the
//! statistic over the resamples, interpolated between order statistics as numpy's `percentile`
//! does by default (rliable's `method='percentile'`). With one run per task every resample is
//! the data itself, and the interval shrinks to the point estimate.
//!
//! **Determinism.** The generator is metarl's SplitMix64 ([`SeedStream`]) seeded from a *name*
//! (`seeds::derive(0, name)`), never from a position or the clock, so the same scores under the
//! same name give the same interval in every run, on every machine, whatever else the report
//! holds. Each resample draws its tasks in column order, each run with `SeedStream::below`.
//! rliable draws from numpy's generator instead, so intervals agree with it up to Monte-Carlo
//! error, point estimates exactly.
//!
//! Matrices may be ragged (a run without a final score is left out of its task only). The mean
//! and median then weigh every task equally, the IQM and optimality gap every score; on
//! rliable's rectangular matrices the two weightings coincide.

use metarl_plugin_kit::seeds::{self, SeedStream};

/// Resamples behind every interval unless `[report] bootstrap_resamples` says otherwise:
/// rliable's default for interval estimates (`get_interval_estimates(reps=50000)`). The
/// percentile endpoints are then within about ±0.07 percentile points of their limit (the
/// standard error of an estimated 2.5% quantile, √(0.025 · 0.975 / 50000)), and a study-sized
/// matrix (a few seeds × a few tasks, a few methods) takes milliseconds.
pub const DEFAULT_RESAMPLES: u32 = 50_000;

/// Coverage of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// The optimality gap's target: 1, a normalised score's high reference.
pub const GAMMA: f64 = 1.0;

/// Final scores of one method: one column per task, each holding the scores of that task's
/// runs. Every task has at least one run and every score is finite.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreMatrix {
    columns: Vec<Vec<f64>>,
}

impl ScoreMatrix {
    /// From one column per task; `None` without tasks, with a task without runs, or with a
    /// score that is not finite.
    pub fn from_columns(columns: Vec<Vec<f64>>) -> Option<ScoreMatrix> {
        let ok = !columns.is_empty() && columns.iter().all(|c| !c.is_empty() && c.iter().all(|x| x.is_finite()));
        ok.then_some(ScoreMatrix { columns })
    }

    /// From rows of runs, `runs[run][task]`, the way rliable takes scores; `None` for ragged
    /// rows and wherever [`ScoreMatrix::from_columns`] would give it.
    pub fn from_runs(runs: &[&[f64]]) -> Option<ScoreMatrix> {
        let tasks = runs.first()?.len();
        if runs.iter().any(|r| r.len() != tasks) {
            return None;
        }
        ScoreMatrix::from_columns((0..tasks).map(|t| runs.iter().map(|r| r[t]).collect()).collect())
    }

    /// The columns: one per task, its runs' scores.
    pub fn columns(&self) -> &[Vec<f64>] {
        &self.columns
    }

    /// Number of tasks.
    pub fn tasks(&self) -> usize {
        self.columns.len()
    }

    /// Number of scores, over all tasks.
    pub fn scores(&self) -> usize {
        self.columns.iter().map(Vec::len).sum()
    }

    /// Overwrites `out` (of the same shape) with a stratified resample of `self`.
    fn resample_into(&self, rng: &mut SeedStream, out: &mut ScoreMatrix) {
        for (column, drawn) in self.columns.iter().zip(&mut out.columns) {
            for x in drawn.iter_mut() {
                *x = column[rng.below(column.len())];
            }
        }
    }

    fn task_means(&self) -> Vec<f64> {
        self.columns.iter().map(|c| c.iter().sum::<f64>() / c.len() as f64).collect()
    }

    fn pooled(&self) -> impl Iterator<Item = f64> + '_ {
        self.columns.iter().flatten().copied()
    }
}

/// The mean over tasks of the per-task mean scores.
pub fn mean(m: &ScoreMatrix) -> f64 {
    let means = m.task_means();
    means.iter().sum::<f64>() / means.len() as f64
}

/// The median over tasks of the per-task mean scores.
pub fn median(m: &ScoreMatrix) -> f64 {
    let mut means = m.task_means();
    means.sort_by(f64::total_cmp);
    let n = means.len();
    if n % 2 == 1 {
        means[n / 2]
    } else {
        (means[n / 2 - 1] + means[n / 2]) / 2.0
    }
}

/// The interquartile mean of all scores: `floor(n / 4)` cut from each end of the sorted
/// scores, the rest averaged.
pub fn iqm(m: &ScoreMatrix) -> f64 {
    let mut all: Vec<f64> = m.pooled().collect();
    all.sort_by(f64::total_cmp);
    let cut = all.len() / 4;
    let middle = &all[cut..all.len() - cut];
    middle.iter().sum::<f64>() / middle.len() as f64
}

/// `gamma` − the mean over all scores of min(score, `gamma`).
pub fn optimality_gap(m: &ScoreMatrix, gamma: f64) -> f64 {
    gamma - m.pooled().map(|x| x.min(gamma)).sum::<f64>() / m.scores() as f64
}

/// P(X > Y): per task, the fraction of pairs (a run of X, a run of Y) where X scores higher,
/// a tie counting ½; then the mean over tasks. Column `k` of both is task `k`.
///
/// # Panics
/// If `x` and `y` have different numbers of tasks (a caller's bug: they must be aligned).
pub fn probability_of_improvement(x: &ScoreMatrix, y: &ScoreMatrix) -> f64 {
    assert_eq!(x.tasks(), y.tasks(), "probability of improvement over matrices of different tasks");
    let per_task = x.columns.iter().zip(&y.columns).map(|(xs, ys)| {
        let u: f64 = xs
            .iter()
            .flat_map(|a| {
                ys.iter().map(move |b| match a.total_cmp(b) {
                    std::cmp::Ordering::Greater => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Less => 0.0,
                })
            })
            .sum();
        u / (xs.len() * ys.len()) as f64
    });
    per_task.sum::<f64>() / x.tasks() as f64
}

/// A point estimate and its 95% percentile-bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The statistic on the data itself.
    pub estimate: f64,
    /// The 2.5th percentile of the statistic over the resamples.
    pub low: f64,
    /// The 97.5th percentile.
    pub high: f64,
}

impl Interval {
    /// The interval of 1 − the statistic: P(Y > X) from P(X > Y).
    pub fn complement(self) -> Interval {
        Interval { estimate: 1.0 - self.estimate, low: 1.0 - self.high, high: 1.0 - self.low }
    }
}

/// rliable's four aggregate statistics of one method, each with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregates {
    /// [`mean`].
    pub mean: Interval,
    /// [`median`].
    pub median: Interval,
    /// [`iqm`].
    pub iqm: Interval,
    /// [`optimality_gap`] at [`GAMMA`].
    pub optimality_gap: Interval,
}

/// The generator of the bootstrap called `name`.
fn stream(name: &str) -> SeedStream {
    SeedStream::new(seeds::derive(0, name))
}

/// The `q` quantile (0 ≤ q ≤ 1) of ascending `sorted`, interpolated linearly between the order
/// statistics around index q·(n − 1), with numpy's rounding (`np.percentile`, method `linear`).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = q * (sorted.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let (a, b, t) = (sorted[lo], sorted[hi], h - lo as f64);
    // numpy interpolates from the nearer end, so that t = 1 gives b exactly.
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

/// The percentile interval of `estimate` from its bootstrap replicates.
fn percentile_interval(estimate: f64, mut replicates: Vec<f64>) -> Interval {
    replicates.sort_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    Interval { estimate, low: quantile(&replicates, tail), high: quantile(&replicates, 1.0 - tail) }
}

/// Mean, median, IQM and optimality gap of `m` with intervals from `resamples` (at least 1)
/// stratified resamples, shared by the four, drawn by the generator named `name`.
pub fn aggregates(m: &ScoreMatrix, resamples: u32, name: &str) -> Aggregates {
    let statistics: [fn(&ScoreMatrix) -> f64; 4] = [mean, median, iqm, |m| optimality_gap(m, GAMMA)];
    let mut replicates: Vec<Vec<f64>> = (0..4).map(|_| Vec::with_capacity(resamples as usize)).collect();
    let mut rng = stream(name);
    let mut drawn = m.clone();
    for _ in 0..resamples.max(1) {
        m.resample_into(&mut rng, &mut drawn);
        for (f, r) in statistics.iter().zip(&mut replicates) {
            r.push(f(&drawn));
        }
    }
    let mut intervals = statistics.iter().zip(replicates).map(|(f, r)| percentile_interval(f(m), r));
    let mut next = || intervals.next().expect("four statistics");
    Aggregates { mean: next(), median: next(), iqm: next(), optimality_gap: next() }
}

/// P(X > Y) with its interval from `resamples` (at least 1) resamples of `x` and `y`, each
/// stratified by task and independent of the other (`x` drawn first), by the generator named
/// `name`.
///
/// # Panics
/// As [`probability_of_improvement`].
pub fn improvement(x: &ScoreMatrix, y: &ScoreMatrix, resamples: u32, name: &str) -> Interval {
    let estimate = probability_of_improvement(x, y);
    let mut rng = stream(name);
    let (mut dx, mut dy) = (x.clone(), y.clone());
    let replicates = (0..resamples.max(1))
        .map(|_| {
            x.resample_into(&mut rng, &mut dx);
            y.resample_into(&mut rng, &mut dy);
            probability_of_improvement(&dx, &dy)
        })
        .collect();
    percentile_interval(estimate, replicates)
}

/// The performance profile at each of `taus`: the fraction of all scores above τ (rliable's
/// `run_score_distribution`, `np.mean(scores > tau)` over the whole matrix).
pub fn profile(m: &ScoreMatrix, taus: &[f64]) -> Vec<f64> {
    let n = m.scores() as f64;
    taus.iter().map(|&t| m.pooled().filter(|&x| x > t).count() as f64 / n).collect()
}

/// [`profile`] with an interval at every τ from `resamples` (at least 1) stratified resamples,
/// one set of resamples for all thresholds, by the generator named `name`.
pub fn profile_intervals(m: &ScoreMatrix, taus: &[f64], resamples: u32, name: &str) -> Vec<Interval> {
    let mut replicates: Vec<Vec<f64>> = taus.iter().map(|_| Vec::with_capacity(resamples as usize)).collect();
    let mut rng = stream(name);
    let mut drawn = m.clone();
    let mut sorted: Vec<f64> = Vec::with_capacity(m.scores());
    for _ in 0..resamples.max(1) {
        m.resample_into(&mut rng, &mut drawn);
        sorted.clear();
        sorted.extend(drawn.pooled());
        sorted.sort_by(f64::total_cmp);
        for (t, r) in taus.iter().zip(&mut replicates) {
            // Scores above τ: those after the last one ≤ τ.
            let above = sorted.len() - sorted.partition_point(|&x| x <= *t);
            r.push(above as f64 / sorted.len() as f64);
        }
    }
    profile(m, taus).into_iter().zip(replicates).map(|(e, r)| percentile_interval(e, r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_counts_scores_strictly_above_each_threshold() {
        // Scores 1, 2, 2, 4 (two runs x two tasks): above 0: 4/4; above 2: only 4, 1/4.
        let m = matrix(&[&[1.0, 2.0], &[2.0, 4.0]]);
        assert_eq!(profile(&m, &[0.0, 1.0, 2.0, 3.5, 4.0]), vec![1.0, 0.75, 0.25, 0.25, 0.0]);
        let with_ci = profile_intervals(&m, &[0.0, 2.0, 4.0], 300, "p");
        assert_eq!(with_ci.iter().map(|i| i.estimate).collect::<Vec<_>>(), vec![1.0, 0.25, 0.0]);
        // Every score above 0 in every resample; none above 4 in any.
        assert_eq!((with_ci[0].low, with_ci[0].high, with_ci[2].low, with_ci[2].high), (1.0, 1.0, 0.0, 0.0));
        // At 2 only task 2's runs {2, 4} count: a resample holds none, one or two 4s, 0 to 1/2.
        assert!(with_ci[1].low >= 0.0 && with_ci[1].high <= 0.5 && with_ci[1].low < with_ci[1].high);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn matrix(runs: &[&[f64]]) -> ScoreMatrix {
        ScoreMatrix::from_runs(runs).expect("a valid matrix")
    }

    #[test]
    fn mean_and_median_average_each_task_first() {
        // Runs x tasks [[1, 2, 9], [3, 4, 1]]: task means 2, 3, 5.
        // mean = (2 + 3 + 5) / 3 = 10/3; median = 3.
        let m = matrix(&[&[1.0, 2.0, 9.0], &[3.0, 4.0, 1.0]]);
        assert!(close(mean(&m), 10.0 / 3.0), "{}", mean(&m));
        assert_eq!(median(&m), 3.0);
        // Four tasks, means 1, 2, 4, 8: the median is the mean of the middle two, 3.
        let m = matrix(&[&[1.0, 2.0, 4.0, 8.0]]);
        assert_eq!(median(&m), 3.0);
        // Ragged: task means (0 + 2) / 2 = 1 and 10 weigh equally: mean 5.5, not 12 / 3 = 4.
        let ragged = ScoreMatrix::from_columns(vec![vec![0.0, 2.0], vec![10.0]]).unwrap();
        assert!(close(mean(&ragged), 5.5));
    }

    #[test]
    fn iqm_cuts_a_quarter_from_each_end_rounding_the_cut_down() {
        // 6 scores: floor(6/4) = 1 cut from each end of 1 2 4 6 8 10 -> mean(2, 4, 6, 8) = 5.
        assert_eq!(iqm(&matrix(&[&[1.0, 8.0], &[4.0, 2.0], &[10.0, 6.0]])), 5.0);
        // 7 scores 0 1 2 3 4 10 100: floor(7/4) = 1 -> mean(1, 2, 3, 4, 10) = 4
        // (rounding the cut to the nearest, 2, would give mean(2, 3, 4) = 3).
        let seven = ScoreMatrix::from_columns(vec![vec![100.0, 0.0, 3.0, 1.0, 10.0, 2.0, 4.0]]).unwrap();
        assert_eq!(iqm(&seven), 4.0);
        // 3 scores: floor(3/4) = 0, nothing cut, the outlier counts: (0 + 1 + 100) / 3.
        assert!(close(iqm(&matrix(&[&[0.0], &[1.0], &[100.0]])), 101.0 / 3.0));
        // 8 scores 1..=8: 2 cut from each end -> mean(3, 4, 5, 6) = 4.5.
        assert_eq!(iqm(&matrix(&[&[8.0, 1.0, 7.0, 2.0], &[3.0, 6.0, 4.0, 5.0]])), 4.5);
    }

    #[test]
    fn optimality_gap_clips_scores_at_gamma() {
        // min(x, 1): 0.5, 1 (from 1.5), 0.2, 0.9 -> mean 2.6 / 4 = 0.65 -> gap 0.35.
        let m = matrix(&[&[0.5, 1.5], &[0.2, 0.9]]);
        assert!(close(optimality_gap(&m, 1.0), 0.35), "{}", optimality_gap(&m, 1.0));
        // Every score at or above gamma: no gap, however high they are.
        assert_eq!(optimality_gap(&matrix(&[&[1.0, 7.0]]), 1.0), 0.0);
        // Another gamma: min(x, 2) = 0.5, 1.5, 0.2, 0.9 -> mean 0.775 -> gap 1.225.
        assert!(close(optimality_gap(&m, 2.0), 1.225));
    }

    #[test]
    fn probability_of_improvement_counts_pairs_with_ties_as_half() {
        // Task 1: X [1, 2, 3] against Y [2, 2]: x=1 wins no pair, x=2 ties both (2 x 1/2),
        //   x=3 wins both: U = 0 + 1 + 2 = 3 of 3 x 2 = 6 pairs -> 1/2.
        // Task 2: X [4, 5, 6] against Y [1, 2]: every pair won -> 6/6 = 1.
        // Mean over tasks: (1/2 + 1) / 2 = 3/4.
        let x = ScoreMatrix::from_columns(vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]).unwrap();
        let y = ScoreMatrix::from_columns(vec![vec![2.0, 2.0], vec![1.0, 2.0]]).unwrap();
        assert_eq!(probability_of_improvement(&x, &y), 0.75);
        assert_eq!(probability_of_improvement(&y, &x), 0.25, "P(Y > X) = 1 - P(X > Y)");
        assert_eq!(probability_of_improvement(&x, &x), 0.5, "a method against itself");
    }

    #[test]
    fn quantiles_interpolate_as_numpy_percentile() {
        // np.percentile([1, 2, 3, 4], [2.5, 97.5]): h = 3 * 0.025 = 0.075 -> 1 + 0.075 = 1.075;
        // h = 3 * 0.975 = 2.925 -> 3 + 0.925 = 3.925.
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert!(close(quantile(&xs, 0.025), 1.075) && close(quantile(&xs, 0.975), 3.925));
        assert_eq!((quantile(&xs, 0.0), quantile(&xs, 1.0)), (1.0, 4.0));
        assert_eq!(quantile(&[7.0], 0.975), 7.0);
    }

    #[test]
    fn the_bootstrap_resamples_runs_within_each_task() {
        // Each task's runs are constant: task A [0, 0], task B [10, 10]. Resampling within
        // tasks can only reproduce the data, so every interval is the point (mean 5). A
        // bootstrap that pooled the tasks' runs would draw all-0 and all-10 matrices too.
        let m = matrix(&[&[0.0, 10.0], &[0.0, 10.0]]);
        let a = aggregates(&m, 2000, "constant tasks");
        assert_eq!(a.mean, Interval { estimate: 5.0, low: 5.0, high: 5.0 });
        assert_eq!(a.median, a.mean);
        assert_eq!(a.iqm, a.mean);
        assert_eq!(a.optimality_gap, Interval { estimate: 0.5, low: 0.5, high: 0.5 }, "1 - (0 + 0 + 1 + 1) / 4");
    }

    #[test]
    fn bootstrap_means_follow_the_hand_computed_distribution() {
        // Two tasks, each with runs [0, 1]. A resample draws 2 runs per task, 4 independent
        // fair coin flips in all, so its mean is Binomial(4, 1/2) / 4:
        // P(0) = 1/16, P(1/4) = 4/16, P(1/2) = 6/16, P(3/4) = 4/16, P(1) = 1/16.
        let m = matrix(&[&[0.0, 0.0], &[1.0, 1.0]]);
        let n = 20_000;
        let mut rng = stream("binomial");
        let mut drawn = m.clone();
        let mut counts = [0usize; 5];
        for _ in 0..n {
            m.resample_into(&mut rng, &mut drawn);
            counts[(mean(&drawn) * 4.0).round() as usize] += 1;
        }
        for (k, want) in [1.0, 4.0, 6.0, 4.0, 1.0].iter().map(|c| c / 16.0).enumerate() {
            let got = counts[k] as f64 / n as f64;
            // Four standard errors of a proportion near 6/16 over 20k resamples: 0.014.
            assert!((got - want).abs() < 0.014, "P(mean = {k}/4) = {got}, want {want}: {counts:?}");
        }
        // So the 2.5th percentile is 0 (1/16 = 6.25% of resamples are 0) and the 97.5th is 1.
        let a = aggregates(&m, 2000, "binomial");
        assert_eq!(a.mean, Interval { estimate: 0.5, low: 0.0, high: 1.0 });
        // The IQM of 4 scores cuts one from each end: the mean of the middle two, also 1/2.
        assert_eq!(a.iqm.estimate, 0.5);
    }

    #[test]
    fn intervals_come_from_the_name_alone() {
        let m = matrix(&[&[0.1, 0.7, 0.3], &[0.9, 0.2, 0.5], &[0.4, 0.8, 0.6]]);
        let a = aggregates(&m, 500, "panel/MT");
        assert_eq!(a, aggregates(&m, 500, "panel/MT"), "the same name draws the same resamples");
        assert_ne!(a.mean, aggregates(&m, 500, "panel/Reptile").mean, "another name, other resamples");
        assert!(a.mean.low < a.mean.estimate && a.mean.estimate < a.mean.high, "{a:?}");
        // One resample is allowed: its interval is that resample's value at both ends.
        let one = aggregates(&m, 1, "one");
        assert_eq!(one.mean.low, one.mean.high);
    }

    #[test]
    fn improvement_resamples_both_methods_independently() {
        // X's runs [0, 1] against a constant Y [0.5, 0.5] (one task): a resample of X holds
        // k ones, k ~ Binomial(2, 1/2), and P(X > Y) = k / 2: 0 (1/4), 1/2 (1/2), 1 (1/4).
        // With both tails above 2.5%, the interval is [0, 1] around the estimate 1/2.
        let x = matrix(&[&[0.0], &[1.0]]);
        let y = matrix(&[&[0.5], &[0.5]]);
        let full = Interval { estimate: 0.5, low: 0.0, high: 1.0 };
        assert_eq!(improvement(&x, &y, 2000, "x varies"), full);
        // The other way round only Y varies, so only Y's resampling can widen the interval.
        assert_eq!(improvement(&y, &x, 2000, "y varies"), full);
        // X always better: every resample gives 1.
        let better = matrix(&[&[2.0], &[3.0]]);
        assert_eq!(improvement(&better, &x, 2000, "better"), Interval { estimate: 1.0, low: 1.0, high: 1.0 });
        assert_eq!(improvement(&better, &x, 2000, "better").complement(), Interval { estimate: 0.0, low: 0.0, high: 0.0 });
    }

    #[test]
    fn invalid_matrices_are_refused() {
        assert!(ScoreMatrix::from_columns(vec![]).is_none());
        assert!(ScoreMatrix::from_columns(vec![vec![1.0], vec![]]).is_none(), "a task without runs");
        assert!(ScoreMatrix::from_columns(vec![vec![f64::NAN]]).is_none());
        assert!(ScoreMatrix::from_runs(&[&[1.0, 2.0], &[3.0]]).is_none(), "ragged rows");
        let m = ScoreMatrix::from_runs(&[&[1.0, 2.0], &[3.0, 4.0], &[5.0, 6.0]]).unwrap();
        assert_eq!((m.tasks(), m.scores()), (2, 6));
        assert_eq!(m.columns(), [vec![1.0, 3.0, 5.0], vec![2.0, 4.0, 6.0]]);
    }
}
