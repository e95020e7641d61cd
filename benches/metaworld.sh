#!/usr/bin/env bash
# Meta-World throughput: the metarl plugin (its Python server behind the simulator bridge,
# `metarl env bench`) against the same work done by Meta-World in Python directly, one env,
# random actions, on TASK, two settings:
#
# - rendering: one camera (corner) at 64 px, RGB only, shadows, reflections and the skybox off
#   (what the plugin does), plus the proprioception;
# - no rendering: no camera, the 39-d state vector.
#
# The difference is the bridge's overhead per step: the frame header, the arrays through a
# pipe, and the plugin's copies into the caller's buffers. Runs alternate (ROUNDS of each) and
# the best of each side is kept, since other load only ever slows a run down.
#
# The last line is `ratio <plugin/python steps/s with rendering>`.
#
#   STEPS=1000 ROUNDS=2 TASK=pick-place SKIP_BUILD=1 bash benches/metaworld.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
STEPS=${STEPS:-1000}
ROUNDS=${ROUNDS:-2}
TASK=${TASK:-pick-place}
PY=$ROOT/.venv/bin/python
if [[ ! -x $PY ]] || ! "$PY" -c 'import metaworld' 2>/dev/null; then
    echo "metaworld==3.1.1 is not installed in .venv; run: bash .ci/setup" >&2
    exit 1
fi
if [[ -z ${SKIP_BUILD:-} ]]; then
    cargo build --release -p metarl -p metarl-env-metaworld >&2
fi
LIB=$ROOT/target/release/libmetarl_env_metaworld.so
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
registry() { # $1 = the plugin's config lines
    printf '[[plugin]]\nname = "metaworld"\nkind = "env"\npath = "%s"\n[plugin.config]\n%s\n' "$LIB" "$1" >"$DIR/registry.toml"
}

plugin() { # $1 = config; prints steps/s
    registry "$1"
    "$ROOT/target/release/metarl" --registry "$DIR/registry.toml" env bench metaworld \
        --task "metaworld:$TASK" --envs 1 --steps "$STEPS" 2>/dev/null | tail -n 1 | awk '{ print $1 }'
}

python_loop() { # $1 = 1 to render; prints steps/s
    MUJOCO_GL=egl "$PY" - "$TASK" "$STEPS" "$1" <<'PYEOF'
import sys, time
import metaworld, mujoco, numpy as np
task, steps, render = sys.argv[1] + "-v3", int(sys.argv[2]), sys.argv[3] == "1"
env = metaworld.ALL_V3_ENVIRONMENTS[task]()
env.set_task(metaworld.ML1(task, seed=0).train_tasks[0])
obs, _ = env.reset(seed=0)
r = mujoco.Renderer(env.model, 64, 64) if render else None
flags = (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SKYBOX)
rng = np.random.default_rng(0)
t0, t = time.perf_counter(), 0
for i in range(steps):
    obs, _, _, _, info = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
    t += 1
    if r is not None:
        r.update_scene(env.data, camera="corner")
        for f in flags:
            r.scene.flags[f] = 0
        frame = r.render()
    if info["success"] or t >= 500:
        obs, _ = env.reset(seed=i)
        t = 0
print(f"{steps / (time.perf_counter() - t0):.1f}", flush=True)
import os; os._exit(0)  # skip the EGL teardown noise
PYEOF
}

best() { sort -g | tail -n 1; }
declare -A runs
for round in $(seq "$ROUNDS"); do
    echo "round $round: $STEPS steps of $TASK each way" >&2
    runs[pr]+="$(plugin $'cameras = ["corner"]\npoint_clouds = false')"$'\n'
    runs[yr]+="$(python_loop 1)"$'\n'
    runs[pn]+="$(plugin $'cameras = []\nstate = true')"$'\n'
    runs[yn]+="$(python_loop 0)"$'\n'
done
pr=$(printf '%s' "${runs[pr]}" | best); yr=$(printf '%s' "${runs[yr]}" | best)
pn=$(printf '%s' "${runs[pn]}" | best); yn=$(printf '%s' "${runs[yn]}" | best)
echo "no rendering:   plugin $pn steps/s, Meta-World in Python $yn steps/s"
awk -v a="$pn" -v b="$yn" 'BEGIN { printf "overhead per step without rendering: %.2f ms\n", 1000 / a - 1000 / b }'
echo "with rendering: plugin $pr steps/s, Meta-World in Python $yr steps/s"
awk -v a="$pr" -v b="$yr" 'BEGIN { printf "overhead per step with rendering: %.2f ms\n", 1000 / a - 1000 / b }'
awk -v a="$pr" -v b="$yr" 'BEGIN { printf "ratio %.2f\n", a / b }'
