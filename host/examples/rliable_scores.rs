//! metarl's rliable statistics (`metarl::report::rliable`) over score matrices read from JSON,
//! printed as JSON: plumbing for `benches/rliable.sh`, which feeds rliable the same matrices.
//!
//!   rliable_scores SCORES.json RESAMPLES [SALT]
//!
//! Input: `[{"name": "A", "scores": [[run0 task0, run0 task1, ...], [run1 task0, ...], ...]}, ...]`
//! (runs × tasks, rliable's layout). Output: `{"resamples": N, "matrices": [{"name", "mean",
//! "median", "iqm", "optimality_gap"}], "improvement": [{"x", "y", "poi"}]}`, each statistic
//! `{"estimate", "low", "high"}`; `improvement` holds P(X > Y) for every ordered pair of distinct
//! matrices with the same number of tasks. Intervals are seeded by name: a matrix's by its name,
//! a pair's by `"X>Y"`, each prefixed with `SALT/` when given (independent bootstraps of the
//! same matrices, which the bench uses to calibrate its Monte-Carlo tolerance).
use anyhow::{Context, Result, bail};
use metarl::report::rliable::{self, Interval, ScoreMatrix};
use serde_json::{Value, json};

fn interval(i: Interval) -> Value {
    json!({ "estimate": i.estimate, "low": i.low, "high": i.high })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !(3..=4).contains(&args.len()) {
        bail!("usage: rliable_scores SCORES.json RESAMPLES [SALT]");
    }
    let salt = args.get(3).map(|s| format!("{s}/")).unwrap_or_default();
    let text = std::fs::read_to_string(&args[1]).with_context(|| format!("reading {}", args[1]))?;
    let resamples: u32 = args[2].parse().context("RESAMPLES: a positive integer")?;
    let input: Vec<(String, Vec<Vec<f64>>)> = serde_json::from_str::<Vec<Value>>(&text)?
        .into_iter()
        .map(|m| Ok((serde_json::from_value(m["name"].clone())?, serde_json::from_value(m["scores"].clone())?)))
        .collect::<Result<_>>()
        .context("expected [{\"name\": ..., \"scores\": [[...], ...]}, ...]")?;
    let mut matrices = Vec::new();
    for (name, runs) in &input {
        let rows: Vec<&[f64]> = runs.iter().map(Vec::as_slice).collect();
        let m = ScoreMatrix::from_runs(&rows)
            .with_context(|| format!("{name}: not a runs x tasks matrix of finite scores"))?;
        matrices.push((name.as_str(), m));
    }
    let aggregates: Vec<Value> = matrices
        .iter()
        .map(|(name, m)| {
            let a = rliable::aggregates(m, resamples, &format!("{salt}{name}"));
            json!({ "name": name, "mean": interval(a.mean), "median": interval(a.median), "iqm": interval(a.iqm),
                    "optimality_gap": interval(a.optimality_gap) })
        })
        .collect();
    let mut improvement = Vec::new();
    for (i, (x, mx)) in matrices.iter().enumerate() {
        for (j, (y, my)) in matrices.iter().enumerate() {
            if i != j && mx.tasks() == my.tasks() {
                let poi = rliable::improvement(mx, my, resamples, &format!("{salt}{x}>{y}"));
                improvement.push(json!({ "x": x, "y": y, "poi": interval(poi) }));
            }
        }
    }
    println!("{}", json!({ "resamples": resamples, "matrices": aggregates, "improvement": improvement }));
    Ok(())
}
