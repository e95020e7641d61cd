"""Unit test of the server's pure helpers: C2F-ARM's keyframe rule and time feature.

Runs alone (`python tests/test_keyframes.py`, with numpy) and from tests/rlbench.rs. The server's
source is loaded the way the bridge runs it (after metarl_bridge.py), but not served. Each case's
keyframes were worked out by hand from the rule."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = [os.path.join(HERE, "..", "..", "sim-bridge", "python", "metarl_bridge.py"), os.path.join(HERE, "..", "python", "rlbench_server.py")]
ns = {"__name__": "rlbench_server_under_test"}
exec(compile("\n".join(open(p).read() for p in SOURCES), "rlbench_server", "exec"), ns)
keyframes, time_feature = ns["keyframes"], ns["time_feature"]

MOVING, STILL = [0.5] * 7, [0.0] * 7


def velocities(n, still=()):
    return [STILL if i in still else MOVING for i in range(n)]


def case(name, gripper, still, expected):
    got = keyframes(gripper, velocities(len(gripper), still))
    assert got == expected, f"{name}: keyframes {got}, expected {expected}"


# The gripper closes at 3; the arm never stops: the change and the last step.
case("a gripper change", [1, 1, 1, 0, 0, 0, 0, 0], (), [3, 7])
# Still at 4..10: a stop at 4, none in the 4 steps after it, another at 9; 10 is the
# second-to-last step, which is never a stop.
case("stops", [1] * 12, range(4, 11), [4, 9, 11])
# A change at the second-to-last step is dropped in favour of the last step.
case("adjacent last keyframes", [1, 1, 1, 1, 0, 0], (), [5])
# Always still: step 2 is a stop (steps 0 and 1 see the last steps' closed gripper through the
# wrap-around, so they are not steady); the close at 5 falls in the refractory steps and counts
# as a change; 6 is not steady (5 differs from 4); 7 is a stop; 11 is the last.
case("still arm, one close", [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], range(12), [2, 5, 7, 11])
# A velocity at the threshold is stillness, just above it movement. (Still from step 0: step 0
# is a stop, never a keyframe, and its refractory steps put the next stop at 5.)
assert keyframes([1] * 8, [[0.1] * 7] * 8) == [5, 7]
assert keyframes([1] * 8, [[0.1] * 6 + [0.1001]] * 8) == [7]
# One step: no keyframe (the demo is dropped); two: the last.
assert keyframes([1], [STILL]) == []
assert keyframes([1, 1], [MOVING, MOVING]) == [1]

# The time feature: 1 before the first of 10 macro-steps, -1 before the last.
assert time_feature(0, 10) == 1.0 and abs(time_feature(9, 10) + 1.0) < 1e-12 and abs(time_feature(3, 10) - (1 / 3)) < 1e-12

print("keyframes: all cases pass")
