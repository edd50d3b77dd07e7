"""A Tinker run's worker keeps the run's seq_id order even once it is closed: a call refused then
(the run ended, or was released and found no free slot) still takes its turn, so the worker that
replaces it continues from the right seq_id and no later call waits for a missing one."""

from __future__ import annotations

import pytest

from polytune.domain.errors import QuotaExceeded
from polytune.domain.primitives import LoraSettings
from polytune.executors.primitives import PrimitiveWorker


def test_a_closed_worker_answers_at_once_and_keeps_counting(tmp_path):
    worker = PrimitiveWorker("run", tmp_path / "no-model", "none", LoraSettings(rank=1), first_seq=3)
    worker.close()
    worker.join(timeout=120)
    with pytest.raises(RuntimeError, match="was stopped"):
        worker.submit(lambda model: 1, 3).result(timeout=1)
    refusal = QuotaExceeded("No free accelerator (worker_slots)", code="no_free_accelerator")
    worker.refuse(refusal)
    later, early = worker.submit(lambda model: 1, 5), worker.submit(lambda model: 1, 4)  # out of order
    assert later.exception(timeout=1) is refusal and early.exception(timeout=1) is refusal
    assert worker.next_seq == 6
    assert "already used" in str(worker.submit(lambda model: 1, 4).exception(timeout=1))
