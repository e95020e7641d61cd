"""STAND-IN task (not RLBench's reach_target): scripted, see rlbench/backend/task.py."""

from rlbench.backend.task import Task


class ReachTarget(Task):
    SUCCESS_AFTER = 1
    VARIATIONS = 5
    CODE = 11
