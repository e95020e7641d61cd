"""metarl's rliable statistics against rliable 1.2.0 itself, on the same seeded score matrices.

    python benches/rliable_compare.py RLIABLE_SCORES_BINARY REPS K [CALIBRATE]

Run by benches/rliable.sh in a venv holding rliable. It builds score matrices of several shapes
(runs x tasks: 3x1, 5x1, 10x3, 5x3 and 10x3 on a grid of ties, 5x4, two 5x4 with identical runs
sharing two columns, 10x5 log-normal, 3x5), runs the metarl example (host/examples/
rliable_scores.rs) on them and rliable's own functions:

- point estimates: metrics.aggregate_mean/median/iqm/optimality_gap on every matrix and
  metrics.probability_of_improvement on every ordered pair with the same task count; the largest
  |metarl - rliable| must be < 1e-9;
- 95% percentile intervals: library.get_interval_estimates(method='percentile', reps=REPS) for
  the four aggregates of every matrix (one bootstrap shared by the four, as metarl does) and for
  probability of improvement on POI_CI_PAIRS (StratifiedIndependentBootstrap: rliable's
  Mann-Whitney costs about 0.5 ms a task a resample, so every pair at 20k resamples would take
  many minutes; PAIRS=all does every ordered pair). rliable runs twice, with numpy seeds 1 and 2
  (its stratified bootstraps draw from numpy's global generator through np.random.choice and
  ignore `random_state`, so np.random.seed is what seeds them).

Monte-Carlo tolerance. Were metarl's bootstrap rliable's with another generator, metarl's
endpoints M and rliable's second run R2 would be exchangeable given rliable's first run R1, so
the largest difference of M from R1 would have exactly the distribution of R2's. Differences are
measured in quantile level: where an endpoint's value falls in R1's bootstrap distribution
(its replicates, recorded from the function rliable calls), against the nominal 0.025 or 0.975;
0 when the value sits on an atom covering that level. In level, the Monte-Carlo error is about
sqrt(2 x 0.025 x 0.975 / REPS) for every endpoint; in value it is not: a discrete bootstrap
distribution (ties, 3 runs) can put two runs' endpoints on neighbouring atoms, and such jumps
make the largest value difference a poor yardstick (the value ratio below exceeds 3 in about 9%
of runs when nothing differs). The check passes when metarl's largest level difference is within
K (3 by default) x rliable-vs-rliable's. CALIBRATE=N measures how often either ratio exceeds K
when nothing differs: N metarl runs with independent seeds (SALT) in the roles of M and R2.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from rliable import library, metrics

STATS = ("mean", "median", "iqm", "optimality_gap")
TAIL = (1 - 0.95) / 2  # 95% intervals: the 2.5th and 97.5th percentiles
AGGREGATE = {
    "mean": metrics.aggregate_mean,
    "median": metrics.aggregate_median,
    "iqm": metrics.aggregate_iqm,
    "optimality_gap": metrics.aggregate_optimality_gap,  # gamma = 1, metarl's GAMMA
}
# Pairs (X, Y) whose P(X > Y) interval is compared: 1 task with different run counts, 3 tasks
# with ties within and across the two, 4 tasks (an even count) against identical runs.
POI_CI_PAIRS = [("n5x1", "u3x1"), ("ties10x3", "ties5x3"), ("u5x4", "same5x4")]


def score_matrices():
    """Seeded runs x tasks matrices; scores straddle 1 so the optimality gap clips some."""
    rng = np.random.default_rng(20211206)
    grid = np.arange(6) * 0.25  # 0 .. 1.25: ties within and across matrices
    same = rng.uniform(0, 1.2, 4)
    same_b = np.concatenate([same[:2], rng.uniform(0, 1.2, 2)])
    return {
        "u3x1": rng.uniform(0, 1.2, (3, 1)),
        "n5x1": rng.normal(0.6, 0.3, (5, 1)),
        "u10x3": rng.uniform(0, 1.5, (10, 3)),
        "ties5x3": rng.choice(grid, (5, 3)),
        "ties10x3": rng.choice(grid, (10, 3)),
        "u5x4": rng.uniform(0, 1.2, (5, 4)),
        "same5x4": np.tile(same, (5, 1)),  # identical runs
        "same5x4b": np.tile(same_b, (5, 1)),  # identical runs, two columns equal to same5x4's
        "logn10x5": rng.lognormal(-0.5, 0.6, (10, 5)),
        "u3x5": rng.uniform(0, 1.2, (3, 5)),
    }


def metarl(binary, path, reps, salt=None):
    cmd = [binary, path, str(reps)] + ([str(salt)] if salt is not None else [])
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    aggregates = {m["name"]: m for m in out["matrices"]}
    poi = {(p["x"], p["y"]): p["poi"] for p in out["improvement"]}
    return aggregates, poi


def aggregates_func(scores):
    return np.array([AGGREGATE[s](scores) for s in STATS])


def recorded(func, log):
    """func, appending every value it returns to log: get_interval_estimates calls it on the
    data (twice), then once per resample, so log[-reps:] are rliable's bootstrap replicates."""

    def wrapper(*args):
        value = func(*args)
        log.append(value)
        return value

    return wrapper


def rliable_intervals(seed, mats, pairs, reps):
    """rliable's intervals, {name: 2x4 [low; high]} and {(x, y): [low, high]}, and its sorted
    replicates, {name: reps x 4} and {(x, y): reps}."""
    np.random.seed(seed)
    agg, agg_reps, poi, poi_reps = {}, {}, {}, {}
    for name, m in mats.items():
        log = []
        _, ci = library.get_interval_estimates({name: m}, recorded(aggregates_func, log), method="percentile", reps=reps)
        agg[name], agg_reps[name] = ci[name], np.sort(np.array(log[-reps:]), axis=0)
    for x, y in pairs:
        log = []
        _, ci = library.get_interval_estimates(
            {"pair": [mats[x], mats[y]]},
            recorded(metrics.probability_of_improvement, log),
            method="percentile",
            reps=reps,
        )
        poi[(x, y)], poi_reps[(x, y)] = ci["pair"][:, 0], np.sort(np.array(log[-reps:]))
    return (agg, poi), (agg_reps, poi_reps)


def endpoints(agg, poi, names, pairs):
    """Every compared endpoint, from metarl's or rliable's intervals: labels (statistic, text,
    nominal level) and values."""
    labels, values = [], []
    for name in names:
        for i, stat in enumerate(STATS):
            for j, (end, p) in enumerate((("low", TAIL), ("high", 1 - TAIL))):
                labels.append((stat, f"{name} {stat} {end}", p))
                values.append(agg[name][stat][end] if isinstance(agg[name], dict) else agg[name][j, i])
    for x, y in pairs:
        for j, (end, p) in enumerate((("low", TAIL), ("high", 1 - TAIL))):
            labels.append(("poi", f"P({x} > {y}) {end}", p))
            values.append(poi[(x, y)][end] if isinstance(poi[(x, y)], dict) else poi[(x, y)][j])
    return labels, np.array(values)


def replicates(reps_by, names, pairs):
    """rliable's sorted replicates behind each endpoint, in the order of `endpoints`."""
    out = []
    for name in names:
        for i in range(len(STATS)):
            out += [reps_by[0][name][:, i]] * 2
    for pair in pairs:
        out += [reps_by[1][pair]] * 2
    return out


def levels(labels, values, sorted_reps):
    """How far, in quantile level, each endpoint value lies from its nominal level (0.025 or
    0.975) in a reference bootstrap distribution: 0 when the value is a quantile at that level
    (for a value on an atom of a discrete distribution, any level the atom covers)."""
    out = np.empty(len(values))
    for e, ((_, _, p), v, s) in enumerate(zip(labels, values, sorted_reps)):
        eps = 1e-9 * max(1.0, abs(v))  # the same atom, summed in another order
        below = np.searchsorted(s, v - eps, "left") / len(s)
        upto = np.searchsorted(s, v + eps, "right") / len(s)
        out[e] = max(0.0, below - p, p - upto)
    return out


def main():
    binary, reps, k = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    calibrate = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    mats = score_matrices()
    names = list(mats)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([{"name": n, "scores": m.tolist()} for n, m in mats.items()], f)
        path = f.name
    try:
        t = time.perf_counter()
        ours_agg, ours_poi = metarl(binary, path, reps)
        print(f"metarl: {len(names)} matrices, {len(ours_poi)} ordered pairs, {reps} resamples: "
              f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
        pairs = list(ours_poi) if os.environ.get("PAIRS") == "all" else POI_CI_PAIRS

        # --- point estimates ---------------------------------------------------------------
        point = {s: 0.0 for s in STATS + ("poi",)}
        for name, m in mats.items():
            for s in STATS:
                point[s] = max(point[s], abs(ours_agg[name][s]["estimate"] - AGGREGATE[s](m)))
        for (x, y), ours in ours_poi.items():
            theirs = metrics.probability_of_improvement(mats[x], mats[y])
            point["poi"] = max(point["poi"], abs(ours["estimate"] - theirs))

        # --- intervals: rliable twice, independent seeds, in parallel ----------------------
        t = time.perf_counter()
        with ProcessPoolExecutor(2) as pool:
            (r1_ci, r1_reps), (r2_ci, _) = pool.map(rliable_intervals, [1, 2], [mats] * 2, [pairs] * 2, [reps] * 2)
        print(f"rliable: two bootstrap runs of {reps} resamples ({len(pairs)} pair intervals each): "
              f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
        labels, ours = endpoints(ours_agg, ours_poi, names, pairs)
        _, r1 = endpoints(*r1_ci, names, pairs)
        _, r2 = endpoints(*r2_ci, names, pairs)
        reference = replicates(r1_reps, names, pairs)
        d_ours, d_rr = np.abs(ours - r1), np.abs(r2 - r1)
        l_ours, l_rr = levels(labels, ours, reference), levels(labels, r2, reference)

        print("endpoint differences from rliable (seed 1): in value, and in quantile level within its bootstrap")
        print(f"{'statistic':<15} {'point |diff|':>12} {'metarl':>8} {'rliable2':>8} {'level metarl':>12} "
              f"{'rliable2':>8} {'endpoints':>9}")
        for s in STATS + ("poi",):
            idx = [i for i, lab in enumerate(labels) if lab[0] == s]
            print(f"{s:<15} {point[s]:>12.2e} {d_ours[idx].max():>8.5f} {d_rr[idx].max():>8.5f} "
                  f"{l_ours[idx].max():>12.5f} {l_rr[idx].max():>8.5f} {len(idx):>9}")
        for what, d in (("metarl", d_ours), ("rliable seed 2", d_rr)):
            w = int(np.argmax(d))
            print(f"largest {what} difference in value: {labels[w][1]}: rliable {r1[w]:.6f}, metarl {ours[w]:.6f}, "
                  f"rliable seed 2 {r2[w]:.6f}")
        for what, lv in (("metarl", l_ours), ("rliable seed 2", l_rr)):
            w = int(np.argmax(lv))
            print(f"largest {what} difference in level: {labels[w][1]}: {lv[w]:.5f}")
        sigma = np.sqrt(2 * TAIL * (1 - TAIL) / reps)
        print(f"Monte-Carlo error of an endpoint's level: sqrt(2 x 0.025 x 0.975 / {reps}) = {sigma:.5f}; "
              f"largest level differences: metarl {l_ours.max() / sigma:.1f}, rliable seed 2 {l_rr.max() / sigma:.1f} of it")

        if calibrate >= 2:
            # The null distributions of both ratios: independent metarl runs (salted seeds) in
            # the roles of metarl and rliable's second run, against rliable's first run.
            t = time.perf_counter()
            runs = [endpoints(*metarl(binary, path, reps, salt), names, pairs)[1] for salt in range(calibrate)]
            value = np.array([np.abs(v - r1).max() for v in runs])
            level = np.array([levels(labels, v, reference).max() for v in runs])
            for what, m in (("value", value), ("level", level)):
                ratio = np.array([m[i] / m[(i + 1) % calibrate] if m[(i + 1) % calibrate] > 0 else np.inf
                                  for i in range(calibrate)])
                print(f"calibration, {what}: {calibrate} independent metarl runs in both roles: ratio of largest "
                      f"differences median {np.median(ratio):.2f}, max {ratio.max():.2f}, above {k:g} in "
                      f"{(ratio > k).mean() * 100:.1f}% ({time.perf_counter() - t:.0f} s)")
    finally:
        os.unlink(path)

    point_max, ok_ci = max(point.values()), l_ours.max() <= k * l_rr.max()
    ok = point_max < 1e-9 and ok_ci
    print(f"point max |diff| {point_max:.1e} (< 1e-9); CI max |diff| {d_ours.max():.4f} (rliable-vs-rliable "
          f"{d_rr.max():.4f}); CI max level diff {l_ours.max():.4f} {'within' if ok_ci else 'NOT within'} "
          f"{k:g} x rliable-vs-rliable {l_rr.max():.4f}: {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
