"""Data at rest is private to the service's own user.

The data dir holds the database, every organization's files and models, job logs and the
secret key; nothing in it is for another local user. A process-wide umask of 077 makes every
file and folder a polytune process creates 0600/0700 (the server, its worker processes, which
inherit it, and Ray workers, which set it themselves); the data dir is made 0700 explicitly, which
also closes a data dir that an older version left readable to everybody.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077


def keep_private() -> None:
    """From now on this process (and the processes it starts) creates private files only."""
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """Create `path` (and its parents) if needed and make it 0700."""
    keep_private()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def strip_group_other(root: Path) -> None:
    """Take group and other permissions off `root` and everything under it: for a tree copied
    in (shutil's copies keep the source's mode bits, which the umask does not touch)."""
    for folder, dirs, files in os.walk(root):
        for path in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode & 0o7700)
