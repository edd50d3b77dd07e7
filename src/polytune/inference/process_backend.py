"""The default backend: the transformers engine in a process of its own (engine_process.py).

In the API server's process the engine thread shares one GIL with the event loop, uvicorn,
the scheduler and the database driver: every burst of their Python holds up the engine's next
op (measured: the engine thread busy 86-91 % of a one-stream request, docs/benchmarks.md). In
its own process (as vLLM runs its engine core) the engine's Python never waits for the server's.

Here, in the server: a writer thread sends commands (a large prompt never blocks the event loop
on a full pipe), a reader thread hands each request what the engine sent into the request's
HandOver (the engine process already paced it). The process starts with the server (`start`,
settings.inference_warm_start) or on the first request; if it dies (killed for memory, say) its
requests fail with a 503 and the next request starts a new one.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import queue
import threading
from collections.abc import AsyncGenerator
from typing import Any

from polytune.domain.errors import Unavailable
from polytune.inference import engine_process
from polytune.inference.backend import ModelTarget, SamplingParams, TokenEvent, TokenStream, ends_stream
from polytune.inference.hand_over import HandOver

log = logging.getLogger("polytune.inference")

_STOP = object()


class _Engine:
    """One engine process and the two threads that talk to it."""

    def __init__(self, engine: dict[str, Any], interval: float, on_exit):
        ctx = multiprocessing.get_context("spawn")  # never fork a server with threads (and CUDA)
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=engine_process.main, args=(child, engine, interval), name="polytune-engine", daemon=True
        )
        self.process.start()
        child.close()
        self.requests: dict[str, HandOver[TokenEvent | BaseException]] = {}
        self.stats: dict[str, Any] | None = None
        self.alive = True
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._on_exit = on_exit
        self._writer = threading.Thread(target=self._write, name="polytune-engine-writer", daemon=True)
        self._reader = threading.Thread(target=self._read, name="polytune-engine-reader", daemon=True)
        self._writer.start()
        self._reader.start()

    def send(self, command: tuple) -> None:
        self._outbox.put(command)

    def _write(self) -> None:
        while (command := self._outbox.get()) is not _STOP:
            try:
                self.conn.send(command)
            except (OSError, ValueError):
                return  # the process is gone: the reader fails its requests

    def _read(self) -> None:
        while True:
            try:
                _, sent, stats = self.conn.recv()
            except (EOFError, OSError):
                break
            if stats is not None:
                self.stats = stats  # before the tokens: a request that ends sees what it released
            for request_id, events in sent:
                hand_over = self.requests.get(request_id)
                if hand_over is None:
                    continue  # aborted here already
                try:
                    hand_over.extend(events, last=ends_stream(events[-1]))
                except RuntimeError:  # the request's event loop is gone; so is the request
                    self.requests.pop(request_id, None)
                    self.send(("abort", request_id))
        self._lost()

    def _lost(self) -> None:
        self.alive = False
        self._outbox.put(_STOP)
        self.process.join(timeout=5)
        code = self.process.exitcode
        self._on_exit(self)
        if self.requests:
            log.error("the inference engine process exited (exit code %s) with %d requests", code, len(self.requests))
        error = Unavailable(
            f"The inference engine stopped (exit code {code}; the server's log says why) while generating; it "
            "restarts on the next request, so retry this one."
        )
        for request_id, hand_over in list(self.requests.items()):
            self.requests.pop(request_id, None)
            try:
                hand_over.put(error, last=True)
            except RuntimeError:
                pass

    def close(self) -> None:
        self.send(("close",))
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self._reader.join(timeout=10)
        self.conn.close()


class ProcessBackend:
    def __init__(self, *, hand_over_interval: float = 0.0, **engine: Any):
        """`engine`: the TransformersBackend's settings (memory_budget_bytes, max_batch, device,
        threads), applied in the engine process; tokens are handed over at most every
        `hand_over_interval` seconds (the engine process paces them)."""
        self.engine_settings, self.hand_over_interval = engine, hand_over_interval
        self._engine: _Engine | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def generate(
        self, request_id: str, target: ModelTarget, prompt_ids: list[int], params: SamplingParams
    ) -> AsyncGenerator[list[TokenEvent], None]:
        # The engine process paced the tokens already: each message is taken as it comes.
        hand_over: HandOver[TokenEvent | BaseException] = HandOver(asyncio.get_running_loop(), 0.0)
        engine = self._running()
        engine.requests[request_id] = hand_over
        if not engine.alive:  # it died between starting and registering: _lost did not see us
            engine.requests.pop(request_id, None)
            raise Unavailable("The inference engine stopped; retry the request.")
        engine.send(("generate", request_id, target, list(prompt_ids), params))
        stream = TokenStream(hand_over)
        try:
            async for events in stream.events():
                yield events
        finally:
            engine.requests.pop(request_id, None)
            if not stream.ended:
                engine.send(("abort", request_id))

    def start(self) -> None:
        """Start the engine process if it is not running (it imports torch and transformers,
        then waits for requests; models load on the first request for them)."""
        self._running()

    def abort(self, request_id: str) -> None:
        engine = self._engine
        if engine is not None:
            engine.requests.pop(request_id, None)
            engine.send(("abort", request_id))

    def forget(self, key: str) -> None:
        engine = self._engine
        if engine is not None:  # an engine not started holds nothing to forget
            engine.send(("forget", key))

    def stats(self) -> dict[str, Any]:
        engine = self._engine
        if engine is None or engine.stats is None:
            budget = self.engine_settings.get("memory_budget_bytes", 0)
            return {"budget_bytes": budget, "used_bytes": 0, "loads": 0, "evictions": 0, "models": {}}
        return dict(engine.stats)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    @property
    def process(self) -> multiprocessing.process.BaseProcess | None:
        """The engine process, once started (tests and operators look at it)."""
        engine = self._engine
        return None if engine is None else engine.process

    def _running(self) -> _Engine:
        with self._lock:
            if self._closed:
                raise RuntimeError("the inference backend is closed")
            if self._engine is None or not self._engine.alive:
                self._engine = _Engine(self.engine_settings, self.hand_over_interval, self._exited)
            return self._engine

    def _exited(self, engine: _Engine) -> None:
        with self._lock:
            if self._engine is engine:
                self._engine = None
