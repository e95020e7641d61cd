#!/usr/bin/env bash
# DER training throughput: metarl's Rainbow plugin driving the ALE plugin
# (plugins/algo-rainbow/examples/der_train.rs) against tianshou 2.0.1's Rainbow with the same
# network and hyper-parameters on ale-py's gymnasium env (benches/der_tianshou.py says what is
# matched). Both: one env, one update per env step after 1600 steps of warm-up, THREADS
# libtorch threads, CPU; each reports env steps/s over its training phase (acting + update).
#
# tianshou (without its [atari] extra, which pins ale-py < 0.9) and opencv-python-headless go
# into a venv under target/bench-tianshou at bench time; it reuses .venv's torch 2.13 and
# ale-py 0.12.1 through a .pth file. Runs alternate, ROUNDS of each, and the best of each side is
# kept, since other load only ever slows a run down.
#
# The peer runs with tianshou's per-step NaN scan of the whole replay buffer turned off (its best
# case; see der_tianshou.py), since that scan, not Rainbow, dominates stock tianshou's step time.
# STOCK=1 also measures stock tianshou and prints that ratio above the last line.
#
#   STEPS=5000 THREADS=1 ROUNDS=1 GAME=pong SKIP_BUILD=1 bash benches/der.sh
#
# It also prints the compute bound (benches/der_bound.py: the network's share of an update).
# The last line is `ratio <ours/tianshou>`; the goal is >= 2.0.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
STEPS=${STEPS:-5000}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-1}
GAME=${GAME:-pong}
PY=$ROOT/.venv/bin/python
if [[ ! -x $PY ]] || ! "$PY" -c 'import torch, ale_py' 2>/dev/null; then
    echo "torch and ale-py are not installed in .venv; run: bash .ci/setup" >&2
    exit 1
fi
export LIBTORCH=${LIBTORCH:-$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))')}
if [[ -z ${SKIP_BUILD:-} ]]; then
    cargo build --release -p metarl-env-ale -p metarl-algo-rainbow --example der_train >&2
fi

PEER=$ROOT/target/bench-tianshou
if ! "$PEER/bin/python" -c 'import tianshou, cv2' 2>/dev/null; then
    echo "installing tianshou==2.0.1 and opencv-python-headless into $PEER (bench only)" >&2
    rm -rf "$PEER"
    python3 -m venv "$PEER"
    SITE=$("$PEER/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    "$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' >"$SITE/metarl-venv.pth"
    "$PEER/bin/pip" install --quiet --disable-pip-version-check tianshou==2.0.1 opencv-python-headless==4.11.0.86 >&2
fi

ours_best=0
peer_best=0
for round in $(seq "$ROUNDS"); do
    echo "round $round: tianshou rainbow on $GAME, $STEPS training steps, $THREADS thread(s)" >&2
    peer=$("$PEER/bin/python" -W ignore "$ROOT/benches/der_tianshou.py" "$GAME" "$STEPS" "$THREADS" 2>/dev/null | tail -n 1 | awk '{ print $1 }')
    echo "  tianshou: $peer steps/s" >&2
    echo "round $round: metarl rainbow on $GAME, $STEPS training steps, $THREADS thread(s)" >&2
    ours=$("$ROOT/target/release/examples/der_train" "$ROOT/target/release/libmetarl_env_ale.so" "atari:$GAME" \
        $((1600 + STEPS)) threads="$THREADS" 'algo=preset = "der"' 'env=actions = "minimal"' 2>/dev/null | tail -n 1 | awk '{ print $1 }')
    echo "  metarl:   $ours steps/s" >&2
    ours_best=$(awk -v a="$ours_best" -v b="$ours" 'BEGIN { print (b > a ? b : a) }')
    peer_best=$(awk -v a="$peer_best" -v b="$peer" 'BEGIN { print (b > a ? b : a) }')
done

if [[ -n ${STOCK:-} ]]; then
    echo "stock tianshou (NaN scan on) on $GAME, $STEPS training steps, $THREADS thread(s)" >&2
    stock=$("$PEER/bin/python" -W ignore "$ROOT/benches/der_tianshou.py" "$GAME" "$STEPS" "$THREADS" stock 2>/dev/null | tail -n 1 | awk '{ print $1 }')
    echo "stock tianshou 2.0.1 rainbow:          $stock steps/s"
    awk -v a="$ours_best" -v b="$stock" 'BEGIN { printf "ratio against stock tianshou %.2f\n", a / b }'
fi
bound=$("$PY" "$ROOT/benches/der_bound.py" "$THREADS" | tail -n 1 | awk '{ print $1 }')
echo "compute bound: the DER network alone takes $bound ms per update (benches/der_bound.py), at most $(awk -v m="$bound" 'BEGIN { printf "%.0f", 1000 / m }') steps/s"
echo "tianshou 2.0.1 rainbow (DER settings): $peer_best steps/s (NaN scan off)"
echo "metarl rainbow (preset der):           $ours_best steps/s"
awk -v a="$ours_best" -v b="$peer_best" 'BEGIN { printf "ratio %.2f\n", a / b }'
