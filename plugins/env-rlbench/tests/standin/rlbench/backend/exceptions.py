"""STAND-IN for rlbench.backend.exceptions."""


class BoundaryError(Exception):
    pass


class InvalidActionError(Exception):
    pass


class TaskEnvironmentError(Exception):
    pass
