"""Folders built once and shared: built in a temporary folder, then renamed into place.

A reader never sees half a build; when processes race, one rename wins and the other build is
dropped. A marker file written last holds the build's version, so a stale build is replaced.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

BUILD_MARKER = ".polytune-build"


def built_version(folder: Path) -> str | None:
    try:
        return (folder / BUILD_MARKER).read_text().strip()
    except OSError:
        return None


def materialise(final: Path, version: str, fill: Callable[[Path], None]) -> None:
    """Build `final` with `fill(staging_folder)` unless a build of `version` is already there."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-build-", dir=final.parent))
    try:
        fill(staging)
        (staging / BUILD_MARKER).write_text(version + "\n")  # last: the folder is complete
        if final.exists():
            if built_version(final) == version:
                return  # another process finished first; its folder is identical
            # A stale or broken build is in the way; renaming it aside first is atomic.
            aside = final.parent / f".{final.name}-stale-{uuid.uuid4().hex}"
            with contextlib.suppress(FileNotFoundError):
                os.rename(final, aside)
            shutil.rmtree(aside, ignore_errors=True)
        try:
            os.rename(staging, final)
        except OSError:
            if built_version(final) != version:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
