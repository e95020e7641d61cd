"""STAND-IN for rlbench.backend.task: a task is scripted, not simulated.

SUCCESS_AFTER: the task succeeds (reward 1, terminate) on the step that brings the number of
steps since reset to this (None: never). VARIATIONS: its variation count. CODE: shown in every
rgb pixel's red channel, so tests can tell tasks apart.
"""


class Task(object):
    SUCCESS_AFTER = None
    VARIATIONS = 1
    CODE = 0

    def __init__(self, pyrep, robot):
        self.pyrep = pyrep
        self.robot = robot

    def get_name(self):
        return type(self).__module__.split(".")[-1]

    def variation_count(self):
        return self.VARIATIONS

    def success(self):
        """(success, terminate), as RLBench's Task.success() returns them."""
        done = self.SUCCESS_AFTER is not None and self.robot.steps >= self.SUCCESS_AFTER
        return done, done
