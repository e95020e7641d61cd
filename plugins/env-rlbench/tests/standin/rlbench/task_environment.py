"""STAND-IN for rlbench.task_environment: TaskEnvironment's methods and their order of use
(reset before step, variations from numpy's global generator, stored demos only with a dataset
root), over a scripted scene.

Demonstrations follow one script of DEMO_STEPS observations: the gripper closes at step 6 and
opens at 14, the joints are still at steps 3, 10, 11 and 18, and step i's gripper pose is
(i / 100, y, z) with the quaternion DEMO_QUATERNION (not unit, w < 0). y is 0 for live demos and
0.5 for stored ones; z is 1 for live ones and 1 + episode / 1000 for stored episode<episode>.
By C2F-ARM's rule its keyframes are 3 (a stop), 6 (closes), 10 (a stop; 11 falls in the 4 steps
after it), 14 (opens) and 19 (the last); 18, the second-to-last step, is no stop."""

import os

import numpy as np

from rlbench.backend.exceptions import TaskEnvironmentError
from rlbench.demo import Demo

DEMO_STEPS = 20
DEMO_GRIPPER = [1.0] * 6 + [0.0] * 8 + [1.0] * 6
DEMO_STILL = (3, 10, 11, 18)
DEMO_QUATERNION = [0.0, 0.0, 1.2, -1.6]


class TaskEnvironment(object):
    def __init__(self, scene, task, action_mode, dataset_root, obs_config):
        self._scene = scene
        self._task = task
        self._action_mode = action_mode
        self._dataset_root = dataset_root
        self._obs_config = obs_config
        self._variation_number = 0
        self._reset_called = False
        scene.task = task

    def get_name(self):
        return self._task.get_name()

    def sample_variation(self):
        self._variation_number = np.random.randint(0, self._task.variation_count())
        return self._variation_number

    def set_variation(self, v):
        if v >= self.variation_count():
            raise TaskEnvironmentError('Requested variation %d, but there are only %d variations.' % (
                v, self.variation_count()))
        self._variation_number = v

    def variation_count(self):
        return self._task.variation_count()

    def reset(self):
        self._scene.reset(self._variation_number)
        self._reset_called = True
        return ["stand-in description of %s" % self.get_name()], self._scene.get_observation()

    def get_observation(self):
        return self._scene.get_observation()

    def step(self, action):
        if not self._reset_called:
            raise RuntimeError("Call 'reset' before calling 'step' on a task.")
        self._action_mode.action(self._scene, action)
        success, terminate = self._task.success()
        return self._scene.get_observation(), float(success), terminate

    def _scripted_demo(self, y, z):
        robot, obs = self._scene.robot, []
        for i in range(DEMO_STEPS):
            robot.pose = np.array([i / 100.0, y, z] + DEMO_QUATERNION)
            robot.gripper_open = DEMO_GRIPPER[i]
            robot.joint_velocities = np.zeros(7) if i in DEMO_STILL else np.full(7, 0.5)
            robot.steps = i
            obs.append(self._scene.get_observation())
        return Demo(obs)

    def get_demos(self, amount, live_demos=False, image_paths=False, callable_each_step=None,
                  max_attempts=10, random_selection=True, from_episode_number=0):
        if not live_demos and (self._dataset_root is None or len(self._dataset_root) == 0):
            raise RuntimeError("Can't ask for a stored demo when no dataset root provided.")
        if live_demos:
            demos = []
            for _ in range(amount):
                self.reset()
                demos.append(self._scripted_demo(0.0, 1.0))
            return demos
        task_root = os.path.join(self._dataset_root, self.get_name())
        if not os.path.exists(task_root):
            raise RuntimeError("Can't find the demos for %s at: %s" % (self.get_name(), task_root))
        examples = os.listdir(os.path.join(task_root, 'variation%d' % self._variation_number, 'episodes'))
        if amount > len(examples):
            raise RuntimeError('You asked for %d examples, but only %d were available.' % (amount, len(examples)))
        chosen = np.random.choice(examples, amount, replace=False) if random_selection else sorted(examples)[from_episode_number:from_episode_number + amount]
        self._scene.reset(self._variation_number)
        return [self._scripted_demo(0.5, 1.0 + int(e[len('episode'):]) / 1000.0) for e in chosen]
