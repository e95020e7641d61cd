# Meta-World server for metarl's simulator bridge (run after metarl_bridge.py's source).
#
# One server drives `num_envs` env copies in lockstep. Each copy samples a task (an env class)
# from the request's list at every episode start, and one of that task's 50 goal variations
# (Meta-World's ML1 train set), from its own generator seeded by (reset seed, copy index).
# Observations: per camera an RGB image, a world-frame point cloud back-projected from
# MuJoCo's metric depth, and the camera matrices; proprioception (hand xyz, gripper opening,
# time); optionally Meta-World's 39-d state. Rendering is headless (MUJOCO_GL) with shadows,
# reflections and the skybox off.
#
# Two action modes: Meta-World's own (4 floats: hand delta and grip effort, one physics step
# each), and keyframes (a target hand position and a gripper command: a PD controller drives
# the hand there, then the gripper acts, over up to `keyframe_steps` physics steps, C2F-ARM's
# analogue of RLBench's MoveArmThenGripper(EndEffectorPoseViaPlanning(), Discrete())).

import os
import sys

import metaworld
import mujoco
import numpy as np
from metaworld import policies

OFF_FLAGS = (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SKYBOX)
VARIATION_SEED = 0  # Meta-World's goal variations: ML1(task, seed=0).train_tasks
# The keyframe controller: a PD controller on the hand, in Meta-World's action units (1 = 1 cm
# of mocap motion a step), clipped to [-1, 1]: gain 50 a metre of error, damping 100 a metre a
# step of hand velocity. Without the damping, gain 50 (which the mocap weld's lag needs: the
# experts' gain of 10 leaves the hand centimetres short after 30 steps) circles its target
# 1-2 cm wide for good; with it, a 20 cm move settles within 2 mm in about 30-40 steps.
KEYFRAME_GAIN = 50.0
KEYFRAME_DAMPING = 100.0
# A keyframe's arm move ends with the hand this close to its target (a reach succeeds at 5 cm
# from the goal, and an expert's last state often sits just inside that).
KEYFRAME_TOLERANCE = 2e-3
# Physics steps of a keyframe kept for its gripper change (the fingers take about 15).
KEYFRAME_GRIP_STEPS = 20
# Keyframe demos: the expert plays on up to this many steps past its first success (while the
# task stays solved), and its last keyframe is where it then is. Its first solved state often
# lies on the edge of the success region (a peg barely in, a hand 4.9 cm from the goal), which
# a replay a few millimetres off misses.
KEYFRAME_PAST_SUCCESS = 5


class Phases:
    """Records an expert's phase in one `get_action` (inside a `with` block): `path`, the line
    numbers of its own module that it runs, outside its observation parsing and its grip
    (`_grab_effort`), i.e. the branch of its scripted plan it is in. All of Meta-World's
    policies are such branch lists (waypoint above the object, down to it, to the goal, ...)."""

    SKIP = ("_parse_obs", "_grab_effort")

    def __init__(self, expert):
        self.file = sys.modules[type(expert).__module__].__file__
        self.path = []

    def __enter__(self):
        def local(frame, event, _):
            if event == "line":
                self.path.append(frame.f_lineno)
            return local

        def calls(frame, event, _):
            code = frame.f_code
            return local if code.co_filename == self.file and code.co_name not in self.SKIP else None

        self.tracer = sys.gettrace()
        sys.settrace(calls)
        return self

    def __exit__(self, *_):
        sys.settrace(self.tracer)


def policy_for(task):
    name = "Sawyer" + "".join(w.capitalize() for w in task.split("-")) + "V3Policy"
    name = {"SawyerPegInsertSideV3Policy": "SawyerPegInsertionSideV3Policy"}.get(name, name)
    cls = getattr(policies, name, None)
    if cls is None:
        raise ValueError(f"task '{task}' has no scripted expert in metaworld.policies")
    return cls()


class Sim:
    """One task's env with its renderer and goal variations."""

    def __init__(self, task, cfg):
        full = task + "-v3"
        if full not in metaworld.ALL_V3_ENVIRONMENTS:
            raise ValueError(f"unknown Meta-World task '{task}'")
        self.env = metaworld.ALL_V3_ENVIRONMENTS[full]()
        self.variations = metaworld.ML1(full, seed=VARIATION_SEED).train_tasks
        model = self.env.model
        names = [model.camera(i).name for i in range(model.ncam)]
        for cam in cfg["cameras"]:
            if cam not in names:
                raise ValueError(f"unknown camera '{cam}' (Meta-World's cameras: {', '.join(names)})")
        size = cfg["size"]
        self.renderer = mujoco.Renderer(model, size, size)
        self.cfg = cfg

    def set_variation(self, k):
        self.env.set_task(self.variations[k])

    def camera(self, cam):
        """RGB (H, W, 3) u8, point cloud (H, W, 3) f32 world frame, intrinsics, extrinsics."""
        m, d, r = self.env.model, self.env.data, self.renderer
        size = self.cfg["size"]
        r.update_scene(d, camera=cam)
        for f in OFF_FLAGS:
            r.scene.flags[f] = 0
        rgb = r.render().copy()
        cid = m.camera(cam).id
        f = 0.5 * size / np.tan(np.deg2rad(m.cam_fovy[cid]) / 2)
        k = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], dtype=np.float32)
        rot = d.cam_xmat[cid].reshape(3, 3)
        ext = np.eye(4, dtype=np.float32)
        ext[:3, :3], ext[:3, 3] = rot, d.cam_xpos[cid]
        if not self.cfg["point_clouds"]:
            return rgb, None, k, ext
        r.enable_depth_rendering()
        r.update_scene(d, camera=cam)
        depth = r.render().astype(np.float64)
        r.disable_depth_rendering()
        # Pixel centres; MuJoCo's camera looks along -z with y up, image rows go down.
        c, rr = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
        x = (c - size / 2) * depth / f
        y = -(rr - size / 2) * depth / f
        pts = np.stack([x, y, -depth], axis=-1) @ rot.T + d.cam_xpos[cid]
        return rgb, pts.astype(np.float32), k, ext


class Copy:
    def __init__(self, server, index):
        self.server, self.index = server, index
        self.sim, self.task, self.t, self.ret = None, None, 0, 0.0
        self.grab = -1.0  # keyframe mode: the gripper command in force (Meta-World starts open)
        self.rng = None
        self.obs = None

    def start(self):
        s = self.server
        self.task = s.tasks[int(self.rng.integers(len(s.tasks)))]
        self.sim = s.sim(self.task)
        self.sim.set_variation(int(self.rng.integers(len(self.sim.variations))))
        self.obs, _ = self.sim.env.reset(seed=int(self.rng.integers(2**31)))
        self.t, self.ret, self.grab = 0, 0.0, -1.0


class Server:
    def __init__(self):
        self.cfg, self.tasks, self.sims, self.copies = None, [], {}, []

    def sim(self, task):
        if task not in self.sims:
            self.sims[task] = Sim(task, self.cfg)
        return self.sims[task]

    def parts(self, copy):
        """The observation parts of one copy, in the plugin's order."""
        out = []
        for cam in self.cfg["cameras"]:
            rgb, pts, k, ext = copy.sim.camera(cam)
            out.append(rgb)
            if pts is not None:
                out.append(pts)
            out += [k, ext]
        o = copy.obs
        out.append(np.array([o[0], o[1], o[2], o[3], copy.t / self.cfg["max_steps"]], dtype=np.float32))
        if self.cfg["state"]:
            out.append(np.asarray(o, dtype=np.float32))
        return out

    def batch(self, rows):
        """Parts stacked over `rows` (lists of parts), named part0, part1, ..."""
        if not rows:
            return []
        return [(f"part{i}", np.stack([r[i] for r in rows])) for i in range(len(rows[0]))]

    def handle(self, op, h, a):
        if op == "init":
            self.cfg = h["config"]
            self.tasks = h["tasks"]
            # Build (and check) every task's env now, so a bad name or camera fails at once.
            for t in self.tasks:
                self.sim(t)
            self.copies = [Copy(self, i) for i in range(h["num_envs"])]
            return {"state_dim": int(self.sims[self.tasks[0]].env.observation_space.shape[0])}, []
        if op == "reset":
            for c in self.copies:
                c.rng = np.random.default_rng([h["seed"], c.index])
                c.start()
            return {"tasks": [self.tasks.index(c.task) for c in self.copies]}, self.batch([self.parts(c) for c in self.copies])
        if op == "step":
            act = a["actions"]
            rewards, terminated, truncated, success, episodes, final_rows, finals = [], [], [], [], [], [], []
            for i, c in enumerate(self.copies):
                if self.cfg["action_mode"] == "keyframe":
                    dense, won = self.to_keyframe(c.sim, c, act[i][:3], act[i][3] > 0.5)
                else:
                    c.obs, dense, _, _, info = c.sim.env.step(act[i])
                    won = bool(info["success"])
                c.t += 1
                r = float(won) if self.cfg["reward"] == "sparse" else float(dense)
                c.ret += r
                term = won and self.cfg["terminate_on_success"]
                trunc = (not term) and c.t >= self.cfg["max_steps"]
                rewards.append(r)
                terminated.append(term)
                truncated.append(trunc)
                success.append(won)
                if term or trunc:
                    final_rows.append(i)
                    finals.append(self.parts(c))
                    episodes.append({"env": i, "task": self.tasks.index(c.task), "ret": c.ret, "len": c.t, "success": won})
                    c.start()
            fields = {"tasks": [self.tasks.index(c.task) for c in self.copies], "episodes": episodes, "final_rows": final_rows}
            arrays = self.batch([self.parts(c) for c in self.copies])
            arrays += [("final_" + n, v) for n, v in self.batch(finals)]
            arrays += [
                ("reward", np.array(rewards, dtype=np.float32)),
                ("terminated", np.array(terminated, dtype=np.uint8)),
                ("truncated", np.array(truncated, dtype=np.uint8)),
                ("success", np.array(success, dtype=np.uint8)),
            ]
            return fields, arrays
        if op == "demos":
            return self.demos(h["task"], h["episodes"], h["seed"])
        raise ValueError(f"unknown operation '{op}'")

    def to_keyframe(self, sim, copy, target, close, after_step=None):
        """One keyframe action, as RLBench's MoveArmThenGripper: first the arm, then the gripper.
        The arm: the P-controller drives the hand towards `target` with the gripper as it was,
        until the hand is within 2 mm of it, or has not moved for 3 steps (blocked). The
        controller's set point (Meta-World's mocap) starts at the hand: the lead it built up
        pushing against something in the previous keyframe does not carry over. Then, if the
        command changes it, the gripper, with the hand held at `target`, until the fingers
        have stopped moving. At most `keyframe_steps` physics steps in all, of which up to
        KEYFRAME_GRIP_STEPS are kept for a gripper change. `after_step`, if given, is called
        after every physics step. Returns the last dense reward and whether the task was
        solved."""
        grab = 1.0 if close else -1.0
        steps = self.cfg["keyframe_steps"]
        grip_steps = min(KEYFRAME_GRIP_STEPS, steps - 1) if grab != copy.grab else 0
        stop = self.cfg["terminate_on_success"]
        dense, won, k = 0.0, False, 0
        target = np.asarray(target, dtype=np.float64)
        last = copy.obs[:3].copy()

        def step(g):
            nonlocal dense, won, k, last
            hand = copy.obs[:3].copy()
            delta = (target - hand) * KEYFRAME_GAIN - (hand - last) * KEYFRAME_DAMPING
            last = hand
            action = np.append(np.clip(delta, -1.0, 1.0), g).astype(np.float32)
            copy.obs, dense, _, _, info = sim.env.step(action)
            won = won or bool(info["success"])
            k += 1
            if after_step is not None:
                after_step()

        # 1. The arm.
        sim.env.data.mocap_pos[0] = copy.obs[:3]
        last, still = copy.obs[:3].copy(), 0
        while k < steps - grip_steps and not (won and stop):
            step(copy.grab)
            speed = np.linalg.norm(copy.obs[:3] - last)
            if np.linalg.norm(copy.obs[:3] - target) < KEYFRAME_TOLERANCE and speed < 1e-3:
                break
            still = still + 1 if speed < 5e-4 else 0
            if still >= 3:
                break
        # 2. The gripper.
        copy.grab, settled = grab, 0
        if grip_steps:
            while k < steps and not (won and stop):
                opening = copy.obs[3]
                step(grab)
                settled = settled + 1 if abs(copy.obs[3] - opening) < 2e-3 else 0
                if settled >= 2:
                    break
        return float(dense), won

    @staticmethod
    def keyframes(states, grabs, phases, persist=3):
        """Keyframes of an expert episode, each as (hand position, gripper closed):
        - its waypoint switches: the states where its phase (`Phases`) changes to one it then
          keeps for `persist` steps (a flicker between two branches is not a switch); the
          gripper there is the command in force, which the keyframe controller applies once
          the hand has arrived (so a grasp the expert began on the way down closes at the
          bottom, not in the air);
        - its grasp and release settles: after its gripper command changes, the first state
          where the fingers stop closing (or opening) by 2e-3 a step;
        - its last state.
        states[t] is the state after the commands grabs[:t]; phases[t] is the phase the
        expert was in when it acted on states[t]. Keyframes within 1 cm of the next one with
        the same gripper are merged into it."""
        marks, pending, phase = {}, False, phases[0] if phases else None
        for t in range(1, len(states)):
            before = grabs[t - 2] if t >= 2 else False  # the gripper starts open
            if grabs[t - 1] != before:
                pending = True
            elif pending:
                # Closing, the opening shrinks; opening, it grows. Settled: it stops doing so.
                moving = (states[t - 1][3] - states[t][3]) if grabs[t - 1] else (states[t][3] - states[t - 1][3])
                if moving < 2e-3:
                    pending, marks[t] = False, bool(grabs[t - 1])
            if t < len(phases) and phases[t] != phase and all(p == phases[t] for p in phases[t : t + persist]):
                phase = phases[t]
                marks.setdefault(t, bool(grabs[t - 1]))
        last = len(states) - 1
        marks[last] = bool(grabs[last - 1])
        out = []
        for t in sorted(marks):
            k = (np.array(states[t][:3], dtype=np.float64), marks[t])
            if out and np.linalg.norm(out[-1][0] - k[0]) < 0.01 and out[-1][1] == k[1]:
                out[-1] = k
                continue
            out.append(k)
        return out

    def demos(self, task, episodes, seed):
        """Expert episodes of `task` from Meta-World's scripted policy, in the env's action
        mode; an episode that fails (or whose keyframes fail on replay) is dropped."""
        if self.cfg["action_mode"] == "keyframe":
            return self.keyframe_demos(task, episodes, seed)
        expert = policy_for(task)
        sim = self.sim(task)
        rng = np.random.default_rng([seed, 1 << 20])
        copy = Copy(self, 0)
        copy.rng, lengths, dropped, arrays = rng, [], 0, []
        for _ in range(episodes):
            copy.task, copy.sim = task, sim
            sim.set_variation(int(rng.integers(len(sim.variations))))
            copy.obs, _ = sim.env.reset(seed=int(rng.integers(2**31)))
            copy.t, copy.ret = 0, 0.0
            obs, actions, rewards, won = [self.parts(copy)], [], [], False
            while copy.t < self.cfg["max_steps"] and not won:
                # The experts read the goal from the observation, which the benchmark hides.
                seen = np.array(copy.obs, copy=True)
                seen[-3:] = sim.env._get_pos_goal()
                action = np.clip(expert.get_action(seen), -1, 1).astype(np.float32)
                copy.obs, dense, _, _, info = sim.env.step(action)
                copy.t += 1
                won = bool(info["success"])
                actions.append(action)
                rewards.append(float(won) if self.cfg["reward"] == "sparse" else float(dense))
                obs.append(self.parts(copy))
            if not won:
                dropped += 1
                continue
            arrays += self.demo_arrays(len(lengths), obs, actions, rewards)
            lengths.append(len(actions))
        return {"lengths": lengths, "dropped": dropped}, arrays

    def demo_arrays(self, k, obs, actions, rewards):
        """Demo `k`'s arrays: its observations (len + 1 rows per part), actions and rewards."""
        out = [(f"d{k}_{n}", v) for n, v in self.batch(obs)]
        return out + [(f"d{k}_actions", np.stack(actions)), (f"d{k}_rewards", np.array(rewards, dtype=np.float32))]


def _keyframe_demos(self, task, episodes, seed):
    """Keyframe demos of `task`, then C2F-ARM's demo augmentation: while a kept demo's
    keyframes are replayed, every `demo_augmentation`-th physics step is also a start state,
    whose trajectory leads through the keyframes still ahead of it (the one being moved to
    first). Augmented trajectories follow all the demos; `augmented` counts them."""
    expert = policy_for(task)
    sim = self.sim(task)
    every = self.cfg.get("demo_augmentation", 0)
    rng = np.random.default_rng([seed, 1 << 20])
    lengths, dropped, replay_failed, arrays, extra = [], 0, 0, [], []
    for _ in range(episodes):
        variation, reset_seed = int(rng.integers(len(sim.variations))), int(rng.integers(2**31))
        # 1. The expert, natively and without rendering, up to KEYFRAME_PAST_SUCCESS steps past
        # its first success while the task stays solved (to where it last was).
        sim.set_variation(variation)
        obs, _ = sim.env.reset(seed=reset_seed)
        states, grabs, phases, solved, first = [obs], [], [], 0, None
        while len(grabs) < 500 and (first is None or len(grabs) < first + KEYFRAME_PAST_SUCCESS):
            seen = np.array(obs, copy=True)
            seen[-3:] = sim.env._get_pos_goal()
            with Phases(expert) as rec:
                a = np.clip(expert.get_action(seen), -1, 1).astype(np.float32)
            phases.append(tuple(rec.path))
            obs, _, _, _, info = sim.env.step(a)
            states.append(obs)
            grabs.append(a[3] > 0)
            if info["success"]:
                solved = len(grabs)
                first = solved if first is None else first
            elif first is not None:
                break
        if first is None:
            dropped += 1
            continue
        states, grabs, phases = states[: solved + 1], grabs[:solved], phases[:solved]
        keys = Server.keyframes(states, grabs, phases)[: self.cfg["max_steps"]]
        # 2. Its keyframes, replayed from the same start with the keyframe controller; the
        # augmented start states are seen on the way.
        sim.set_variation(variation)
        copy = Copy(self, 0)
        copy.task, copy.sim = task, sim
        copy.obs, _ = sim.env.reset(seed=reset_seed)
        copy.t, copy.grab, won = 0, -1.0, False
        seen_obs, actions, rewards, starts, physics = [self.parts(copy)], [], [], [], 0

        def after_step():
            nonlocal physics
            physics += 1
            if every and physics % every == 0:
                starts.append((len(actions), physics, self.parts(copy)))

        for target, close in keys:
            dense, won = self.to_keyframe(sim, copy, target, close, after_step)
            # A start state on the keyframe's own last step is the keyframe's state itself.
            if starts and starts[-1][:2] == (len(actions), physics):
                starts.pop()
            copy.t += 1
            actions.append(np.append(target, float(close)).astype(np.float32))
            rewards.append(float(won) if self.cfg["reward"] == "sparse" else dense)
            seen_obs.append(self.parts(copy))
            if won:
                break
        if not won:
            dropped += 1
            replay_failed += 1
            continue
        arrays += self.demo_arrays(len(lengths), seen_obs, actions, rewards)
        lengths.append(len(actions))
        for j, _, parts in starts:
            extra.append(([parts] + seen_obs[j + 1 :], actions[j:], rewards[j:]))
    for obs_list, acts, rews in extra:
        arrays += self.demo_arrays(len(lengths), obs_list, acts, rews)
        lengths.append(len(acts))
    return {"lengths": lengths, "dropped": dropped, "replay_failed": replay_failed, "augmented": len(extra)}, arrays


Server.keyframe_demos = _keyframe_demos
serve(Server().handle)
