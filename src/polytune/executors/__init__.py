"""Where jobs run: one small interface; workers on this machine, or on a Ray cluster."""

from .base import Executor, WorkerExit

__all__ = ["Executor", "WorkerExit", "make_executor"]


def make_executor(settings) -> Executor:
    if settings.executor == "ray":
        from .ray import RayExecutor

        return RayExecutor(settings)
    from .local import LocalExecutor

    return LocalExecutor(settings)
