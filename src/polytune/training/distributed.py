"""A job trained by several workers at once (Ray Train's TorchTrainer: one process per
accelerator, torch.distributed set up before the runner starts).

Rank 0 is the job's voice: it alone writes events, metrics, checkpoints and the result to the
store. Every rank trains. A stop (cancel, pause, preemption) is decided by rank 0 from the store
and broadcast at each step, so all ranks leave the training loop at the same step; a rank that
stopped alone would leave the others waiting in their next all-reduce.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_REQUESTS = [None, "cancel", "pause", "preempt"]


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def rank() -> int:
    dist = _dist()
    return dist.get_rank() if dist else 0


def world_size() -> int:
    dist = _dist()
    return dist.get_world_size() if dist else 1


def flag_device(backend: str, current_cuda: int | None) -> str:
    """Where a tensor broadcast on a group of this backend must live. NCCL carries only CUDA
    tensors: a CPU tensor on a plain `nccl` group fails at the first broadcast, so the flag goes to
    the rank's own device there. A group that maps devices (`cpu:gloo,cuda:nccl`) or gloo/mpi
    carries CPU tensors, the cheapest for one integer."""
    parts = {p.split(":", 1)[0] if ":" in p else "": p.rsplit(":", 1)[-1] for p in backend.lower().split(",")}
    if "cpu" in parts or parts.get("") in ("gloo", "mpi"):
        return "cpu"
    if current_cuda is None:
        raise RuntimeError(
            f"the process group's backend {backend!r} carries no CPU tensors and this rank has no CUDA device"
        )
    return f"cuda:{current_cuda}"


def agree(request: str | None) -> str | None:
    """Rank 0's stop request, on every rank (one tiny broadcast per step; none when alone)."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return request
    import torch

    device = flag_device(str(dist.get_backend()), torch.cuda.current_device() if torch.cuda.is_available() else None)
    flag = torch.tensor([_REQUESTS.index(request) if rank() == 0 else 0], dtype=torch.int64, device=device)
    dist.broadcast(flag, src=0)
    return _REQUESTS[int(flag.item())]


def init_backend(cuda: bool) -> str:
    """The backend a worker of a torchrun launch joins with: both CPU and CUDA tensors travel."""
    return "cpu:gloo,cuda:nccl" if cuda else "gloo"


def init_from_env() -> bool:
    """Join the process group a launcher (torchrun) describes in WORLD_SIZE/RANK/LOCAL_RANK, once;
    False when this process is alone (or the group exists already, as under Ray Train)."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=init_backend(cuda))
    return True


def per_device_batch(global_batch: int) -> int:
    """The batch each worker takes so that the job's batch_size stays the global batch (rounded
    up when it does not divide: the effective batch is said in the job's events)."""
    return max(1, -(-global_batch // world_size()))


class ReplicaReporter:
    """What ranks other than 0 report: nothing but their part of each resume checkpoint (their
    shard of an FSDP model and optimizer, their RNG state), stored in the background under the
    checkpoint's key for rank 0 to record (store/checkpoint_parts.py). Their stop requests come
    from rank 0."""

    preempted = False

    def __init__(self, blobs=None, job_id: str | None = None) -> None:
        from polytune.store.uploads import BackgroundUploads

        self.blobs, self.job_id = blobs, job_id
        self.uploads = BackgroundUploads()

    def event(self, message: str, *, level: str = "info", data: dict[str, Any] | None = None) -> None:
        pass

    def metrics(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def progress(
        self, *, trained_steps: int, total_steps: int, trained_tokens: int, estimated_finish: int | None
    ) -> None:
        pass

    def checkpoint(self, step: int, local_dir: Path, metrics: dict[str, float]) -> str:
        return ""

    def stop_request(self) -> str | None:
        return None

    def samples(self, step: int, files: list[Path], prompts: list[str], *, seconds: float) -> None:
        pass

    def resume_checkpoint(self, step: int, trainer_dir: Path) -> None:
        if self.blobs is None:
            return
        from polytune.store.checkpoint_parts import resume_key, store_part
        from polytune.store.uploads import stage

        blobs, key, me = self.blobs, resume_key(str(self.job_id), step), rank()
        # Staged as hard links, as rank 0 stages its own: the trainer may rotate its folder meanwhile.
        staged = stage(trainer_dir, trainer_dir.parent / ".uploading" / f"step-{step}")
        self.uploads.submit(lambda: store_part(blobs, staged, key, me))

    def heartbeat(self) -> None:
        pass


def any_rank(flag: bool) -> bool:
    """True on every rank when it is True on any (one tiny all-reduce; none when alone), so all
    ranks take the same branch before a collective."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return flag
    import torch

    value = torch.tensor([int(flag)], dtype=torch.int64)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
