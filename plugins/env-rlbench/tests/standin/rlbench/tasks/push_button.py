"""STAND-IN task (not RLBench's push_button): scripted, see rlbench/backend/task.py."""

from rlbench.backend.task import Task


class PushButton(Task):
    SUCCESS_AFTER = 3
    VARIATIONS = 3
    CODE = 1
