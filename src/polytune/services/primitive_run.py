"""One training run of the primitives API (Tinker) as PrimitiveRuns (primitive_runs.py) holds it,
and what a run asks of the scheduler."""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from polytune.domain.primitives import LoraSettings
from polytune.executors.primitives import PrimitiveWorker


class Placement(Protocol):
    """What a run asks of the scheduler (scheduler.py's Scheduler; the app hands it in)."""

    def place_now(self, job_id: str, org_id: str, spec: dict) -> AbstractContextManager[tuple[str, ...]]: ...

    def release(self, job_id: str) -> None: ...


class RunBusy(Exception):
    """The run is being released or must be loaded back: the call has to wait off the event loop."""


@dataclass
class Run:
    model_id: str
    job_id: str
    org_id: str
    base_model: str
    base_dir: str
    lora: LoraSettings
    spec: dict[str, Any]
    worker: PrimitiveWorker
    steps: int = 0
    last_call: float = field(default_factory=time.monotonic)
    released: bool = False  # idle: its state saved and its model freed until the next call
    step_loss: float = 0.0  # summed over the forward_backward calls since the last optimizer step
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    adapter_dir: Path | None = None  # the saved adapter it started from (its peft config is the run's)
