"""STAND-IN task (not RLBench's open_drawer): scripted, see rlbench/backend/task.py."""

from rlbench.backend.task import Task


class OpenDrawer(Task):
    SUCCESS_AFTER = 2
    VARIATIONS = 3
    CODE = 41
