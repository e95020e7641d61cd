"""STAND-IN for rlbench.action_modes.arm_action_modes: EndEffectorPoseViaPlanning's checks and
errors, with a scripted planner. Marked actions: a target x above PLAN_FAILS_ABOVE_X cannot be
planned (InvalidActionError from ConfigurationPathError, as RLBench 1.2 raises it); a target x
below RAW_PATH_ERROR_BELOW_X raises PyRep's ConfigurationPathError itself, as RLBench before 1.2
let it through."""

import numpy as np
from pyrep.errors import ConfigurationPathError

from rlbench.backend.exceptions import InvalidActionError

PLAN_FAILS_ABOVE_X = 10.0
RAW_PATH_ERROR_BELOW_X = -10.0


def assert_action_shape(action, expected_shape):
    if np.shape(action) != expected_shape:
        raise InvalidActionError('Expected the action shape to be: %s, but was shape: %s' % (
            str(expected_shape), str(np.shape(action))))


class ArmActionMode(object):
    def action_shape(self, scene):
        raise NotImplementedError


class EndEffectorPoseViaPlanning(ArmActionMode):
    def __init__(self, absolute_mode=True, frame=None, collision_checking=False):
        self._absolute_mode = absolute_mode

    def action(self, scene, action):
        assert_action_shape(action, (7,))
        if not np.isclose(np.linalg.norm(action[3:]), 1.0):
            raise InvalidActionError('Action contained non unit quaternion!')
        if action[0] > PLAN_FAILS_ABOVE_X:
            try:
                raise ConfigurationPathError('stand-in: no path to the target')
            except ConfigurationPathError as e:
                raise InvalidActionError('A path could not be found. Most likely due to the target '
                                         'being inaccessible or a collison was detected.') from e
        if action[0] < RAW_PATH_ERROR_BELOW_X:
            raise ConfigurationPathError('stand-in: no path to the target')
        scene.robot.pose = np.array(action, dtype=np.float64)
        scene.robot.steps += 1

    def action_shape(self, scene):
        return 7,
