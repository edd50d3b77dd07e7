"""Where jobs run: one small interface, a local implementation, a Ray one later."""

from .base import Executor, WorkerExit

__all__ = ["Executor", "WorkerExit", "make_executor"]


def make_executor(settings) -> Executor:
    if settings.executor == "local":
        from .local import LocalExecutor

        return LocalExecutor(settings)
    raise ValueError(f"POLYTUNE_EXECUTOR={settings.executor!r} is not available yet; use 'local'.")
