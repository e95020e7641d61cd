#!/usr/bin/env bash
# ALE throughput: ale-py's own batched loop (AtariVectorEnv, C++ preprocessing) against the
# metarl ALE plugin, on the same games and DER settings: one env, frame skip 4 with the max of
# the last two frames, 84x84 grey, a stack of 4, up to 30 no-ops, life loss terminal, rewards
# clipped, 18 actions, no sticky actions, random actions. Runs alternate (ROUNDS of each) and
# the best of each side is kept, since other load only ever slows a run down.
#
# It also checks fidelity: the plugin's frames for a fixed action sequence against the same
# preprocessing written in Python with OpenCV's cv2.resize(INTER_LINEAR), as DER and the
# author's code do it (opencv-python-headless and gymnasium are installed at bench time into target/bench-py).
#
# The last line is `ratio <ours/ale-py>`: the geometric mean over games; the target is >= 1.0.
#
#   STEPS=20000 ROUNDS=3 GAMES="pong breakout ms_pacman" SKIP_BUILD=1 bash benches/ale.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
STEPS=${STEPS:-20000}   # agent steps timed per run
ROUNDS=${ROUNDS:-3}
GAMES=${GAMES:-"pong breakout ms_pacman"}
PY=$ROOT/.venv/bin/python
if [[ ! -x $PY ]] || ! "$PY" -c 'import ale_py' 2>/dev/null; then
    echo "ale-py==0.12.1 is not installed in .venv; run: bash .ci/setup" >&2
    exit 1
fi
if [[ -z ${SKIP_BUILD:-} ]]; then
    cargo build --release -p metarl -p metarl-env-ale --example frames >&2
fi
LIB=$ROOT/target/release/libmetarl_env_ale.so
REGISTRY=$(mktemp --suffix=.toml)
FRAMES=$(mktemp)
trap 'rm -f "$REGISTRY" "$FRAMES"' EXIT
printf '[[plugin]]\nname = "ale"\nkind = "env"\npath = "%s"\n' "$LIB" >"$REGISTRY"

# --- fidelity ------------------------------------------------------------------------------
BENCH_PY=$ROOT/target/bench-py
export PYTHONPATH=$BENCH_PY
if ! "$PY" -c 'import cv2, gymnasium' 2>/dev/null; then
    # OpenCV for the fidelity check; gymnasium (and its two small dependencies), which
    # ale_py.vector_env imports. Pinned, without dependencies, so .venv's numpy is kept.
    echo "installing opencv-python-headless and gymnasium into target/bench-py (bench only)" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$BENCH_PY" \
        opencv-python-headless==4.11.0.86 gymnasium==1.2.0 cloudpickle==3.1.1 farama-notifications==0.0.4 >&2
fi
for game in pong breakout; do
    "$ROOT/target/release/examples/frames" "$game" 2000 "$FRAMES"
    "$PY" - "$game" "$FRAMES" <<'PYEOF'
import sys
import cv2
import numpy as np
from ale_py import ALEInterface, LoggerMode, roms

game, path = sys.argv[1], sys.argv[2]
ours = np.fromfile(path, dtype=np.uint8).reshape(-1, 84, 84)
ALEInterface.setLoggerMode(LoggerMode.Error)
ale = ALEInterface()
ale.setInt("random_seed", 0)
ale.setFloat("repeat_action_probability", 0.0)
ale.setInt("frame_skip", 1)
ale.setBool("color_averaging", False)
ale.setInt("max_num_frames_per_episode", 108000)
ale.loadROM(roms.get_rom_path(game))
actions = ale.getMinimalActionSet()
grey = lambda: cv2.resize(ale.getScreenGrayscale(), (84, 84), interpolation=cv2.INTER_LINEAR)
ale.reset_game()
theirs = [grey()]
state = 7
while len(theirs) < len(ours):
    state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    a = actions[(state >> 33) % len(actions)]
    pair = [np.zeros((84, 84), np.uint8), np.zeros((84, 84), np.uint8)]
    for t in range(4):
        ale.act(a)
        if t >= 2:
            pair[t - 2] = grey()
        if ale.game_over():
            break
    theirs.append(np.maximum(pair[0], pair[1]))
diff = np.abs(ours.astype(int) - np.array(theirs).astype(int))
print(f"fidelity {game}: {len(ours)} frames, max |ours - cv2| = {diff.max()} grey levels, "
      f"{(diff > 0).mean() * 100:.2f}% of pixels differ")
PYEOF
done

# --- throughput ----------------------------------------------------------------------------
python_once() {
    "$PY" - "$1" "$STEPS" 2>/dev/null <<'PYEOF'
import sys, time
import numpy as np
from ale_py.vector_env import AtariVectorEnv

game, steps = sys.argv[1], int(sys.argv[2])
env = AtariVectorEnv(game, 1, num_threads=1, full_action_space=True, episodic_life=True,
                     reward_clipping=True, use_fire_reset=False, noop_max=30,
                     repeat_action_probability=0.0, max_num_frames_per_episode=108000)
env.reset(seed=0)
rng = np.random.default_rng(0)
for _ in range(max(steps // 10, 1)):
    env.step(rng.integers(0, 18, size=1))
start = time.perf_counter()
for _ in range(steps):
    env.step(rng.integers(0, 18, size=1))
print(f"{steps / (time.perf_counter() - start):.1f} steps/s")
PYEOF
}

ours_once() {
    "$ROOT/target/release/metarl" --registry "$REGISTRY" env bench ale --task "atari:$1" --envs 1 --steps "$STEPS" | tail -n 1
}

logs=()
for game in $GAMES; do
    best_py=0
    best_ours=0
    for round in $(seq "$ROUNDS"); do
        py=$(python_once "$game" | awk '{print $1}')
        ours=$(ours_once "$game" | awk '{print $1}')
        echo "$game round $round: ale-py $py steps/s, metarl $ours steps/s"
        best_py=$(awk -v a="$best_py" -v b="$py" 'BEGIN { print (b > a) ? b : a }')
        best_ours=$(awk -v a="$best_ours" -v b="$ours" 'BEGIN { print (b > a) ? b : a }')
    done
    echo "$game: ale-py (AtariVectorEnv, 1 env, 1 thread) $best_py steps/s, metarl (ale plugin) $best_ours steps/s"
    logs+=("$(awk -v a="$best_ours" -v b="$best_py" 'BEGIN { print log(a / b) }')")
done
printf '%s\n' "${logs[@]}" | awk '{ s += $1 } END { printf "ratio %.2f\n", exp(s / NR) }'
