"""A Tinker run's worker thread computes on every core it may use (executors/primitives.py)."""

from __future__ import annotations

from polytune.domain.primitives import LoraSettings
from polytune.executors.primitives import PrimitiveWorker


def test_a_run_computes_on_every_core_whatever_thread_count_the_server_set_last(tiny):
    """torch gives a new thread the count the last thread set: the inference engine's (one less
    than the cores) made a run's steps slower than the same step in a plain loop."""
    import threading

    import torch

    from polytune.executors.primitives import available_cores

    engine = threading.Thread(target=torch.set_num_threads, args=(1,))
    engine.start()
    engine.join()
    worker = PrimitiveWorker("run", tiny[1], "polytune-tiny", LoraSettings(rank=1))
    try:
        worker.ready.result(timeout=120)
        assert worker.submit(lambda model: torch.get_num_threads()).result(timeout=60) == available_cores()
    finally:
        worker.close()
        worker.join(timeout=60)
        torch.set_num_threads(available_cores())
