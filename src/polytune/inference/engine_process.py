"""The inference engine's own process: the transformers backend's engine thread, fed over a pipe.

The API server (process_backend.py) sends commands; this process's main thread reads them and
hands them to the engine, whose thread runs the models as it does in the server (hf_backend.py)
and, after each turn of its loop, sends the tokens its requests were handed — at most one
message a turn, a request's tokens at most once per hand-over interval (its first and last at
once), with the pool's stats when they changed. The engine's Python thus runs under this
process's GIL: the server's event loop, HTTP parsing and database work no longer hold it
between the engine's kernels.

Messages to the engine: ("generate", request_id, target, prompt_ids, params), ("abort",
request_id), ("forget", key), ("close",). From it: ("turn", [(request_id, [event, ...]), ...],
stats or None), where an event is a TokenEvent or the exception that ended the request.
"""

from __future__ import annotations

import logging
import math
import pickle
import queue
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from polytune.inference.backend import TokenEvent, ends_stream


class Outbox:
    """What the engine thread hands each request, sent once a turn (engine thread only)."""

    def __init__(self, conn: Connection, stats: Any, interval: float):
        self.conn, self.interval = conn, interval
        self.pending: dict[str, list[TokenEvent | BaseException]] = {}
        self.due_now: set[str] = set()  # requests whose pending items end them: send at once
        # When each request that got its first item (and not yet its last) was last sent to.
        self.sent_at: dict[str, float] = {}
        self.stats = stats
        self.broken = False
        self.aborted: queue.SimpleQueue[str] = queue.SimpleQueue()  # from the main thread

    def forget(self, request_id: str) -> None:
        """The request was aborted (main thread): drop what is kept for it at the next flush."""
        self.aborted.put(request_id)

    def emitter(self, request_id: str):
        def emit(event: TokenEvent | BaseException) -> None:
            if isinstance(event, BaseException):
                event = portable(event)
            last = ends_stream(event)
            if request_id not in self.sent_at and not last:
                # A request's first token goes at once, not after the decode step that follows
                # its prefill in the same turn (time to first token). A last item waits for the
                # end of the turn, where it goes with the stats that its request's end changed.
                self._send([(request_id, [event])], None)
                self.sent_at[request_id] = time.monotonic()
                return
            self.pending.setdefault(request_id, []).append(event)
            if last:
                self.due_now.add(request_id)

        return emit

    def flush(self, stats: dict[str, Any]) -> None:
        while not self.aborted.empty():
            request_id = self.aborted.get()
            for kept in (self.pending, self.sent_at):
                kept.pop(request_id, None)
            self.due_now.discard(request_id)
        now = time.monotonic()
        out = []
        for request_id in list(self.pending):
            last = request_id in self.due_now
            if last or now - self.sent_at.get(request_id, -math.inf) >= self.interval:
                out.append((request_id, self.pending.pop(request_id)))
                if last:
                    self.due_now.discard(request_id)
                    self.sent_at.pop(request_id, None)
                else:
                    self.sent_at[request_id] = now
        changed = stats != self.stats
        if out or changed:
            self.stats = stats
            self._send(out, stats if changed else None)

    def _send(self, out: list, stats: dict[str, Any] | None) -> None:
        if self.broken:
            return
        try:
            self.conn.send(("turn", out, stats))
        except (OSError, ValueError):  # the server is gone: the main thread will see it too
            self.broken = True


def portable(error: BaseException) -> BaseException:
    """The error as the server can unpickle it (the same class where it pickles, domain errors
    included; else a RuntimeError that names it)."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - any failure to cross means: send a description instead
        return RuntimeError(f"{type(error).__name__}: {error}")


def main(conn: Connection, engine: dict[str, Any], interval: float) -> None:
    """The engine process's entry (multiprocessing, spawn): serve commands until told to close or
    until the server is gone."""
    # Ctrl-C in a terminal reaches the whole process group; the server closes this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s [engine] %(message)s")
    from polytune.inference.hf_backend import TransformersBackend

    backend = TransformersBackend(**engine)
    outbox = Outbox(conn, backend.stats(), interval)
    backend.on_turn = lambda: outbox.flush(backend.stats())
    conn.send(("turn", [], outbox.stats))  # ready: what is loaded (nothing yet)
    try:
        while True:
            try:
                command = conn.recv()
            except (EOFError, OSError):
                return  # the server exited without closing us
            kind = command[0]
            if kind == "generate":
                _, request_id, target, prompt_ids, params = command
                backend.submit(request_id, target, prompt_ids, params, outbox.emitter(request_id))
            elif kind == "abort":
                backend.abort(command[1])
                outbox.forget(command[1])
            elif kind == "forget":
                backend.forget(command[1])
            elif kind == "close":
                return
    finally:
        closer = threading.Thread(target=backend.close, daemon=True)
        closer.start()
        closer.join(timeout=30)
