"""The per-step stop flag's broadcast: on a tensor the process group's backend can carry."""

from __future__ import annotations

import pytest

from polytune.training.distributed import flag_device, init_backend


@pytest.mark.parametrize(
    "backend, cuda, device",
    [
        # NCCL alone takes only CUDA tensors: the flag goes to the rank's own device.
        ("nccl", 3, "cuda:3"),
        ("NCCL", 0, "cuda:0"),
        # A group mapping CPU to gloo and CUDA to NCCL, or gloo itself, carries the CPU tensor.
        ("cpu:gloo,cuda:nccl", 2, "cpu"),
        ("cuda:nccl,cpu:gloo", 2, "cpu"),
        ("gloo", None, "cpu"),
        ("gloo", 1, "cpu"),
    ],
)
def test_flag_device_follows_the_backend(backend, cuda, device):
    assert flag_device(backend, cuda) == device


def test_nccl_without_a_cuda_device_is_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match="no CUDA device"):
        flag_device("nccl", None)


def test_a_torchrun_worker_joins_a_group_carrying_both_kinds_of_tensor():
    assert init_backend(cuda=True) == "cpu:gloo,cuda:nccl"
    assert flag_device(init_backend(cuda=True), 0) == "cpu"
    assert init_backend(cuda=False) == "gloo"


def test_broadcast_on_a_real_gloo_group(tmp_path):
    """agree() through a real one-process gloo group: the flag round-trips on the CPU tensor."""
    import torch.distributed as dist

    from polytune.training import distributed

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rdzv'}", rank=0, world_size=1)
    try:
        assert distributed.flag_device(str(dist.get_backend()), None) == "cpu"
        assert distributed.agree("pause") == "pause"  # world size 1: no broadcast needed
    finally:
        dist.destroy_process_group()
