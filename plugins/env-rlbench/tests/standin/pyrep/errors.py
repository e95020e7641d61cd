"""STAND-IN for pyrep.errors: the two exceptions RLBench's planning raises."""


class ConfigurationPathError(Exception):
    pass


class IKError(Exception):
    pass
