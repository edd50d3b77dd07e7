"""This node's copies of stored folders (`<data dir>/cache/`): base models fetched from object
storage (catalog/stored.py) and fine-tuned models and checkpoints fetched for serving
(inference/weights.py), pruned to a size cap, least recently used first.

Each copy has a sidecar file beside it, `<folder>.lru`: its modification time is when the copy
was last used, and a process using the copy holds a shared lock (flock) on it. Pruning takes
the copy's lock exclusively without waiting, so it never removes a copy a live process holds
(a training worker holds its base model for the whole job; the lock goes with the process, also
when it dies), nor one used within the last GRACE_SECONDS (a server loading what it just
fetched). Other things in the cache folder (an export's temporary folder) are not copies and
are left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("polytune.cache")

SIDECAR = ".lru"
# A copy used this recently is never pruned, held or not: what was just fetched is being loaded.
GRACE_SECONDS = 600.0

# Copies this process holds: folder -> (the open sidecar carrying the shared lock, times held).
_held: dict[Path, tuple[int, int]] = {}
# Threads of a server fetch at once (eight requests for a model just trained): one count each.
_held_lock = threading.Lock()


def sidecar(folder: Path) -> Path:
    return folder.with_name(folder.name + SIDECAR)


def hold(folder: Path) -> None:
    """Hold `folder` in use by this process (until release, or the process ends): pruning skips
    it. Waits while a prune is removing it; then the caller finds it gone and fetches it again."""
    folder = Path(folder)
    if _hold_again(folder):
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(sidecar(folder), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        # A prune that removed the copy meanwhile also unlinked this sidecar: a lock on it would
        # hold nothing, so take one on the sidecar now in its place.
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(fd).st_ino == os.stat(sidecar(folder)).st_ino:
                break
        os.close(fd)
    if _hold_again(folder, fd):  # another thread took it meanwhile: its lock holds for both
        os.close(fd)


def _hold_again(folder: Path, fd: int | None = None) -> bool:
    """Count one more hold where this process holds `folder` already (True); else record `fd`
    as its hold, when given."""
    with _held_lock:
        if folder in _held:
            held_fd, count = _held[folder]
            _held[folder] = (held_fd, count + 1)
            return True
        if fd is not None:
            _held[folder] = (fd, 1)
        return False


def release(folder: Path) -> None:
    folder = Path(folder)
    with _held_lock:
        if folder not in _held:
            return
        fd, count = _held.pop(folder)
        if count > 1:
            _held[folder] = (fd, count - 1)
            return
    os.close(fd)  # and with it the lock


@contextlib.contextmanager
def holding(folder: Path) -> Iterator[Path]:
    hold(folder)
    try:
        yield folder
    finally:
        release(folder)


def touch(folder: Path) -> None:
    """Note that the copy was used now (its place in the least-recently-used order)."""
    path = sidecar(Path(folder))
    path.touch()
    os.utime(path)


@dataclass(frozen=True)
class Copy:
    folder: Path
    size: int
    last_used: float


def copies(root: Path) -> list[Copy]:
    """The copies under `root`, least recently used first.

    Other threads and processes fetch and prune under `root` meanwhile: a folder that vanishes
    during the walk is skipped (os.walk ignores it), and the hidden folders a fetch stages in
    (`.<name>.partial-*`) or a prune removes (`.<name>.pruned-*`) are not walked: they are not
    copies, and they come and go while the walk is under way."""
    found = []
    for parent, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.endswith(SIDECAR) or name.startswith("."):
                continue
            side = Path(parent) / name
            folder = side.with_name(name.removesuffix(SIDECAR))
            with contextlib.suppress(FileNotFoundError):
                size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
                found.append(Copy(folder, size, side.stat().st_mtime))
    return sorted(found, key=lambda c: c.last_used)


def prune(root: Path, max_bytes: int, *, now: float | None = None) -> list[Path]:
    """Remove the least recently used copies under `root` until they total at most `max_bytes`
    (0: no cap), skipping those in use; returns the folders removed."""
    if max_bytes <= 0:
        return []
    now = time.time() if now is None else now
    found = copies(root)
    total, removed = sum(c.size for c in found), []
    for copy in found:
        if total <= max_bytes:
            break
        if now - copy.last_used < GRACE_SECONDS or copy.folder in _held:
            continue
        if _remove_unless_held(copy.folder):
            total -= copy.size
            removed.append(copy.folder)
            log.info("node cache: removed %s (%d bytes, least recently used)", copy.folder, copy.size)
    if total > max_bytes:
        log.warning("node cache: %d bytes in use or recently used, above the cap of %d", total, max_bytes)
    return removed


def _remove_unless_held(folder: Path) -> bool:
    try:
        fd = os.open(sidecar(folder), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live process holds it
        # Another prune removed this copy between our open and our lock (and a fetch may have
        # made a new one since, whose holders lock the new sidecar): nothing of ours to remove.
        try:
            if os.fstat(fd).st_ino != os.stat(sidecar(folder)).st_ino:
                return False
        except FileNotFoundError:
            return False
        # Renamed aside first: a half-removed folder is never taken for a copy.
        doomed = folder.with_name(f".{folder.name}.pruned-{os.getpid()}-{threading.get_ident()}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(folder, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sidecar(folder))
        return True
    finally:
        os.close(fd)
