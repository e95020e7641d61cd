"""STAND-IN task (not RLBench's take_lid_off_saucepan): scripted, see rlbench/backend/task.py."""

from rlbench.backend.task import Task


class TakeLidOffSaucepan(Task):
    SUCCESS_AFTER = None
    VARIATIONS = 2
    CODE = 2
