"""A stored folder (a checkpoint's weights) downloaded as one tar file, built while it streams.

A checkpoint is stored once, as the folder inference loads; its downloadable `.tar` result file
is that folder read through this module, not a second copy of the weights in storage. The tar's
exact size is known before the first byte (the API's Content-Length; what the file row reports):
each member is a ustar/pax header from `tarfile.TarInfo.tobuf`, its bytes, and zero padding to
512, then two zero blocks and padding to tarfile's record size, as `tarfile.open(mode="w|")` writes.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from polytune.store.blobs import BlobStore

_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_FORMAT: Literal[0, 1, 2] = tarfile.PAX_FORMAT


@dataclass(frozen=True)
class Member:
    key: str  # the blob key of the file
    name: str  # its name inside the archive
    size: int


def members(blobs: BlobStore, key: str, arcname: str) -> list[Member]:
    """The folder's files (sorted), named `arcname/<relative path>` inside the archive."""
    base = blobs._path(key).rstrip("/")
    found = []
    for path, info in sorted(blobs.fs.find(base, detail=True).items()):
        rel = path[len(base) :].lstrip("/")
        if ".partial-" in rel:
            continue  # a write still in flight (blobs.PendingBlob) is not part of the folder
        found.append(Member(key=f"{key.rstrip('/')}/{rel}", name=f"{arcname}/{rel}", size=int(info["size"])))
    return found


def _header(member: Member) -> bytes:
    info = tarfile.TarInfo(member.name)
    info.size, info.mode, info.mtime = member.size, 0o644, 0
    return info.tobuf(_FORMAT, tarfile.ENCODING, "surrogateescape")


def _padding(size: int) -> int:
    return -size % _BLOCK


def tar_size(folder: list[Member]) -> int:
    body = sum(len(_header(m)) + m.size + _padding(m.size) for m in folder) + 2 * _BLOCK
    return body + (-body % _RECORD)


def iter_tar(blobs: BlobStore, folder: list[Member]) -> Iterator[bytes]:
    """The archive's bytes, member by member, each file read from storage in chunks."""
    written = 0
    for member in folder:
        header = _header(member)
        yield header
        sent = 0
        for chunk in blobs.iter_chunks(member.key):
            sent += len(chunk)
            yield chunk
        if sent != member.size:
            raise OSError(f"{member.key} changed size while it was archived ({member.size} -> {sent} bytes)")
        yield b"\0" * _padding(member.size)
        written += len(header) + member.size + _padding(member.size)
    written += 2 * _BLOCK
    yield b"\0" * (2 * _BLOCK + (-written % _RECORD))
