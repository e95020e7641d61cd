"""STAND-IN for rlbench.action_modes.gripper_action_modes: Discrete (> 0.5 opens)."""

from rlbench.action_modes.arm_action_modes import assert_action_shape


class GripperActionMode(object):
    def action_shape(self, scene):
        raise NotImplementedError


class Discrete(GripperActionMode):
    def __init__(self, attach_grasped_objects=True, detach_before_open=True):
        pass

    def action(self, scene, action):
        assert_action_shape(action, self.action_shape(scene.robot))
        scene.robot.gripper_open = float(action[0] > 0.5)

    def action_shape(self, scene):
        return 1,
