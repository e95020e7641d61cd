#!/usr/bin/env bash
# What `metarl run --jobs 2` gains over `--jobs 1`: a small PPO study on the toy gridworld
# (MT pretraining, adaptation to 2 held-out goals, scratch; 2 seeds, 10 units, `threads = 1`
# per unit) runs once with one worker at a time and once with two, each into a fresh temp
# directory. The two result trees must be identical (the workers' logs and TensorBoard files
# aside: diagnostics with wall times in them); the last line is `ratio <wall jobs 1 / wall
# jobs 2>`. On a 2-core machine the ideal is 2; each worker's start-up (loading the plugins
# and libtorch, probing the experiment: about half a second) and the units that cannot run
# in parallel (adaptation waits for its pretraining) take some of it.
#
#   bash benches/jobs.sh                                  # after .ci/setup (or a release build)
#   PRETRAIN=32768 ADAPT=8192 SKIP_BUILD=1 bash benches/jobs.sh
#
# PRETRAIN, ADAPT: env steps per pretraining and per adaptation unit (default 16384, 4096).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PRETRAIN=${PRETRAIN:-16384}
ADAPT=${ADAPT:-4096}

if [[ -z ${SKIP_BUILD:-} ]]; then
    cargo build --release -p metarl -p metarl-env-gridworld -p metarl-algo-ppo -p metarl-meta-mt >&2
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/registry.toml" <<EOF
[[plugin]]
name = "gridworld"
kind = "env"
path = "$ROOT/target/release/libmetarl_env_gridworld.so"
[[plugin]]
name = "ppo"
kind = "algo"
path = "$ROOT/target/release/libmetarl_algo_ppo.so"
[[plugin]]
name = "mt"
kind = "meta"
path = "$ROOT/target/release/libmetarl_meta_mt.so"
EOF
cat >"$WORK/jobs.toml" <<EOF
name = "jobs-bench"
seeds = [0, 1]
num_envs = 8
threads = 1
[env]
plugin = "gridworld"
train = "gridworld:0..12"
test = "gridworld:12..14"
config = { size = 4, frame = 16, shared_goal_colour = true }
[algo]
plugin = "ppo"
config = { preset = "cpu-small", num_steps = 64, precision = "fp32" }
[pretrain]
env_steps = $PRETRAIN
[adapt]
env_steps = $ADAPT
eval_every = $((ADAPT / 4))
eval_episodes = 8
[[method]]
label = "MT"
meta = "mt"
EOF

# Runs the study with --jobs $1 into $WORK/jobs$1; prints its wall time in seconds.
run() {
    local start end
    start=$(date +%s.%N)
    "$ROOT/target/release/metarl" --registry "$WORK/registry.toml" run "$WORK/jobs.toml" \
        --out "$WORK/jobs$1" --jobs "$1" >"$WORK/jobs$1.out" 2>"$WORK/jobs$1.err" || {
        echo "metarl run --jobs $1 failed:" >&2
        tail -n 20 "$WORK/jobs$1.err" >&2
        exit 1
    }
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}

echo "gridworld PPO study, 10 units, pretrain $PRETRAIN and adapt $ADAPT env steps, threads = 1" >&2
one=$(run 1)
echo "--jobs 1: $one s" >&2
two=$(run 2)
echo "--jobs 2: $two s" >&2
if ! diff -r -x logs -x tensorboard "$WORK/jobs1" "$WORK/jobs2" >&2; then
    echo "the result trees of --jobs 1 and --jobs 2 differ" >&2
    exit 1
fi
echo "results identical ($(find "$WORK/jobs1" -path "$WORK/jobs1/logs" -prune -o -path "$WORK/jobs1/tensorboard" -prune -o -type f -print | wc -l) files)" >&2
awk -v a="$one" -v b="$two" 'BEGIN { printf "ratio %.2f\n", a / b }'
