"""Jobs waiting for their data to be validated, served by a few threads, fairly by organization.

Validating reads and tokenizes every line of a job's files: seconds for a small file, a minute
for a big one. One thread for everybody made one organization's big file hold every other
organization's small job in `validating_files`. Here `workers` threads take jobs round-robin
by organization (each organization's own jobs in the order they came), and one organization
holds at most `workers - 1` of them at a time, so a thread stays free for the others.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)


class FairValidationQueue:
    def __init__(self, validate: Callable[[str], None], *, workers: int):
        self._validate = validate
        self._workers = max(1, workers)
        self._per_org = max(1, self._workers - 1)
        self._lock = threading.Lock()
        # organization -> its waiting job ids; the dict's order is the rotation (an organization
        # served goes to its back).
        self._waiting: dict[str, collections.deque[str]] = {}
        self._known: set[str] = set()  # waiting or being validated
        self._active: collections.Counter[str] = collections.Counter()
        self._threads = 0

    def add(self, jobs: Iterable[tuple[str, str]]) -> int:
        """Queue (job id, organization) pairs not already waiting or being validated; returns
        how many were new."""
        with self._lock:
            new = [(job_id, org) for job_id, org in jobs if job_id not in self._known]
            for job_id, org in new:
                self._known.add(job_id)
                self._waiting.setdefault(org, collections.deque()).append(job_id)
            waiting = sum(len(q) for q in self._waiting.values())
            while self._threads < min(self._workers, waiting):
                self._threads += 1
                threading.Thread(target=self._serve, name="polytune-validation", daemon=True).start()
        return len(new)

    def _next(self) -> tuple[str, str] | None:
        """The next job to validate, under the lock: the first organization in the rotation
        below its share of the threads."""
        for org in list(self._waiting):
            if self._active[org] >= self._per_org:
                continue
            queue = self._waiting.pop(org)
            job_id = queue.popleft()
            if queue:
                self._waiting[org] = queue
            self._active[org] += 1
            return job_id, org
        return None

    def _serve(self) -> None:
        """A worker thread: validate jobs until none is left that it may take, then end (the
        next add() starts threads again)."""
        while True:
            with self._lock:
                picked = self._next()
                if picked is None:
                    self._threads -= 1
                    return
            job_id, org = picked
            try:
                self._validate(job_id)
            except Exception:  # the store failed us: the job stays validating_files and comes back
                log.exception("validating job %s failed; will retry", job_id)
            finally:
                with self._lock:
                    self._known.discard(job_id)
                    self._active[org] -= 1
                    if not self._active[org]:
                        del self._active[org]
