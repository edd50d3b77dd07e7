"""Failures a worker names precisely: out of accelerator memory, and accelerators it cannot use.

Both end the job `failed` at once with a message saying what to change. Neither is retried: the
scheduler resumes jobs whose worker died, and a job that ran out of memory, or a worker whose
torch cannot reach CUDA, would only fail the same way again.
"""

from __future__ import annotations

import os

from polytune.domain.errors import DomainError

OOM_ADVICE = (
    "lower hyperparameters.batch_size or context_length, turn gradient_checkpointing on, "
    "train a LoRA (or QLoRA: quantization nf4) instead of a full fine-tune, or ask for more "
    "accelerators (resources.n_accel) so FSDP shards the model"
)


class AcceleratorUnavailable(DomainError):
    kind = "invalid_request"
    code = "accelerator_unavailable"


def is_out_of_memory(e: BaseException) -> bool:
    """torch's OutOfMemoryError (CUDA and other devices), or the same error wrapped by a library
    that re-raised it as a RuntimeError with torch's message."""
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, oom) or (
            isinstance(e, RuntimeError)
            and "out of memory" in str(e).lower()
            and ("cuda" in str(e).lower() or "hip" in str(e).lower())
        ):
            return True
        e = e.__cause__ or e.__context__
    return False


def out_of_memory_message(e: BaseException) -> str:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"The accelerator ran out of memory ({first[:300]}). To fit, {OOM_ADVICE}."


def require_accelerator(
    *, expected: str | None = None, available: bool | None = None, cuda_version: str | None = None
) -> None:
    """Fail when the executor gave this worker accelerators (POLYTUNE_JOB_ACCELERATORS) and torch
    cannot use them: a CPU build of torch, or a driver too old for its CUDA. Training on the CPU
    instead would take days and say nothing. Arguments default to this process's (tests pass them)."""
    expected = os.environ.get("POLYTUNE_JOB_ACCELERATORS") if expected is None else expected
    if not expected:
        return
    if available is None or cuda_version is None:
        import torch

        available = torch.cuda.is_available() if available is None else available
        cuda_version = torch.version.cuda if cuda_version is None else cuda_version
    if available:
        return
    why = (
        "this worker's torch is a CPU build (torch.version.cuda is None); install the CUDA build of torch"
        if not cuda_version
        else f"torch (CUDA {cuda_version}) cannot use the device(s): check the NVIDIA driver supports this CUDA "
        "version and that nvidia-smi lists them"
    )
    raise AcceleratorUnavailable(
        f"The job was given accelerator(s) {expected} but CUDA is not available in its "
        f"worker: {why}. See docs/scaling.md (installing torch on a GPU machine)."
    )
