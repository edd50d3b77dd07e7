"""A multi-worker job's resume checkpoint: what every rank wrote, stored under one key.

Under FSDP with sharded state dicts each rank writes its own shard of the weights and of the
optimizer state (torch.distributed.checkpoint: rank 0 adds the index, `.metadata`), and under
DDP or FSDP each rank its own RNG state; each rank trains in a work dir of its own, on its own
node maybe. So every rank stores its own part under the checkpoint's key, in parallel and in the
background, and says so with a marker (`.parts/rank-N`); rank 0 records the checkpoint as the
job's resume point only once every other rank's marker is there, so a resume never finds a
checkpoint with a shard missing. A resume fetches the whole key (training/resume_fetch.py).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from polytune.store.blobs import BlobStore

PARTS = ".parts"
_STORED = b"stored"
# How long rank 0, its own part stored, waits for the other ranks' parts. They store the same
# amount at the same time, so a long wait means a rank is gone (the job then fails anyway).
PART_TIMEOUT_SECONDS = 1800.0


class MissingPart(RuntimeError):
    pass


def resume_key(job_id: str, step: int) -> str:
    """Where the job's resume checkpoint at `step` is stored (every rank's part of it)."""
    return f"jobs/{job_id}/resume/step-{step}"


def marker(key: str, rank: int) -> str:
    return f"{key}/{PARTS}/rank-{rank}"


def store_part(blobs: BlobStore, folder: Path, key: str, rank: int) -> None:
    """Store this rank's files of the checkpoint under `key`, then its marker; a failure is
    marked too, so rank 0 fails the checkpoint at once instead of waiting out the timeout.
    The (staged) folder is removed afterwards."""
    try:
        blobs.put_dir(folder, key)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    except BaseException as e:
        with blobs.writer(marker(key, rank)) as f:
            f.write(f"failed: {type(e).__name__}: {e}".encode())
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    with blobs.writer(marker(key, rank)) as f:
        f.write(_STORED + f" {size}".encode())


def _read(blobs: BlobStore, key: str) -> bytes | None:
    try:
        with blobs.open(key) as f:
            return f.read()
    except FileNotFoundError:
        return None


def wait_for_parts(
    blobs: BlobStore, key: str, ranks: int, *, timeout: float = PART_TIMEOUT_SECONDS, poll: float = 0.2
) -> int:
    """Return once ranks 1..ranks-1 have stored their parts of `key`, with their bytes in all;
    MissingPart when one failed, or has not stored its part within `timeout` seconds."""
    missing, stored = set(range(1, ranks)), 0
    deadline = time.monotonic() + timeout
    while missing:
        for rank in sorted(missing):
            state = _read(blobs, marker(key, rank))
            if state is not None and state.startswith(_STORED):
                missing.discard(rank)
                stored += int(state.removeprefix(_STORED).strip() or 0)
            elif state is not None:
                raise MissingPart(f"rank {rank} could not store its part of {key}: {state.decode()}")
        if not missing:
            return stored
        if time.monotonic() >= deadline:
            raise MissingPart(f"rank(s) {sorted(missing)} did not store their part of {key} within {timeout:.0f} s")
        time.sleep(poll)
    return stored
