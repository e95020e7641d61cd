"""STAND-IN for rlbench.backend.utils: task_file_to_task_class, as RLBench writes it."""

import importlib


def task_file_to_task_class(task_file):
    name = task_file.replace('.py', '')
    class_name = ''.join([w[0].upper() + w[1:] for w in name.split('_')])
    mod = importlib.import_module("rlbench.tasks.%s" % name)
    mod = importlib.reload(mod)
    return getattr(mod, class_name)
