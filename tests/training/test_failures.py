"""Out-of-memory and missing-CUDA failures: named precisely, classified as not retryable."""

from __future__ import annotations

import pytest
import torch

from polytune.training.failures import (
    AcceleratorUnavailable,
    is_out_of_memory,
    out_of_memory_message,
    require_accelerator,
)


def test_torch_out_of_memory_errors_are_recognised_even_when_wrapped():
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert is_out_of_memory(oom)
    try:
        try:
            raise oom
        except Exception as inner:
            raise ValueError("trainer step failed") from inner
    except ValueError as wrapped:
        assert is_out_of_memory(wrapped)
    # A library that re-raised torch's message as a plain RuntimeError.
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(MemoryError())  # host memory: not the accelerator's


def test_the_message_names_what_to_change():
    msg = out_of_memory_message(
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nsecond line")
    )
    assert "Tried to allocate 2.00 GiB" in msg and "second line" not in msg
    for field in ("batch_size", "context_length", "gradient_checkpointing", "quantization nf4", "resources.n_accel"):
        assert field in msg


def test_a_worker_given_accelerators_without_cuda_fails_at_once():
    with pytest.raises(AcceleratorUnavailable, match="CPU build") as e:
        require_accelerator(expected="0,1", available=False, cuda_version=None)
    assert e.value.code == "accelerator_unavailable" and "0,1" in e.value.message
    with pytest.raises(AcceleratorUnavailable, match="driver"):
        require_accelerator(expected="3", available=False, cuda_version="12.8")
    require_accelerator(expected="3", available=True, cuda_version="12.8")  # fine
    require_accelerator(expected="", available=False, cuda_version=None)  # CPU job: nothing expected
