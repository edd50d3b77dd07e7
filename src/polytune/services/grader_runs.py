"""Admission and execution of graders/run: a grader may run for seconds (a python grader, a
model grader's chat call), so runs are bounded per organization and in all, and counted per
organization per minute; a run over a bound is refused at once with 429 and Retry-After
instead of queueing. Admitted runs execute on a thread pool of their own, never on the
server's request thread pool, so a tenant's slow graders cannot starve /health or any other
route."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from polytune.config import Settings
from polytune.domain.errors import RateLimited

T = TypeVar("T")
WINDOW = 60.0


class GraderRuns:
    def __init__(self, settings: Settings):
        self.per_org = settings.grader_runs_per_org
        self.total = settings.grader_runs_total
        self.per_minute = settings.grader_runs_per_minute
        self._pool = ThreadPoolExecutor(max_workers=self.total, thread_name_prefix="polytune-grader")
        self._lock = threading.Lock()
        self._running: Counter[str] = Counter()
        self._recent: dict[str, deque[float]] = {}

    async def run(self, org: str, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on the graders' pool, once org may run one more grader; else RateLimited."""
        self._admit(org)
        try:
            future = self._pool.submit(fn, *args)
        except RuntimeError:  # the pool is shut down: the server is stopping
            self._release(org)
            raise
        # The slot is freed when the grader ends, not when the request does: a caller that
        # hangs up does not free a slot its grader still holds.
        future.add_done_callback(lambda _: self._release(org))
        return await asyncio.wrap_future(future)

    def _admit(self, org: str) -> None:
        now = time.monotonic()
        with self._lock:
            recent = self._recent.setdefault(org, deque())
            while recent and recent[0] <= now - WINDOW:
                recent.popleft()
            if len(recent) >= self.per_minute:
                raise RateLimited(
                    f"This organization ran {self.per_minute} graders in the last minute "
                    "(POLYTUNE_GRADER_RUNS_PER_MINUTE); try again later.",
                    retry_after=math.ceil(recent[0] + WINDOW - now),
                )
            if self._running[org] >= self.per_org:
                raise RateLimited(
                    f"This organization already has {self.per_org} graders running "
                    "(POLYTUNE_GRADER_RUNS_PER_ORG); try again when one ends.",
                    retry_after=1,
                )
            if sum(self._running.values()) >= self.total:
                raise RateLimited(
                    f"The server is running its limit of {self.total} graders "
                    "(POLYTUNE_GRADER_RUNS_TOTAL); try again shortly.",
                    retry_after=1,
                )
            recent.append(now)
            self._running[org] += 1

    def _release(self, org: str) -> None:
        with self._lock:
            self._running[org] -= 1
            if not self._running[org]:
                del self._running[org]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
