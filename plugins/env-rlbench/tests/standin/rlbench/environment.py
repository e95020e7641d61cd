"""STAND-IN for rlbench.environment: Environment's constructor, launch() and get_task(). It
refuses to launch with a GUI (the plugin must ask for headless), and checks the dataset root as
RLBench does."""

from os.path import exists

from rlbench.backend.scene import Scene
from rlbench.observation_config import ObservationConfig
from rlbench.task_environment import TaskEnvironment


class Environment(object):
    def __init__(self, action_mode, dataset_root='', obs_config=ObservationConfig(), headless=False,
                 static_positions=False, robot_setup='panda', randomize_every=None, frequency=1,
                 visual_randomization_config=None, dynamics_randomization_config=None,
                 attach_grasped_objects=True, shaped_rewards=False, arm_max_velocity=1.0,
                 arm_max_acceleration=4.0):
        self._action_mode = action_mode
        self._dataset_root = dataset_root
        self._obs_config = obs_config
        self._headless = headless
        if len(self._dataset_root) > 0 and not exists(self._dataset_root):
            raise RuntimeError('Data set root does not exists: %s' % self._dataset_root)
        self._scene = None

    def launch(self):
        if self._scene is not None:
            raise RuntimeError('Already called launch!')
        if not self._headless:
            raise RuntimeError('stand-in: metarl must launch RLBench headless')
        self._scene = Scene(self._obs_config)

    def shutdown(self):
        self._scene = None

    def get_task(self, task_class):
        if self._scene is None:
            self.launch()
        task = task_class(None, self._scene.robot)
        return TaskEnvironment(self._scene, task, self._action_mode, self._dataset_root, self._obs_config)
