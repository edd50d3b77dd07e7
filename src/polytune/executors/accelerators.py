"""The accelerators the local executor owns, and which job holds which.

Each job gets devices of its own through CUDA_VISIBLE_DEVICES in its worker's environment: a
job that saw every GPU would be wrapped in DataParallel by the HF Trainer (which TRL refuses)
and would share memory with the other jobs. Which devices exist comes from
POLYTUNE_ACCELERATORS when set ("0,1,2,3": those device ids; "4": a count, ids 0-3; "0" or
"none": no accelerator), else from torch.cuda.device_count() — skipped when
CUDA_VISIBLE_DEVICES is empty, where torch could see none anyway. One device's memory comes
from POLYTUNE_ACCELERATOR_MEMORY_GB when set, else from the device itself.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from polytune.domain.errors import InvalidRequest

log = logging.getLogger("polytune.accelerators")
GiB = 1024**3


@dataclass(frozen=True)
class Accelerators:
    ids: tuple[str, ...] = ()
    # One device's memory in bytes (the smallest, if they differ); None: unknown.
    memory: int | None = None
    # Where the list came from, for the server's log.
    source: str = "none"

    def __bool__(self) -> bool:
        return bool(self.ids)


def parse(value: str) -> tuple[str, ...]:
    """POLYTUNE_ACCELERATORS: a comma-separated list of device ids, or a single count."""
    value = value.strip()
    if value.lower() in ("", "none"):
        return ()
    if "," not in value:
        if not value.isdigit():
            raise ValueError(
                f"POLYTUNE_ACCELERATORS must be a count or a comma-separated list of device ids, got {value!r}"
            )
        return tuple(str(i) for i in range(int(value)))
    ids = tuple(part.strip() for part in value.split(",") if part.strip())
    if len(set(ids)) != len(ids):
        raise ValueError(f"POLYTUNE_ACCELERATORS lists a device twice: {value!r}")
    return ids


def detect(configured: str | None, memory_gb: float | None) -> Accelerators:
    memory = int(memory_gb * GiB) if memory_gb else None
    if configured is not None:
        return Accelerators(parse(configured), memory, "POLYTUNE_ACCELERATORS")
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return Accelerators((), memory, "CUDA_VISIBLE_DEVICES is empty")
    import torch

    count = torch.cuda.device_count()
    if count and memory is None:
        memory = min(torch.cuda.get_device_properties(i).total_memory for i in range(count))
    # A worker's CUDA_VISIBLE_DEVICES names physical devices: when the server itself runs under a
    # CUDA_VISIBLE_DEVICES, its ids (not torch's renumbered 0..n-1) are the ones to hand out.
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = tuple(v.strip() for v in visible.split(","))[:count] if visible else tuple(str(i) for i in range(count))
    return Accelerators(ids, memory, "torch.cuda")


def in_process_device(ids: tuple[str, ...]) -> str | None:
    """This process's torch device for the first of `ids` (device ids as the pool hands them out,
    which name physical devices): for a model kept in the server itself (a Tinker run). None (torch
    picks) without ids, or for an id that is not a number and not in CUDA_VISIBLE_DEVICES."""
    if not ids:
        return None
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible:
        return f"cuda:{visible.index(ids[0])}" if ids[0] in visible else None
    return f"cuda:{ids[0]}" if ids[0].isdigit() else None


def describe_torch() -> str:
    """torch's build and the devices it sees: what an operator checks first when GPU jobs fail."""
    import torch

    cuda = torch.version.cuda or "none (a CPU build of torch)"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__}, CUDA {cuda}, no CUDA device available"
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"torch {torch.__version__}, CUDA {cuda}, {len(names)} device(s): {', '.join(names)}"


class Pool:
    """Which job holds which device. A job takes n devices or waits (the scheduler only starts a
    job when the executor's capacity minus the running jobs' demand leaves room)."""

    def __init__(self, ids: tuple[str, ...]):
        self.ids = ids
        self._held: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def free(self) -> list[str]:
        with self._lock:
            held = {d for ds in self._held.values() for d in ds}
            return [d for d in self.ids if d not in held]

    def take(self, job_id: str, n: int) -> tuple[str, ...]:
        with self._lock:
            if job_id in self._held:
                return self._held[job_id]
            held = {d for ds in self._held.values() for d in ds}
            free = [d for d in self.ids if d not in held]
            if n > len(free):
                raise RuntimeError(f"job {job_id} needs {n} accelerator(s); {len(free)} free of {len(self.ids)}")
            self._held[job_id] = tuple(free[:n])
            return self._held[job_id]

    def release(self, job_id: str) -> None:
        with self._lock:
            self._held.pop(job_id, None)

    def held(self, job_id: str) -> tuple[str, ...]:
        with self._lock:
            return self._held.get(job_id, ())


def check_count(n_accel: int, n_node: int, accelerators: Accelerators) -> None:
    """A job asking more than this machine will ever have is refused (param names the field)."""
    if not accelerators:
        return  # CPU only: every job trains in one process here, whatever it asked (as before)
    if n_node > 1:
        raise InvalidRequest(
            f"The job asks for {n_node} nodes; the local executor runs on this one machine "
            "(use POLYTUNE_EXECUTOR=ray for several).",
            param="resources.n_node",
            code="resources_unavailable",
        )
    if n_accel > len(accelerators.ids):
        raise InvalidRequest(
            f"The job asks for {n_accel} accelerators; this machine has {len(accelerators.ids)}.",
            param="resources.n_accel",
            code="resources_unavailable",
        )
