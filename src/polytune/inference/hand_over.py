"""Tokens crossing from the engine thread to a request's coroutine, a few at a time.

The engine thread `put`s each token as it is generated; the request's coroutine `take`s
everything that arrived since its last take, at most once per `interval` seconds. A wake-up of
the event loop, and above it an SSE event and the client's parse, cost as much as a token of a
small model, so a fast model's tokens go together; a model slower than a token an interval is
handed every token alone. The first token goes at once, and so does the one that ends the
request (or an error): no token waits longer than the interval, and a short request does not
wait for it at all.
"""

from __future__ import annotations

import asyncio
import collections
import math
import threading
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class HandOver(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float):
        self._loop, self._interval = loop, interval
        self._arrived: collections.deque[T] = collections.deque()
        self._lock = threading.Lock()
        self._woken = asyncio.Event()
        self._wake_pending = False  # a wake-up is on its way to the loop (engine side, locked)
        self._last_now = False  # what arrived includes the end: take without waiting (loop side)
        self._due: asyncio.Future | None = None  # while a take waits out the interval
        self._taken_at = -math.inf

    # -- the engine thread ----------------------------------------------------------------------
    def put(self, item: T, *, last: bool = False) -> None:
        """Called from the engine thread. `last`: the request's final item (hand it over now).
        Raises RuntimeError if the loop is closed."""
        self.extend((item,), last=last)

    def extend(self, items: Iterable[T], *, last: bool = False) -> None:
        """`put` for several items that arrived together: one take gets them all."""
        with self._lock:
            self._arrived.extend(items)
            if self._wake_pending and not last:
                return  # one wake-up per take; the loop will find this one there
            self._wake_pending = True
        self._loop.call_soon_threadsafe(self._wake, last)

    # -- the event loop ---------------------------------------------------------------------------
    def _wake(self, last: bool) -> None:
        self._woken.set()
        if last:
            self._last_now = True
            if self._due is not None and not self._due.done():
                self._due.set_result(None)

    async def take(self) -> list[T]:
        """Everything that arrived since the last take (at least one item)."""
        await self._woken.wait()
        wait = self._taken_at + self._interval - self._loop.time()
        if wait > 0 and not self._last_now:
            self._due = self._loop.create_future()
            timer = self._loop.call_later(wait, _resolve, self._due)
            try:
                await self._due
            finally:
                timer.cancel()
                self._due = None
        with self._lock:
            items = list(self._arrived)
            self._arrived.clear()
            self._woken.clear()
            self._wake_pending = False
        self._taken_at = self._loop.time()
        return items


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
