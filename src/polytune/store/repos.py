"""Repositories in the store: rows <-> domain records, commits, and publishing a model folder.

A commit writes the new files' blobs first (each under a fresh key, so nothing a reader
holds changes under it), then in one transaction adds the commit row and points the branch's
file rows at the new blobs. The blobs a commit replaced are deleted after it, by the caller.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from polytune.domain.ids import new_id
from polytune.domain.repos import CommitInfo, RepoFileInfo, RepoInfo

from . import tables as t
from .blobs import BlobStore
from .db import Database


@dataclass
class NewFile:
    """A file whose bytes are already in blob storage, waiting to be committed at `path`."""

    path: str
    blob_key: str
    size: int


def blob_key(repo_id: str) -> str:
    return f"repos/{repo_id}/objects/{new_id('obj')}"


def repo_info(row: t.Repo, latest: t.RepoCommit | None = None) -> RepoInfo:
    return RepoInfo(
        id=row.id,
        org_id=row.org_id,
        namespace=row.namespace,
        name=row.name,
        description=row.description or "",
        is_public=row.is_public,
        created_at=row.created_at,
        latest_commit=commit_info(latest) if latest is not None else None,
    )


def commit_info(row: t.RepoCommit) -> CommitInfo:
    return CommitInfo(
        id=row.id,
        parent_ids=[row.parent_id] if row.parent_id else [],
        message=row.message,
        author=row.author,
        email=row.email,
        created_at=row.created_at,
    )


def file_info(row: t.RepoFile) -> RepoFileInfo:
    return RepoFileInfo(
        repo_id=row.repo_id,
        branch=row.branch,
        path=row.path,
        bytes=row.bytes,
        commit_id=row.commit_id,
        updated_at=row.updated_at,
    )


def head(session: Session, repo_id: str, branch: str | None = None) -> t.RepoCommit | None:
    """The newest commit of `branch` (of any branch when None)."""
    stmt = sa.select(t.RepoCommit).where(t.RepoCommit.repo_id == repo_id)
    if branch is not None:
        stmt = stmt.where(t.RepoCommit.branch == branch)
    return session.scalar(stmt.order_by(t.RepoCommit.seq.desc()).limit(1))


def branches(session: Session, repo_id: str) -> list[str]:
    return list(session.scalars(sa.select(t.RepoCommit.branch).where(t.RepoCommit.repo_id == repo_id).distinct()))


def commit(
    session: Session, repo_id: str, branch: str, files: list[NewFile], *, message: str, author: str, email: str
) -> tuple[t.RepoCommit, list[str]]:
    """Add a commit on `branch` holding `files`; returns it and the blob keys it replaced."""
    parent = head(session, repo_id, branch)
    row = t.RepoCommit(
        id=secrets.token_hex(16),
        repo_id=repo_id,
        branch=branch,
        parent_id=parent.id if parent else None,
        message=message,
        author=author,
        email=email,
        created_at=time.time(),
    )
    session.add(row)
    replaced = []
    for f in files:
        current = session.scalar(
            sa.select(t.RepoFile).where(
                t.RepoFile.repo_id == repo_id, t.RepoFile.branch == branch, t.RepoFile.path == f.path
            )
        )
        if current is None:
            session.add(
                t.RepoFile(
                    repo_id=repo_id,
                    branch=branch,
                    path=f.path,
                    blob_key=f.blob_key,
                    bytes=f.size,
                    commit_id=row.id,
                    updated_at=row.created_at,
                )
            )
        else:
            replaced.append(current.blob_key)
            current.blob_key, current.bytes = f.blob_key, f.size
            current.commit_id, current.updated_at = row.id, row.created_at
    session.flush()
    return row, replaced


def link_job(session: Session, repo_id: str, job_id: str) -> None:
    session.add(t.RepoJob(repo_id=repo_id, job_id=job_id))


def publish_folder(
    db: Database, blobs: BlobStore, *, repo_id: str, branch: str, path: str, folders: dict[str, Path], message: str
) -> str:
    """Commit the files of local `folders` ({sub-path: folder}; "" for `path` itself) under
    `path` on `branch`, as one commit by polytune. Returns the commit id."""
    files = []
    for sub, folder in folders.items():
        for p in sorted(folder.rglob("*")):
            if not p.is_file():
                continue
            key = blob_key(repo_id)
            with p.open("rb") as src, blobs.writer(key) as dst:
                while chunk := src.read(1024 * 1024):
                    dst.write(chunk)
            rel = "/".join(x for x in (path, sub, p.relative_to(folder).as_posix()) if x)
            files.append(NewFile(path=rel, blob_key=key, size=p.stat().st_size))
    with db.session() as s:
        row, replaced = commit(
            s, repo_id, branch, files, message=message, author="polytune", email="polytune@localhost"
        )
        commit_id = row.id
    for key in replaced:
        blobs.delete(key)
    return commit_id
