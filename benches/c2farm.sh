#!/usr/bin/env bash
# C2F-ARM compute: acting latency and learning updates/s of the c2farm plugin
# (plugins/algo-c2farm/examples/c2farm_speed.rs) at the `paper` and `cpu-small` network sizes,
# beside the compute bound of the same network and update in plain PyTorch
# (benches/c2farm_bound.py). There is no runnable public peer: stepjam/ARM needs RLBench and
# CoppeliaSim; the PyTorch copy is the peer.
#
# Both sides: 2 levels, fp32, CPU, THREADS libtorch threads, clouds of POINTS random points;
# act = voxelise one cloud + level 0 + crop + voxelise + level 1 at batch 1; update = one
# learning step of both levels (online and target nets on s', online on s, double-Q target,
# Smooth-L1 + L1 Q regulariser, backward, clip, Adam, Polyak) on a batch of pre-voxelised
# grids. paper: G = PAPER_GRID (16), batch PAPER_BATCH (8; the preset trains at 128);
# cpu-small: G = SMALL_GRID (8), batch SMALL_BATCH (16, the preset's). Each figure is the
# median of STEPS runs after one warm-up; runs alternate, ROUNDS of each, and the best of each
# side is kept, since other load only ever slows a run down.
#
# In the first round the plugin also dumps its weights, two grids and their Q-values, and the
# script stops unless the PyTorch network, with those weights, gives the same Q-values and
# the same parameter count.
#
#   STEPS=5 ROUNDS=2 THREADS=1 POINTS=16384 SKIP_BUILD=1 bash benches/c2farm.sh
#
# The last line is `ratio <pytorch update ms / metarl update ms>` at cpu-small (above 1: the
# plugin is faster); the line before it is the same ratio at paper.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
STEPS=${STEPS:-5}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-1}
POINTS=${POINTS:-16384}
PAPER_GRID=${PAPER_GRID:-16}
PAPER_BATCH=${PAPER_BATCH:-8}
SMALL_GRID=${SMALL_GRID:-8}
SMALL_BATCH=${SMALL_BATCH:-16}
PY=$ROOT/.venv/bin/python
if [[ ! -x $PY ]] || ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "torch is not installed in .venv; run: bash .ci/setup" >&2
    exit 1
fi
export LIBTORCH=${LIBTORCH:-$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))')}
if [[ -z ${SKIP_BUILD:-} ]]; then
    cargo build --release -p metarl-algo-c2farm --example c2farm_speed >&2
fi
BIN=$ROOT/target/release/examples/c2farm_speed
WORK=$ROOT/target/bench-c2farm
mkdir -p "$WORK"

# field FILE PATTERN: the number after ': ' on the line starting with PATTERN.
field() { awk -F': ' -v p="$2" 'index($0, p) == 1 { print $2 + 0; exit }' "$1"; }
params() { awk '/parameters over/ { for (i = 1; i < NF; i++) if ($(i + 1) == "parameters") { print $i; exit } }' "$1"; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'; }

declare -A best
for round in $(seq "$ROUNDS"); do
    for size in paper cpu-small; do
        if [[ $size == paper ]]; then grid=$PAPER_GRID batch=$PAPER_BATCH; else grid=$SMALL_GRID batch=$SMALL_BATCH; fi
        dump=()
        [[ $round == 1 ]] && dump=("dump=$WORK/$size.f32")
        echo "round $round: metarl c2farm_speed $size, G=$grid, batch $batch, $THREADS thread(s)" >&2
        "$BIN" "$size" "$batch" "$STEPS" "$THREADS" "$POINTS" cpu "$grid" "${dump[@]}" >"$WORK/$size.rust.txt"
        sed 's/^/  /' "$WORK/$size.rust.txt" >&2
        echo "round $round: pytorch c2farm_bound.py $size, G=$grid, batch $batch, $THREADS thread(s)" >&2
        "$PY" "$ROOT/benches/c2farm_bound.py" "$size" "$batch" "$STEPS" "$THREADS" "$POINTS" "$grid" \
            ${dump[0]:+"$WORK/$size.f32"} >"$WORK/$size.torch.txt"
        sed 's/^/  /' "$WORK/$size.torch.txt" >&2
        if [[ $round == 1 ]]; then
            rp=$(params "$WORK/$size.rust.txt")
            tp=$(params "$WORK/$size.torch.txt")
            if [[ $rp != "$tp" ]]; then
                echo "$size: the plugin has $rp parameters, the PyTorch copy $tp: not the same network" >&2
                exit 1
            fi
            best[$size.params]=$rp
            best[$size.check]=$(awk '/^check:/ { for (i = 1; i <= NF; i++) if ($i == "within") print $(i + 1) }' "$WORK/$size.torch.txt")
        fi
        for side in rust torch; do
            for metric in act forward update; do
                case $metric in
                    act) pattern="act (" ;;
                    forward) pattern="forward," ;;
                    update) pattern="update step," ;;
                esac
                best[$size.$side.$metric]=$(min "${best[$size.$side.$metric]:-}" "$(field "$WORK/$size.$side.txt" "$pattern")")
            done
        done
    done
done

echo "C2F-ARM compute on this CPU: fp32, $THREADS thread(s), $POINTS points per cloud, 2 levels, median of $STEPS runs, best of $ROUNDS round(s)"
printf '%-10s %3s %6s %10s | %-17s | %-19s | %-19s | %s\n' size G batch parameters "act ms (batch 1)" "forward ms (batch)" "update ms (batch)" "updates/s"
printf '%-10s %3s %6s %10s | %8s %8s | %9s %9s | %9s %9s | %7s %7s\n' "" "" "" "" metarl pytorch metarl pytorch metarl pytorch metarl pytorch
for size in paper cpu-small; do
    if [[ $size == paper ]]; then grid=$PAPER_GRID batch=$PAPER_BATCH; else grid=$SMALL_GRID batch=$SMALL_BATCH; fi
    printf '%-10s %3s %6s %10s | %8.1f %8.1f | %9.1f %9.1f | %9.1f %9.1f | %7.2f %7.2f\n' "$size" "$grid" "$batch" "${best[$size.params]}" \
        "${best[$size.rust.act]}" "${best[$size.torch.act]}" "${best[$size.rust.forward]}" "${best[$size.torch.forward]}" \
        "${best[$size.rust.update]}" "${best[$size.torch.update]}" \
        "$(awk -v m="${best[$size.rust.update]}" 'BEGIN { print 1000 / m }')" "$(awk -v m="${best[$size.torch.update]}" 'BEGIN { print 1000 / m }')"
done
echo "same network: equal parameter counts; the plugin's weights give its Q-values in PyTorch within ${best[paper.check]} (paper) and ${best[cpu-small.check]} (cpu-small) of max |Q|"
awk -v t="${best[paper.torch.act]}" -v r="${best[paper.rust.act]}" -v T="${best[cpu-small.torch.act]}" -v R="${best[cpu-small.rust.act]}" \
    'BEGIN { printf "act ratio (pytorch / metarl): paper %.2f, cpu-small %.2f\n", t / r, T / R }'
awk -v t="${best[paper.torch.update]}" -v r="${best[paper.rust.update]}" 'BEGIN { printf "paper update ratio %.2f\n", t / r }'
awk -v t="${best[cpu-small.torch.update]}" -v r="${best[cpu-small.rust.update]}" 'BEGIN { printf "ratio %.2f\n", t / r }'
