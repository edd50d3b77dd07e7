"""Where a training run of the primitives API (Tinker) runs: its model stays resident in this
server between calls, so no call pays for loading it again.

Calls run one at a time in the order of their seq_id (the SDK numbers them and sends them
concurrently, so they may arrive out of order); calls without one (get_info) run at once. Each
run's own thread keeps that order; the torch work itself runs on one compute thread per device,
shared by the runs there: a second thread doing torch work on the same CPU (an idle run's, once
it had computed) made the busy run's steps ~30 % slower (measured in process, two runs), and
runs on one device only compete for it anyway.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from polytune.domain.primitives import LoraSettings
from polytune.executors.accelerators import in_process_device

log = logging.getLogger("polytune.primitives")


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity, where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


Call = Callable[[Any], Any]  # takes the resident model (training/primitives/model.py)

_compute_lock = threading.Lock()
_compute: dict[str, ThreadPoolExecutor] = {}


def compute_thread(device: str | None) -> ThreadPoolExecutor:
    """The one thread that runs every run's torch work on `device` (None: torch's default)."""
    key = device or "default"
    with _compute_lock:
        if key not in _compute:
            _compute[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"polytune-primitives-{key}")
        return _compute[key]


def _on_every_core(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn` with torch's thread count at the cores this process may use. Set before every call,
    not once: torch gives a thread the count the last thread set (the inference engine's, one
    less than the cores) when it starts, and again where it re-reads it (measured: a run's steps
    1.4-1.9x slower than the same step in a plain loop). The runs are this device's training
    compute, as a training worker process is: every core they may use."""
    import torch

    cores = available_cores()
    if torch.get_num_threads() != cores:
        torch.set_num_threads(cores)
    return fn(*args, **kwargs)


class PrimitiveWorker:
    def __init__(
        self,
        name: str,
        base_dir: str | Path,
        base_model: str,
        lora: LoraSettings,
        first_seq: int = 1,
        devices: tuple[str, ...] = (),
        adapter_dir: Path | None = None,
    ):
        self.name = name
        self._queue: queue.Queue[tuple[Call, Future] | None] = queue.Queue()
        self._lock = threading.Lock()
        # Calls that arrived before their turn; None: a turn already answered (see close).
        self._waiting: dict[int, tuple[Call, Future] | None] = {}
        self._next_seq = first_seq
        self._closed: Exception | None = None
        self.ready: Future = Future()
        device = in_process_device(devices)  # the accelerator the scheduler gave this run
        self._thread = threading.Thread(
            target=self._run,
            args=(base_dir, base_model, lora, device, adapter_dir),
            name=f"polytune-primitives-{name}",
            daemon=True,
        )
        self._thread.start()

    def submit(self, call: Call, seq_id: int | None = None) -> Future:
        future: Future = Future()
        with self._lock:
            if seq_id is not None and (seq_id < self._next_seq or seq_id in self._waiting):
                future.set_exception(ValueError(f"seq_id {seq_id} was already used"))
                return future
            if self._closed is not None:
                # Closed (the run ended, or was released and could not come back): the call fails
                # now but still takes its turn, so the worker that may replace this one continues
                # from next_seq and no later call waits for this one.
                future.set_exception(self._closed)
                if seq_id is not None:
                    self._waiting[seq_id] = None
                    self._advance()
                return future
            if seq_id is None:
                self._queue.put((call, future))
                return future
            self._waiting[seq_id] = (call, future)
            self._advance()
        return future

    def _advance(self) -> None:
        """Under the lock: hand the calls whose turn has come to the thread."""
        while self._next_seq in self._waiting:
            item = self._waiting.pop(self._next_seq)
            if item is not None:
                self._queue.put(item)
            self._next_seq += 1

    @property
    def next_seq(self) -> int:
        with self._lock:
            return self._next_seq

    def close(self) -> None:
        """Stop after the call in progress; calls still waiting, and every later call, fail; the
        model is freed."""
        with self._lock:
            self._closed = RuntimeError(f"training run {self.name} was stopped")
            waiting = [item for item in self._waiting.values() if item is not None]
            self._waiting = dict.fromkeys(self._waiting)  # their turns are used up
        for _, future in waiting:
            future.cancel()
        self._queue.put(None)

    def refuse(self, error: Exception) -> None:
        """After close: later calls fail with `error` (why the run cannot come back now)."""
        with self._lock:
            self._closed = error

    def join(self, timeout: float | None = None) -> None:
        """Wait for the call in progress to end and the model to be freed (after close)."""
        self._thread.join(timeout)

    def _run(
        self, base_dir: str | Path, base_model: str, lora: LoraSettings, device: str | None, adapter_dir: Path | None
    ) -> None:
        from polytune.training.primitives.model import PrimitiveModel

        compute = compute_thread(device)
        try:
            model = compute.submit(
                _on_every_core, PrimitiveModel, base_dir, base_model, lora, device, adapter_dir=adapter_dir
            ).result()
        except Exception as e:  # noqa: BLE001 - reported to every call through `ready`
            self.ready.set_exception(e)
            self._fail_all(e)
            return
        self.ready.set_result(True)
        while (item := self._queue.get()) is not None:
            call, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(compute.submit(_on_every_core, call, model).result())
            except Exception as e:  # noqa: BLE001 - the call's own failure, handed to its caller
                future.set_exception(e)
        compute.submit(model.close).result()
        self._fail_all(RuntimeError(f"training run {self.name} was stopped"))

    def _fail_all(self, error: Exception) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item[1].set_running_or_notify_cancel():
                item[1].set_exception(error)
