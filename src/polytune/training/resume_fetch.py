"""The resume checkpoint where every rank of a job reads it, fetched once per node (and the
checkpoint a job starts from, when it names one as its model).

A store on a local or shared file system is read in place: no copy at all. From object storage,
the node's first process (LOCAL_RANK 0) downloads the checkpoint into a folder every process of
the node can read, while the others wait at a barrier; before, every rank downloaded all of it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from polytune.catalog.stored import model_folder
from polytune.domain.spec import FROM_CHECKPOINT, JobSpec
from polytune.store.blobs import BlobStore


def local_rank() -> int:
    """This process's index on its node (torchrun and Ray Train set LOCAL_RANK; alone: 0)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def barrier() -> None:
    """Every rank of the job waits here (nothing to wait for when alone)."""
    from polytune.training.distributed import _dist

    dist = _dist()
    if dist is not None and dist.get_world_size() > 1:
        dist.barrier()


@contextlib.contextmanager
def resume_folder(blobs: BlobStore, key: str, job_id: str, step: int) -> Iterator[Path]:
    """The checkpoint `key` as a local folder for the duration of the block."""
    in_place = blobs.local_path(key)
    if in_place is not None:
        yield in_place
        return
    folder = Path(tempfile.gettempdir()) / f"polytune-{job_id}-resume" / f"checkpoint-{step}"
    try:
        if local_rank() == 0:
            shutil.rmtree(folder, ignore_errors=True)
            partial = folder.with_name(f".{folder.name}-{os.getpid()}")
            shutil.rmtree(partial, ignore_errors=True)
            blobs.get_dir(key, partial)
            os.rename(partial, folder)  # whole or not at all
        barrier()
        yield folder
    finally:
        if local_rank() == 0:
            shutil.rmtree(folder.parent, ignore_errors=True)


def with_start_folder(blobs: BlobStore, spec: JobSpec, work: Path) -> JobSpec:
    """A job that starts from a checkpoint (services/checkpoint_starts.py) gets its adapter
    folder as a local path in extras (`local_dir`), for the recipe to load (recipes/common.py)."""
    start = spec.extras.get(FROM_CHECKPOINT)
    if not start:
        return spec
    folder = model_folder(blobs, start["blob_key"], work / "start")
    if folder is None:
        raise FileNotFoundError(f"the checkpoint {start['model']} this job starts from is gone from storage")
    return spec.model_copy(update={"extras": {**spec.extras, FROM_CHECKPOINT: {**start, "local_dir": str(folder)}}})
