"""Resume checkpoints stored in the background, so the accelerators train on while one uploads.

The trainer's checkpoint folder is staged first as hard links (no bytes copied; the trainer may
delete or rotate its own folder at the next save and the staged files stay whole), then one
upload thread stores the staged folders in order. The job waits for them before it ends, and a
pause or preemption is only as good as the checkpoint it stored, so that one's failure fails it.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger("polytune.worker")


def stage(folder: Path, staged: Path) -> Path:
    """A hard-linked copy of `folder` at `staged` (a plain copy where links are not possible)."""
    shutil.rmtree(staged, ignore_errors=True)
    for path in sorted(folder.rglob("*")):
        target = staged / path.relative_to(folder)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
    return staged


class BackgroundUploads:
    """One upload thread; `wait` blocks until everything submitted is done."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        # The newest upload's failure, or None when it succeeded (older failures were reported).
        self.newest_error: BaseException | None = None

    def submit(self, upload: Callable[[], None]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="polytune-upload")
        self._pending.append(self._pool.submit(upload))

    def wait(self) -> BaseException | None:
        """Wait for every upload; return the newest one's error (None if it succeeded)."""
        for future in self._pending:
            error = future.exception()
            self.newest_error = error
            if error is not None:
                log.error("a background upload failed: %s", error)
        self._pending.clear()
        return self.newest_error

    def close(self) -> None:
        self.wait()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
