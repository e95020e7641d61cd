#!/usr/bin/env bash
# Procgen throughput: the Python gym3 reference loop against the metarl procgen plugin.
#
# Both run CoinRun, 64 envs, levels 0..200, easy mode (set explicitly on the Python side, whose
# default is hard), random actions and libenv's default 4 stepping threads. Runs alternate
# (ROUNDS of each) and the best of each side is compared, since other load on a small machine
# only ever slows a run down; the median of the per-round ratios is printed too. The last line
# is `ratio <ours/python>` (best against best); the target is >= 0.95.
#
#   STEPS=128000 ROUNDS=5 SKIP_BUILD=1 bash benches/procgen.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
STEPS=${STEPS:-128000}   # env steps timed per run (summed over the 64 envs)
ROUNDS=${ROUNDS:-5}
PY=$ROOT/.venv/bin/python
if [[ ! -x $PY ]] || ! "$PY" -c 'import procgen, gym3' 2>/dev/null; then
    echo "procgen2==0.10.7 and gym3 are not installed in .venv; run: bash .ci/setup" >&2
    exit 1
fi

if [[ -z ${SKIP_BUILD:-} ]]; then
    cargo build --release -p metarl -p metarl-env-procgen >&2
fi
LIB=$ROOT/target/release/libmetarl_env_procgen.so
REGISTRY=$(mktemp --suffix=.toml)
trap 'rm -f "$REGISTRY"' EXIT
printf '[[plugin]]\nname = "procgen"\nkind = "env"\npath = "%s"\n' "$LIB" >"$REGISTRY"

python_once() {
    "$PY" - "$STEPS" 2>/dev/null <<'EOF'
import sys, time
import numpy as np
from procgen import ProcgenGym3Env

num, steps = 64, int(sys.argv[1])
iters = -(-steps // num)
env = ProcgenGym3Env(num=num, env_name="coinrun", num_levels=200, distribution_mode="easy")
rng = np.random.default_rng(0)
for _ in range(max(iters // 10, 1)):
    env.act(rng.integers(0, 15, size=num, dtype=np.int32))
    env.observe()
start = time.perf_counter()
for _ in range(iters):
    env.act(rng.integers(0, 15, size=num, dtype=np.int32))
    rew, ob, first = env.observe()
print(f"{iters * num / (time.perf_counter() - start):.1f} steps/s")
EOF
}

ours_once() {
    "$ROOT/target/release/metarl" --registry "$REGISTRY" env bench procgen \
        --task coinrun:0..200 --envs 64 --steps "$STEPS" --config 'distribution_mode = "easy"' | tail -n 1
}

best_py=0
best_ours=0
ratios=()
for round in $(seq "$ROUNDS"); do
    py=$(python_once | awk '{print $1}')
    ours=$(ours_once | awk '{print $1}')
    echo "round $round: python $py steps/s, metarl $ours steps/s"
    ratios+=("$(awk -v a="$ours" -v b="$py" 'BEGIN { print a / b }')")
    best_py=$(awk -v a="$best_py" -v b="$py" 'BEGIN { print (b > a) ? b : a }')
    best_ours=$(awk -v a="$best_ours" -v b="$ours" 'BEGIN { print (b > a) ? b : a }')
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ r[NR] = $1 } END { printf "%.2f", (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }')
echo "median of per-round ratios: $median"
echo "python (gym3 ProcgenGym3Env): $best_py steps/s"
echo "metarl (procgen plugin):      $best_ours steps/s"
awk -v a="$best_ours" -v b="$best_py" 'BEGIN { printf "ratio %.2f\n", a / b }'
