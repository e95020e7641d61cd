#!/usr/bin/env bash
# Agreement with rliable: metarl's aggregate statistics (host/src/report/rliable.rs: mean,
# median, IQM, optimality gap at 1, probability of improvement, stratified-bootstrap 95%
# percentile intervals) against rliable 1.2.0 itself on the same score matrices.
# benches/rliable_compare.py builds seeded matrices of several shapes (3, 5 and 10 runs x 1, 3,
# 4 and 5 tasks, one on a grid of ties, two with identical runs), runs the metarl example
# host/examples/rliable_scores.rs and rliable's own functions on them, and compares:
#
# - point estimates, every statistic of every matrix and P(X > Y) for every ordered pair with
#   the same task count: the largest |metarl - rliable| must be below 1e-9;
# - interval endpoints at REPS resamples. Two bootstraps never agree exactly, so rliable runs
#   twice (numpy seeds 1 and 2) and the rliable-vs-rliable spread is the measured Monte-Carlo
#   error. Each endpoint's difference is measured in quantile level within rliable's own
#   bootstrap distribution (seed 1), where the Monte-Carlo error is the same for every endpoint
#   (about sqrt(2 x 0.025 x 0.975 / REPS)) and an endpoint on an atom of a discrete bootstrap
#   distribution counts as exact; in value, a few such atoms (ties, 3 runs) dominate the largest
#   difference. metarl passes when its largest level difference is within K x rliable's.
#   CALIBRATE=N independent metarl runs measure how often that test fails when nothing differs.
#   The largest differences in value are printed too.
#
# rliable (numpy, scipy, arch; pandas pinned below 3, which arch 7.2 does not import with) goes
# into a venv under target/bench-rliable at bench time.
#
#   REPS=20000 K=3 CALIBRATE=100 PAIRS=all SKIP_BUILD=1 bash benches/rliable.sh
#
# PAIRS=all compares the interval of every ordered pair (3 by default: rliable's probability of
# improvement costs about 0.5 ms a task a resample). The last line reads `point max |diff| ...
# (< 1e-9); CI max |diff| ...; CI max level diff ... within K x rliable-vs-rliable ...: PASS`, and
# the script exits non-zero on FAIL.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
REPS=${REPS:-20000}
K=${K:-3}
CALIBRATE=${CALIBRATE:-100}
if [[ -z ${SKIP_BUILD:-} ]]; then
    cargo build --release -p metarl --example rliable_scores >&2
fi

PEER=$ROOT/target/bench-rliable
CHECK='import importlib.metadata as m, rliable.library; assert m.version("rliable") == "1.2.0"'
if ! "$PEER/bin/python" -c "$CHECK" 2>/dev/null; then
    echo "installing rliable==1.2.0 into $PEER (bench only)" >&2
    rm -rf "$PEER"
    if [[ -x $ROOT/.venv/bin/python ]]; then
        "$ROOT/.venv/bin/python" -m venv "$PEER"
    else
        python3 -m venv "$PEER"
    fi
    "$PEER/bin/pip" install --quiet --disable-pip-version-check rliable==1.2.0 arch==7.2.0 pandas==2.3.3 >&2
fi

"$PEER/bin/python" -W ignore "$ROOT/benches/rliable_compare.py" \
    "$ROOT/target/release/examples/rliable_scores" "$REPS" "$K" "$CALIBRATE"
