# RLBench server for metarl's simulator bridge (run after metarl_bridge.py's source).
#
# One server drives ONE env copy: RLBench runs one CoppeliaSim per process, so a batched env of
# N copies is N servers. The server maps RLBench's public API onto the bridge:
#   Environment(action_mode, dataset_root, obs_config, headless=True).launch()
#   env.get_task(task_file_to_task_class(name))
#   task.sample_variation(); descriptions, obs = task.reset()
#   obs, reward, terminate = task.step(action)       (8-d: pose xyz + quaternion xyzw, gripper)
#   task.get_demos(n, live_demos=True) or from dataset_root (live_demos=False)
# with the action mode C2F-ARM used, MoveArmThenGripper(EndEffectorPoseViaPlanning(), Discrete()).
#
# RLBench, PyRep and CoppeliaSim are imported only after `probe` has found them, so a machine
# without them gets one line saying what is missing, not a traceback.

import importlib
import importlib.util
import os
import socket

CAMERAS = ("front", "left_shoulder", "right_shoulder", "overhead", "wrist")
LOW_DIM = 11  # gripper_open 1, gripper_pose 7, gripper_joint_positions 2, time 1 (C2F-ARM's)
GRIPPER_JOINT_MAX = 0.04  # C2F-ARM clips the finger joints to [0, 0.04]
STOP_DELTA = 0.1  # C2F-ARM's keyframes: joint velocities within this of 0 is a stop
STOP_REFRACTORY = 4  # ... and a stop is not looked for again for 4 steps


def keyframes(gripper_open, joint_velocities, stop_delta=STOP_DELTA, refractory=STOP_REFRACTORY):
    """C2F-ARM's keyframes of a demonstration: the indices of its steps where the gripper opens
    or closes, where the arm stops (every joint velocity within `stop_delta` of 0, the gripper
    the same over steps i-2..i+1, not the second-to-last step, and no stop in the `refractory`
    steps before), and the last step. Step 0 is never one. When the last two keyframes are
    adjacent steps, the second-to-last is dropped. As in C2F-ARM's Python, i-1 and i-2 wrap
    around to the demo's end at the first two steps."""
    g = [float(x) for x in gripper_open]
    n = len(g)
    frames, wait = [], 0
    for i in range(n):
        steady = i < n - 2 and g[i] == g[i + 1] == g[i - 1] == g[i - 2]
        still = all(abs(float(v)) <= stop_delta for v in joint_velocities[i])
        stopped = wait <= 0 and still and steady
        wait = refractory if stopped else wait - 1
        if i > 0 and (g[i] != g[i - 1] or i == n - 1 or stopped):
            frames.append(i)
    if len(frames) > 1 and frames[-2] == frames[-1] - 1:
        del frames[-2]
    return frames


def time_feature(t, max_steps):
    """C2F-ARM's time feature: 1 before the first action, -1 before the last one."""
    return (1.0 - t / float(max_steps - 1)) * 2.0 - 1.0


def x_server_problem(display):
    """Why no X server answers at `display`, or None. Connects the way an X client does."""
    if not display:
        return "no X server: DISPLAY is not set (start one, e.g. `Xvfb :99 -screen 0 1280x1024x24 &`, and set DISPLAY=:99)"
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return f"no X server: DISPLAY={display} is not a display name"
    try:
        if host in ("", "unix"):
            path = f"/tmp/.X11-unix/X{number}"
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                try:
                    s.connect(path)
                except OSError:
                    s.connect("\0" + path)  # Linux's abstract namespace, which X servers also use
        else:
            socket.create_connection((host, 6000 + int(number)), timeout=2).close()
    except OSError:
        return f"no X server answers at DISPLAY={display}"
    return None


def missing_requirement():
    """What keeps RLBench from running with this Python, in a few words, or None. Cheap:
    nothing is launched."""
    for package in ("rlbench", "pyrep"):
        if importlib.util.find_spec(package) is None:
            return f"the Python package '{package}' is not installed in {sys.executable}"
    root = os.environ.get("COPPELIASIM_ROOT", "")
    if not root:
        return "COPPELIASIM_ROOT is not set"
    if not os.path.isdir(root):
        return f"COPPELIASIM_ROOT={root} is not a directory"
    problem = x_server_problem(os.environ.get("DISPLAY", ""))
    if problem:
        return problem
    try:
        importlib.import_module("pyrep")  # loads PyRep's binding of CoppeliaSim's library
        importlib.import_module("rlbench")
    except Exception as e:  # noqa: BLE001: any import failure is the answer
        return f"importing RLBench failed ({type(e).__name__}: {e})".replace("\n", " ")
    return None


def unit_quaternion(q):
    """q (xyzw) normalised; a zero or non-finite one is returned as it is, for RLBench to refuse."""
    n = float(np.linalg.norm(q))
    return q / n if n > 0 and np.isfinite(n) else q


class Server:
    def __init__(self):
        self.cfg, self.tasks, self.classes, self.copy = None, [], [], 0
        self.env, self.task_env, self.task = None, None, None
        self.rng, self.obs, self.t, self.ret, self.variation = None, None, 0, 0.0, 0
        self.planning_errors = ()

    # --- set-up ---------------------------------------------------------------------------

    def init(self, cfg, tasks, copy):
        from pyrep.const import RenderMode
        from pyrep.errors import ConfigurationPathError, IKError
        from rlbench.action_modes.action_mode import MoveArmThenGripper
        from rlbench.action_modes.arm_action_modes import EndEffectorPoseViaPlanning
        from rlbench.action_modes.gripper_action_modes import Discrete
        from rlbench.backend.exceptions import InvalidActionError
        from rlbench.backend.utils import task_file_to_task_class
        from rlbench.environment import Environment
        from rlbench.observation_config import CameraConfig, ObservationConfig

        self.cfg, self.tasks, self.copy = cfg, tasks, copy
        self.classes = []
        for name in tasks:
            try:
                self.classes.append(task_file_to_task_class(name))
            except (ImportError, AttributeError) as e:
                raise ValueError(f"task '{name}' is not in the installed RLBench ({type(e).__name__}: {e})") from e
        # RLBench 1.2's EndEffectorPoseViaPlanning turns PyRep's ConfigurationPathError into
        # InvalidActionError (1.1 let it through); C2F-ARM's env catches all three.
        self.planning_errors = (InvalidActionError, ConfigurationPathError, IKError)

        def camera(on):
            c = CameraConfig(rgb=on, point_cloud=on, depth=False, mask=False, image_size=(cfg["size"], cfg["size"]), render_mode=RenderMode.OPENGL)
            if not on:
                c.set_all(False)
            return c

        cams = {f"{c}_camera": camera(c in cfg["cameras"]) for c in CAMERAS}
        obs_config = ObservationConfig(
            **cams,
            joint_velocities=True,  # the keyframe rule reads them
            joint_positions=False,
            joint_forces=False,
            gripper_open=True,
            gripper_pose=True,
            gripper_matrix=False,
            gripper_joint_positions=True,
            gripper_touch_forces=False,
            task_low_dim_state=False,
        )
        action_mode = MoveArmThenGripper(EndEffectorPoseViaPlanning(), Discrete())
        self.env = Environment(action_mode, cfg["dataset_root"], obs_config, headless=True)
        self.env.launch()
        rlbench = importlib.import_module("rlbench")
        return {"version": str(getattr(rlbench, "__version__", "unknown"))}

    def use_task(self, k):
        """Task k of the request's list, loaded into the scene unless it already is."""
        if self.task != k or self.task_env is None:
            self.task_env = self.env.get_task(self.classes[k])
            self.task = k
        return self.task_env

    def start(self):
        """A new episode: a task from the request's list and one of its variations, both drawn
        from this copy's generator (RLBench draws variations and object placements from numpy's
        global generator, which is seeded from it)."""
        task = self.use_task(int(self.rng.integers(len(self.tasks))))
        np.random.seed(int(self.rng.integers(2**32)))
        self.variation = int(task.sample_variation())
        _descriptions, self.obs = task.reset()
        self.t, self.ret = 0, 0.0

    # --- observations ---------------------------------------------------------------------

    def parts(self, obs, t):
        """One observation's parts, in the plugin's order."""
        size = self.cfg["size"]
        out = []
        for cam in self.cfg["cameras"]:
            rgb = np.asarray(getattr(obs, f"{cam}_rgb"))
            pcd = np.asarray(getattr(obs, f"{cam}_point_cloud"), dtype=np.float32)
            k = np.asarray(obs.misc[f"{cam}_camera_intrinsics"], dtype=np.float32)
            e = np.asarray(obs.misc[f"{cam}_camera_extrinsics"], dtype=np.float32)
            for name, a, shape in (("rgb", rgb, (size, size, 3)), ("point_cloud", pcd, (size, size, 3)), ("intrinsics", k, (3, 3)), ("extrinsics", e, (4, 4))):
                if a.shape != shape:
                    raise ValueError(f"RLBench gave {cam}_{name} of shape {a.shape}, expected {shape}")
            out += [rgb.astype(np.uint8), pcd, k, e]
        out.append(self.low_dim(obs, t))
        return out

    def low_dim(self, obs, t):
        pose = np.asarray(obs.gripper_pose, dtype=np.float32).reshape(7)
        fingers = np.clip(np.asarray(obs.gripper_joint_positions, dtype=np.float32).reshape(2), 0.0, GRIPPER_JOINT_MAX)
        time = time_feature(t, self.cfg["max_steps"])
        return np.concatenate([[float(obs.gripper_open)], pose, fingers, [time]]).astype(np.float32)

    def named(self, parts, prefix=""):
        return [(f"{prefix}part{i}", p) for i, p in enumerate(parts)]

    # --- operations -----------------------------------------------------------------------

    def reset(self, seed):
        self.rng = np.random.default_rng([seed, self.copy])
        self.start()
        return {"task": self.task}, self.named(self.parts(self.obs, 0))

    def step(self, pose, gripper):
        pose = np.asarray(pose, dtype=np.float64).reshape(7).copy()
        pose[3:] = unit_quaternion(pose[3:])
        action = np.concatenate([pose, [1.0 if int(gripper.reshape(-1)[0]) == 1 else 0.0]])
        failure = None
        try:
            obs, reward, terminate = self.task_env.step(action)
        except self.planning_errors as e:
            # C2F-ARM's rule: an IK or path-planning failure ends the episode with reward 0.
            failure = f"{type(e).__name__}: {e}".replace("\n", " ")
            obs, reward, terminate = self.task_env.get_observation(), 0.0, True
        self.t += 1
        reward = float(reward)
        self.ret += reward
        terminated = bool(terminate) or failure is not None
        truncated = not terminated and self.t >= self.cfg["max_steps"]
        success = (terminated or truncated) and reward >= 1.0
        fields = {"failure": failure, "episode": None}
        arrays = []
        if terminated or truncated:
            arrays += self.named(self.parts(obs, self.t), "final_")
            fields["episode"] = {"task": self.task, "ret": self.ret, "len": self.t, "success": success, "variation": self.variation}
            self.start()
        else:
            self.obs = obs
        fields["task"] = self.task
        arrays += self.named(self.parts(self.obs, self.t))
        arrays += [
            ("reward", np.array([reward], dtype=np.float32)),
            ("terminated", np.array([terminated], dtype=np.uint8)),
            ("truncated", np.array([truncated], dtype=np.uint8)),
            ("success", np.array([success], dtype=np.uint8)),
        ]
        return fields, arrays

    def demos(self, k, episodes, seed):
        """`episodes` demonstrations of task k, each on a variation drawn from (seed, task), as
        C2F-ARM's keyframe transitions: observations at step 0 and at each keyframe, the
        action at a keyframe being its gripper pose (unit quaternion, w >= 0, as C2F-ARM
        writes it) and gripper opening, reward 1 on the last. Then the augmented trajectories
        of all of them (`augmented` counts them)."""
        task = self.use_task(k)
        rng = np.random.default_rng([seed, k, 1 << 20])
        np.random.seed(int(rng.integers(2**32)))
        variations = [int(task.sample_variation()) for _ in range(episodes)]
        raw = []
        for v in dict.fromkeys(variations):  # each variation drawn, in order of first draw
            task.set_variation(v)
            # Live: RLBench resets the scene and plans through the task's waypoints. Stored:
            # episodes of dataset_root/<task>/variation<v>/episodes/, chosen (without repeats)
            # with numpy's global generator.
            raw += list(task.get_demos(variations.count(v), live_demos=not self.cfg["dataset_root"]))
        lengths, frames, arrays, dropped, extra = [], [], [], 0, []
        every = self.cfg.get("demo_augmentation", 0)

        def trajectory(obs, start, keys, done):
            """obs[start] (after `done` keyframes), then the keyframes `keys`: the name-less
            arrays of one trajectory and its length."""
            seen = [self.parts(obs[start], done)] + [self.parts(obs[i], done + 1 + j) for j, i in enumerate(keys)]
            out = [(f"part{i}", np.stack([s[i] for s in seen])) for i in range(len(seen[0]))]
            poses, grips = [], []
            for i in keys:
                p = np.asarray(obs[i].gripper_pose, dtype=np.float64).reshape(7).copy()
                q = unit_quaternion(p[3:])
                p[3:] = -q if q[3] < 0 else q
                poses.append(p)
                grips.append(int(obs[i].gripper_open))
            rewards = np.zeros(len(keys), dtype=np.float32)
            rewards[-1] = 1.0
            out += [("pose", np.array(poses, dtype=np.float32)), ("gripper", np.array(grips, dtype=np.int32)), ("rewards", rewards)]
            return out, len(keys)

        for demo in raw:
            obs = [demo[i] for i in range(len(demo))]
            keys = keyframes([o.gripper_open for o in obs], [o.joint_velocities for o in obs])
            if not keys:
                dropped += 1
                continue
            frames.append(keys)
            one, n = trajectory(obs, 0, keys, 0)
            arrays += [(f"d{len(lengths)}_{name}", v) for name, v in one]
            lengths.append(n)
            # C2F-ARM's demo augmentation: every `every`-th step before the last keyframe is
            # also a start state, leading through the keyframes after it (a keyframe's own
            # step is already a state of the demo).
            for start in range(every, keys[-1], every) if every else []:
                if start not in keys:
                    ahead = [k for k in keys if k > start]
                    extra.append(trajectory(obs, start, ahead, len(keys) - len(ahead)))
        for one, n in extra:
            arrays += [(f"d{len(lengths)}_{name}", v) for name, v in one]
            lengths.append(n)
        return {"lengths": lengths, "keyframes": frames, "steps": [len(d) for d in raw], "dropped": dropped, "augmented": len(extra)}, arrays

    def handle(self, op, h, a):
        if op == "probe":
            return {"missing": missing_requirement()}, []
        if op == "init":
            return self.init(h["config"], h["tasks"], h["copy"]), []
        if op == "reset":
            return self.reset(h["seed"])
        if op == "step":
            return self.step(a["pose"], a["gripper"])
        if op == "demos":
            return self.demos(h["task"], h["episodes"], h["seed"])
        raise ValueError(f"unknown operation '{op}'")


if __name__ == "__main__":
    serve(Server().handle)
