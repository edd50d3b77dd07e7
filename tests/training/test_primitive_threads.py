"""A Tinker run's worker thread computes on every core it may use (executors/primitives.py)."""

from __future__ import annotations

from polytune.domain.primitives import LoraSettings
from polytune.executors.primitives import PrimitiveWorker


def test_a_run_computes_on_every_core_whatever_thread_count_the_server_set_last(tiny):
    """torch gives a thread the count the last thread set (the inference engine's, one less than
    the cores), when it starts and where it reads it again: a run's steps were slower than the
    same step in a plain loop. Checked for a run started after the engine set its count, and for
    a call made after the engine set it again."""
    import threading

    import torch

    from polytune.executors.primitives import available_cores

    def engine_sets_one_thread():
        engine = threading.Thread(target=torch.set_num_threads, args=(1,))
        engine.start()
        engine.join()

    engine_sets_one_thread()
    worker = PrimitiveWorker("run", tiny[1], "polytune-tiny", LoraSettings(rank=1))
    try:
        worker.ready.result(timeout=120)
        assert worker.submit(lambda model: torch.get_num_threads()).result(timeout=60) == available_cores()
        engine_sets_one_thread()
        assert worker.submit(lambda model: torch.get_num_threads()).result(timeout=60) == available_cores()
    finally:
        worker.close()
        worker.join(timeout=60)
        torch.set_num_threads(available_cores())


def test_runs_on_one_device_compute_on_one_thread(tiny):
    """A second thread doing torch work beside a busy run (an idle run that had computed) made
    the busy run ~30 % slower: every run's torch work on a device goes through one thread."""
    import threading

    workers = [PrimitiveWorker(name, tiny[1], "polytune-tiny", LoraSettings(rank=1)) for name in ("a", "b")]
    try:
        idents = {w.submit(lambda model: threading.get_ident()).result(timeout=120) for w in workers}
        assert len(idents) == 1 and threading.get_ident() not in idents
    finally:
        for w in workers:
            w.close()
            w.join(timeout=60)
