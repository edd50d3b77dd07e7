"""Folders built once and shared: built in a temporary folder, then renamed into place.

The tiny built-in models are built once per machine into a shared build cache, then copied
into each data dir (every test server, every demo) instead of built again there.

A reader never sees half a build; when processes race, one rename wins and the other build is
dropped. A marker file written last holds the build's version, so a stale build is replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from polytune.store.private_files import strip_group_other

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


def shared_build_cache() -> Path:
    """Where finished builds are kept across data dirs (every test server, every demo), so the
    autoencoder is trained once per machine: $POLYTUNE_BUILD_CACHE, else ~/.cache/polytune/builds."""
    configured = os.environ.get("POLYTUNE_BUILD_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "polytune" / "builds"


def ensure_built(models_dir: Path, name: str, version: str, build) -> Path:
    """`models_dir/name`, copied from the shared build cache (where `build(folder)` writes it
    first if need be). Folders appear whole (built or copied aside, then renamed into place)."""
    final = models_dir / name
    if built_version(final) == version:
        return final
    cached = cached_build(name, version, build)
    materialise(final, version, lambda out: _copy_private(cached, out))
    return final


def _copy_private(cached: Path, out: Path) -> None:
    """The data dir's copy is private to the service (store/private_files.py); the shared cache's
    modes are whatever built it."""
    shutil.copytree(cached, out, dirs_exist_ok=True)
    strip_group_other(out)


def cached_build(name: str, version: str, build) -> Path:
    """The build in the shared cache, built there first if need be."""
    cached = shared_build_cache() / f"{name}-{version}"
    if built_version(cached) != version:
        materialise(cached, version, build)
    return cached


def source_version(version: str, builder: str, *siblings: str, after: str = "") -> str:
    """A build's version: `version`, a hash of the builder's source and of the sibling modules
    it builds with, and `after` (the version of a build it takes parts from). The shared build
    cache outlives a checkout, so a changed builder must never meet an old build."""
    here = Path(builder)
    source = b"".join(f.read_bytes() for f in (here, *(here.with_name(n) for n in siblings)))
    tail = f"-{after}" if after else ""
    return f"{version}-{hashlib.sha256(source).hexdigest()[:12]}{tail}"
