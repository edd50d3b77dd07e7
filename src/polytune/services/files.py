"""Files and OpenAI's Uploads API: bytes stream to blob storage, rows record who owns what."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from typing import BinaryIO, Literal

import sqlalchemy as sa

from polytune.domain.errors import InvalidRequest, NotFound, TooLarge
from polytune.domain.ids import new_id
from polytune.domain.objects import FileInfo, Page, UploadInfo, UploadPartInfo
from polytune.services.quotas import Quotas
from polytune.store import tables as t
from polytune.store.blobs import BlobStore, PendingBlob, local_copy
from polytune.store.db import Database, now
from polytune.store.files import add_file
from polytune.store.pagination import page

FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
UPLOAD_TTL = 3600
MAX_PART_BYTES = 64 * 1024 * 1024
# The orders a window of files (list_window) can be taken in: upload time, name, size.
FileSort = Literal["created", "name", "size"]


def _info(row: t.File) -> FileInfo:
    # FileInfo's fields are the row's columns of the same names.
    return FileInfo(**{f.name: getattr(row, f.name) for f in dataclasses.fields(FileInfo)})


def _live():
    """Files not deleted and not expired: one past its expires_after is gone at once, before
    the expiry sweep (services/expiry.py) removes its bytes."""
    return sa.and_(t.File.deleted_at.is_(None), sa.or_(t.File.expires_at.is_(None), t.File.expires_at > now()))


class FileService:
    def __init__(self, db: Database, blobs: BlobStore, *, max_bytes: int, quotas: Quotas | None = None):
        self.db, self.blobs, self.max_bytes = db, blobs, max_bytes
        self.quotas = quotas or Quotas()

    # -- streaming a new file in -------------------------------------------------------------
    def begin(self) -> tuple[str, PendingBlob]:
        """Start receiving a file's bytes; the caller writes, then calls finish() or abort()."""
        file_id = new_id("file")
        return file_id, self.blobs.begin(f"files/{file_id}")

    def write(self, pending: PendingBlob, data: bytes) -> None:
        if pending.size + len(data) > self.max_bytes:
            raise TooLarge(f"File is larger than the limit of {self.max_bytes} bytes.", param="file")
        pending.write(data)

    def finish(
        self,
        org_id: str,
        file_id: str,
        pending: PendingBlob,
        *,
        filename: str,
        purpose: str,
        expires_after: int | None = None,
        purposes: tuple[str, ...] = FILE_PURPOSES,
    ) -> FileInfo:
        """`purposes`: the ones the caller's API knows (SeekrFlow's differ from OpenAI's)."""
        check_purpose(purpose, purposes)
        check_filename(filename, "file")
        with self.db.session() as s:  # refused before the bytes are kept or read (the caller aborts)
            self.quotas.check_storage(s, org_id, pending.size, param="file")
        pending.commit()
        return self._record(
            org_id,
            file_id,
            filename=filename,
            purpose=purpose,
            size=pending.size,
            expires_after=expires_after,
            charged="file",
        )

    def create_bytes(self, org_id: str, *, filename: str, purpose: str, data: bytes) -> FileInfo:
        """A file the service itself makes (a results CSV)."""
        file_id, pending = self.begin()
        pending.write(data)
        pending.commit()
        return self._record(org_id, file_id, filename=filename, purpose=purpose, size=len(data))

    def _record(
        self,
        org_id: str,
        file_id: str,
        *,
        filename: str,
        purpose: str,
        size: int,
        expires_after: int | None = None,
        charged: str | None = None,
    ) -> FileInfo:
        """`charged`: the parameter that carried the bytes, when the storage quota applies (not
        to the service's own files, nor to a completed upload, whose parts it counted)."""
        status, details, report = self._inspect(file_id, purpose)
        with self.db.session() as s:
            if charged:
                # Again, in the transaction that adds the file: another upload may have finished
                # since the check before the bytes were kept.
                try:
                    self.quotas.check_storage(s, org_id, size, param=charged)
                except TooLarge:
                    self.blobs.delete(f"files/{file_id}")
                    raise
            row = add_file(
                s,
                file_id=file_id,
                org_id=org_id,
                filename=filename,
                purpose=purpose,
                size=size,
                status=status,
                status_details=details,
                data_report=report,
                expires_at=now() + expires_after if expires_after else None,
            )
        return _info(row)

    def _inspect(self, file_id: str, purpose: str) -> tuple[str, str | None, dict | None]:
        """Check every row of a fine-tune file at upload, so a bad file is known before any job:
        (status, status_details, data report)."""
        if purpose != "fine-tune":
            return "processed", None, None
        from polytune.data.inspect import DatasetError, inspect_file

        with local_copy(self.blobs, f"files/{file_id}") as path:
            try:
                summary = inspect_file(path)
            except DatasetError as e:
                return "error", e.message, None
        return "processed", summary.describe(), dataclasses.asdict(summary)

    # -- reading -----------------------------------------------------------------------------
    def _row(self, s, org_id: str, file_id: str) -> t.File:
        row = s.scalar(sa.select(t.File).where(t.File.id == file_id, t.File.org_id == org_id, _live()))
        if row is None:
            raise NotFound(f"No such File object: {file_id}", param="id")
        return row

    def get(self, org_id: str, file_id: str) -> FileInfo:
        with self.db.session() as s:
            return _info(self._row(s, org_id, file_id))

    def list(
        self,
        org_id: str,
        *,
        after: str | None = None,
        limit: int = 10000,
        order: str = "desc",
        purpose: str | None = None,
    ) -> Page:
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be 'asc' or 'desc'.", param="order")
        with self.db.session() as s:
            stmt = sa.select(t.File).where(t.File.org_id == org_id, _live())
            if purpose:
                stmt = stmt.where(t.File.purpose == purpose)
            rows, more = page(s, stmt, t.File, after=after, limit=limit, order=order)  # type: ignore[arg-type]
            return Page([_info(r) for r in rows], more)

    def list_window(
        self,
        org_id: str,
        *,
        sort: FileSort = "created",
        descending: bool = True,
        offset: int = 0,
        limit: int = 100,
        purpose: str | None = None,
    ) -> Page:
        """A window of the organization's files, `offset` files into their order by `sort` (ties:
        newest first), for the APIs that page by offset; which sort names and parameters they
        take is their dialect's (dialects/seekr/listing.py)."""
        if offset < 0:
            raise InvalidRequest("offset must not be negative.", param="offset")
        if not 1 <= limit <= 10_000:
            raise InvalidRequest("limit must be between 1 and 10000.", param="limit")
        column = {"created": t.File.seq, "name": t.File.filename, "size": t.File.bytes}[sort]
        order = [column.desc() if descending else column.asc(), t.File.seq.desc()]
        with self.db.session() as s:
            stmt = sa.select(t.File).where(t.File.org_id == org_id, _live())
            if purpose:
                stmt = stmt.where(t.File.purpose == purpose)
            rows = list(s.scalars(stmt.order_by(*order).offset(offset).limit(limit + 1)))
            return Page([_info(r) for r in rows[:limit]], len(rows) > limit)

    def rename(self, org_id: str, file_id: str, filename: str) -> FileInfo:
        name = filename.strip()
        if "/" in name:
            raise InvalidRequest("The new filename must have no '/'.", param="new_filename")
        check_filename(name, "new_filename")
        with self.db.session() as s:
            row = self._row(s, org_id, file_id)
            row.filename = name
            return _info(row)

    def _located(self, org_id: str, file_id: str) -> tuple[FileInfo, str]:
        with self.db.session() as s:
            row = self._row(s, org_id, file_id)
            return _info(row), row.blob_key

    def opener(self, org_id: str, file_id: str) -> tuple[FileInfo, Callable[[], BinaryIO] | None]:
        """(info, an opener of the file's bytes) for a file stored as one blob: seekable, so a
        download resumes at a byte (`Range`); (info, None) for a stored folder (see content)."""
        info, key = self._located(org_id, file_id)
        return info, (lambda: self.blobs.open(key)) if key == f"files/{file_id}" else None

    def content(self, org_id: str, file_id: str):
        """(info, chunk iterator) of the file's bytes. A file whose blob is a stored folder (a
        checkpoint's tar: store/folder_tar.py) is that folder archived as it streams."""
        info, key = self._located(org_id, file_id)
        if key == f"files/{file_id}":
            return info, self.blobs.iter_chunks(key)
        from polytune.store import folder_tar

        folder = folder_tar.members(self.blobs, key, key.rstrip("/").rsplit("/", 1)[-1])
        if not folder:
            raise NotFound(f"The contents of {file_id} were deleted with the model they belonged to.", param="id")
        return info, folder_tar.iter_tar(self.blobs, folder)

    def delete(self, org_id: str, file_id: str) -> None:
        with self.db.session() as s:
            row = self._row(s, org_id, file_id)
            row.deleted_at = now()
        self.blobs.delete(f"files/{file_id}")

    # -- OpenAI Uploads: a large file in parts ---------------------------------------------
    def _upload_row(self, s, org_id: str, upload_id: str) -> t.Upload:
        row = s.scalar(sa.select(t.Upload).where(t.Upload.id == upload_id, t.Upload.org_id == org_id))
        if row is None:
            raise NotFound(f"No such Upload object: {upload_id}", param="upload_id")
        if row.status == "pending" and row.expires_at < now():
            row.status = "expired"
        return row

    def _upload_info(self, row: t.Upload, file: FileInfo | None = None) -> UploadInfo:
        return UploadInfo(
            id=row.id,
            filename=row.filename,
            purpose=row.purpose,
            bytes=row.bytes,
            mime_type=row.mime_type,
            status=row.status,
            created_at=row.created_at,
            expires_at=row.expires_at,
            file=file,
        )

    def create_upload(self, org_id: str, *, filename: str, purpose: str, bytes: int, mime_type: str) -> UploadInfo:
        check_purpose(purpose)
        if bytes < 0:
            raise InvalidRequest("bytes must not be negative.", param="bytes")
        if bytes > self.max_bytes:
            raise TooLarge(f"Upload of {bytes} bytes is over the limit of {self.max_bytes}.", param="bytes")
        check_filename(filename, "filename")
        with self.db.session() as s:
            self.quotas.check_storage(s, org_id, bytes, param="bytes")
        created = now()
        row = t.Upload(
            id=new_id("upload"),
            org_id=org_id,
            filename=filename,
            purpose=purpose,
            bytes=bytes,
            mime_type=mime_type,
            status="pending",
            created_at=created,
            expires_at=created + UPLOAD_TTL,
        )
        with self.db.session() as s:
            s.add(row)
        return self._upload_info(row)

    def _pending_upload(self, s, org_id: str, upload_id: str) -> t.Upload:
        row = self._upload_row(s, org_id, upload_id)
        if row.status != "pending":
            raise InvalidRequest(f"Upload {upload_id} is {row.status}; it takes no more changes.", param="upload_id")
        return row

    def begin_part(self, org_id: str, upload_id: str) -> tuple[str, PendingBlob]:
        with self.db.session() as s:
            self._pending_upload(s, org_id, upload_id)
        part_id = new_id("part")
        return part_id, self.blobs.begin(f"uploads/{upload_id}/{part_id}")

    def write_part(self, pending: PendingBlob, data: bytes) -> None:
        if pending.size + len(data) > MAX_PART_BYTES:
            raise TooLarge(f"A part may hold at most {MAX_PART_BYTES} bytes.", param="data")
        pending.write(data)

    def finish_part(self, org_id: str, upload_id: str, part_id: str, pending: PendingBlob) -> UploadPartInfo:
        # One transaction: the upload looked up once, and the declared-size and quota checks made
        # against the same state the part is added to. (The caller aborts the pending blob on any error.)
        with self.db.session() as s:
            row = self._pending_upload(s, org_id, upload_id)
            held = (
                s.scalar(
                    sa.select(sa.func.coalesce(sa.func.sum(t.UploadPart.bytes), 0)).where(
                        t.UploadPart.upload_id == upload_id
                    )
                )
                or 0
            )
            # The upload declared its size: parts beyond it would only be refused at complete,
            # after they had filled storage.
            if held + pending.size > row.bytes:
                raise InvalidRequest(
                    f"This part of {pending.size} bytes would bring upload {upload_id} to "
                    f"{held + pending.size} bytes, over the {row.bytes} bytes it was created "
                    "for.",
                    param="data",
                    code="upload_too_large",
                )
            self.quotas.check_storage(s, org_id, pending.size, param="data")
            pending.commit()
            part = t.UploadPart(
                id=part_id, upload_id=upload_id, bytes=pending.size, blob_key=pending.key, created_at=now()
            )
            s.add(part)
        return UploadPartInfo(id=part_id, upload_id=upload_id, created_at=part.created_at)

    def complete_upload(self, org_id: str, upload_id: str, part_ids: list[str], md5: str | None = None) -> UploadInfo:
        with self.db.session() as s:
            row = self._pending_upload(s, org_id, upload_id)
            parts = {p.id: p for p in s.scalars(sa.select(t.UploadPart).where(t.UploadPart.upload_id == upload_id))}
        if not part_ids:
            raise InvalidRequest("part_ids must list at least one part.", param="part_ids")
        if len(set(part_ids)) != len(part_ids):
            raise InvalidRequest("part_ids lists a part more than once.", param="part_ids")
        unknown = [p for p in part_ids if p not in parts]
        if unknown:
            raise InvalidRequest(f"Part {unknown[0]} does not belong to upload {upload_id}.", param="part_ids")
        total = sum(parts[p].bytes for p in part_ids)
        if total != row.bytes:
            raise InvalidRequest(
                f"The parts hold {total} bytes but the upload was created for {row.bytes} bytes.", param="part_ids"
            )
        file_id, pending = self.begin()
        digest = hashlib.md5(usedforsecurity=False)
        try:
            for p in part_ids:
                for chunk in self.blobs.iter_chunks(parts[p].blob_key):
                    digest.update(chunk)
                    pending.write(chunk)
        except BaseException:
            pending.abort()
            raise
        if md5 and digest.hexdigest() != md5.lower():
            pending.abort()
            raise InvalidRequest(f"md5 mismatch: the parts hash to {digest.hexdigest()}.", param="md5")
        pending.commit()
        info = self._record(org_id, file_id, filename=row.filename, purpose=row.purpose, size=total)
        with self.db.session() as s:
            row = self._pending_upload(s, org_id, upload_id)
            row.status, row.file_id = "completed", file_id
        self.blobs.delete(f"uploads/{upload_id}")
        return self._upload_info(row, info)

    def cancel_upload(self, org_id: str, upload_id: str) -> UploadInfo:
        with self.db.session() as s:
            row = self._pending_upload(s, org_id, upload_id)
            row.status = "cancelled"
        self.blobs.delete(f"uploads/{upload_id}")
        return self._upload_info(row)


def check_purpose(purpose: str, purposes: tuple[str, ...] = FILE_PURPOSES) -> None:
    if purpose not in purposes:
        raise InvalidRequest(
            f"'{purpose}' is not a valid purpose; expected one of {json.dumps(list(purposes))}.", param="purpose"
        )


MAX_FILENAME = 512  # the column's width
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_filename(name: str, param: str) -> None:
    """A file's name is kept exactly as given (any Unicode); it must fit its column and hold no
    control characters (NUL can't be stored, CR/LF would break the headers it is sent back in)."""
    if not name:
        raise InvalidRequest("The file name must not be empty.", param=param)
    if len(name) > MAX_FILENAME:
        raise InvalidRequest(
            f"The file name is {len(name)} characters; at most {MAX_FILENAME} are allowed.", param=param
        )
    if _CONTROL.search(name):
        raise InvalidRequest("The file name must not contain control characters (NUL, CR, LF, tab, ...).", param=param)
