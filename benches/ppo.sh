#!/usr/bin/env bash
# PPO training throughput on CoinRun: CleanRL's ppo_procgen.py (cleanrl==1.2.0, PyTorch, CPU)
# against metarl's PPO plugin driving the procgen plugin (plugins/algo-ppo/examples/ppo_train.rs).
#
# Both use the Procgen paper's setup: 64 envs x 256 steps, 8 minibatches x 3 epochs, IMPALA CNN
# 16-32-32, Adam 5e-4, easy mode, unbounded levels, libtorch on 2 threads. Each reports env
# steps over wall time since its first step (CleanRL's "SPS"). CleanRL goes into a throwaway
# venv (removed on exit) that reuses .venv's torch 2.13 and procgen2 through a .pth file; its
# pins (python < 3.11, pygame, sb3 1.2) do not install on Python 3.11, so it is installed
# without dependencies plus what ppo_procgen.py imports: gym==0.23.1, tensorboard (and tyro).
#
#   STEPS=32768 PRECISION=fp32 SKIP_BUILD=1 bash benches/ppo.sh
# Our side runs as the metarl host does, with glibc malloc told to keep freed memory
# (metarl_plugin_api::process): without it every minibatch re-faults gigabytes of fresh pages
# and the update takes about twice as long. CleanRL runs as its users run it; PyTorch gets the
# same gain from MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large> (or tcmalloc) in its env.
#
# STEPS: env steps per side (default 2 iterations). PRECISION=bf16 runs our side in bf16
# autocast (CleanRL stays fp32). The last line is `ratio <ours/cleanrl>`.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
STEPS=${STEPS:-32768}
PRECISION=${PRECISION:-fp32}
PY=$ROOT/.venv/bin/python
if [[ ! -x $PY ]] || ! "$PY" -c 'import torch, procgen, gym3' 2>/dev/null; then
    echo "torch, procgen2 and gym3 are not installed in .venv; run: bash .ci/setup" >&2
    exit 1
fi
export LIBTORCH=${LIBTORCH:-$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))')}

if [[ -z ${SKIP_BUILD:-} ]]; then
    cargo build --release -p metarl-env-procgen -p metarl-algo-ppo --example ppo_train >&2
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "setting up a throwaway CleanRL venv in $WORK" >&2
python3 -m venv "$WORK/venv"
SITE=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' >"$SITE/metarl-venv.pth"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --ignore-requires-python cleanrl==1.2.0 >&2
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check gym==0.23.1 tyro tensorboard >&2

echo "cleanrl ppo_procgen.py: coinrun, $STEPS steps" >&2
cleanrl=$(cd "$WORK" && "$WORK/venv/bin/python" -W ignore -m cleanrl.ppo_procgen \
    --env-id coinrun --total-timesteps "$STEPS" --cuda False --seed 1 2>&1 |
    tee "$WORK/cleanrl.log" | awk '/^SPS:/ { sps = $2 } END { print sps }')
if [[ -z $cleanrl ]]; then
    echo "CleanRL produced no SPS line:" >&2
    tail -n 20 "$WORK/cleanrl.log" >&2
    exit 1
fi

echo "metarl ppo ($PRECISION): coinrun, $STEPS steps" >&2
ours=$("$ROOT/target/release/examples/ppo_train" "$ROOT/target/release/libmetarl_env_procgen.so" coinrun "$STEPS" \
    envs=64 seed=1 "algo=preset = \"paper\"
precision = \"$PRECISION\"" 'env=distribution_mode = "easy"' | tee "$WORK/ours.log" | tail -n 1 | awk '{ print $1 }')
grep '^steps' "$WORK/ours.log" >&2 || true

echo "cleanrl (ppo_procgen.py, fp32): $cleanrl steps/s"
echo "metarl ppo ($PRECISION):         $ours steps/s"
awk -v a="$ours" -v b="$cleanrl" 'BEGIN { printf "ratio %.2f\n", a / b }'
