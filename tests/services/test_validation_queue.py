"""The validation queue's fairness, in process: jobs are taken round-robin by organization,
and one organization never holds every thread."""

from __future__ import annotations

import threading

from polytune.services.validation_queue import FairValidationQueue
from tests.helpers import wait_for


class Recorder:
    """A validate function that records the order jobs start in and holds each until released."""

    def __init__(self):
        self.started: list[str] = []
        self.release: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def __call__(self, job_id: str) -> None:
        with self.lock:
            self.started.append(job_id)
            gate = self.release.setdefault(job_id, threading.Event())
        assert gate.wait(10)

    def finish(self, job_id: str) -> None:
        with self.lock:
            self.release.setdefault(job_id, threading.Event()).set()


def test_one_org_keeps_a_thread_free_for_the_others():
    rec = Recorder()
    queue = FairValidationQueue(rec, workers=2)
    assert queue.add([("a1", "A"), ("a2", "A"), ("a3", "A")]) == 3
    wait_for(lambda: rec.started == ["a1"], timeout=5, interval=0.01)
    queue.add([("b1", "B")])  # arrives later, behind two of A's: still starts at once
    wait_for(lambda: rec.started == ["a1", "b1"], timeout=5, interval=0.01)
    rec.finish("b1")
    rec.finish("a1")
    wait_for(lambda: rec.started[:3] == ["a1", "b1", "a2"], timeout=5, interval=0.01)
    for job in ("a2", "a3"):
        rec.finish(job)
    wait_for(lambda: rec.started == ["a1", "b1", "a2", "a3"], timeout=5, interval=0.01)


def test_organizations_are_served_round_robin():
    rec = Recorder()
    for job in ("a1", "a2", "b1", "b2", "c1"):
        rec.finish(job)  # nothing blocks: only the order is looked at
    queue = FairValidationQueue(rec, workers=1)
    queue.add([("a1", "A"), ("a2", "A"), ("b1", "B"), ("b2", "B"), ("c1", "C")])
    wait_for(lambda: len(rec.started) == 5, timeout=5, interval=0.01)
    assert rec.started == ["a1", "b1", "c1", "a2", "b2"]


def test_a_job_already_waiting_or_validating_is_not_added_twice():
    rec = Recorder()
    queue = FairValidationQueue(rec, workers=2)
    assert queue.add([("a1", "A")]) == 1
    wait_for(lambda: rec.started == ["a1"], timeout=5, interval=0.01)
    assert queue.add([("a1", "A")]) == 0  # the scheduler's next pass sees it still validating
    rec.finish("a1")
    wait_for(lambda: not queue._known, timeout=5, interval=0.01)
    assert rec.started == ["a1"]
