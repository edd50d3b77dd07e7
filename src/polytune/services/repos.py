"""Repositories: create one, commit files into a branch, read a file back.

A thin versioned file store, enough for a client to push a dataset and read fine-tuned
weights back: each branch holds the newest version of each path; commits record who changed
what. Every query is scoped to the caller's organization, so another organization's
repository of the same name is simply a different one.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import sqlalchemy as sa

from polytune.domain.errors import Conflict, InvalidRequest, NotFound, TooLarge
from polytune.domain.ids import new_id
from polytune.domain.repos import DEFAULT_BRANCH, BranchInfo, CommitInfo, RepoFileInfo, RepoInfo
from polytune.services.quotas import Quotas
from polytune.store import repos as repo_store
from polytune.store import tables as t
from polytune.store.blobs import BlobStore, PendingBlob
from polytune.store.db import Database, now

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


def check_name(value: str, param: str) -> None:
    if not _NAME.match(value or "") or value.endswith(".") or ".." in value:
        raise InvalidRequest(
            f"Invalid {param} '{value}': use letters, digits, '-', '_' and '.', starting with a letter or digit.",
            param=param,
        )


def clean_path(path: str, param: str) -> str:
    """A relative path inside a repository, with no '..' and no empty or '.' segments."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or any(c < " " or c == "\x7f" for c in path):
        raise InvalidRequest(f"Invalid path '{path}': expected a relative path inside the repository.", param=param)
    return "/".join(parts)


class PendingFile:
    """A file part on its way into blob storage, with the size limit enforced while it streams."""

    def __init__(self, blob: PendingBlob, path: str, max_bytes: int):
        self.blob, self.path, self.max_bytes = blob, path, max_bytes

    def write(self, data: bytes) -> None:
        if self.blob.size + len(data) > self.max_bytes:
            raise TooLarge(f"{self.path} is larger than the limit of {self.max_bytes} bytes.", param="files[]")
        self.blob.write(data)


class RepoService:
    def __init__(self, db: Database, blobs: BlobStore, *, max_bytes: int, quotas: Quotas | None = None):
        self.db, self.blobs, self.max_bytes = db, blobs, max_bytes
        self.quotas = quotas or Quotas()

    # -- repositories ------------------------------------------------------------------------
    def _row(self, s, org_id: str, namespace: str, name: str) -> t.Repo:
        row = s.scalar(
            sa.select(t.Repo).where(t.Repo.org_id == org_id, t.Repo.namespace == namespace, t.Repo.name == name)
        )
        if row is None:
            raise NotFound(
                f"Repository '{namespace}/{name}' not found.", param="repository", code="repository_not_found"
            )
        return row

    def readable_owner(self, org_id: str, namespace: str, name: str) -> str:
        """The organization whose repository `namespace/name` a read by `org_id` is served from:
        its own of that name, else another organization's public one (read-only: only the read
        routes ask this), else its own (which then answers not found). Of several public ones
        of that name, the oldest."""
        with self.db.session() as s:
            own = s.scalar(
                sa.select(t.Repo.id).where(t.Repo.org_id == org_id, t.Repo.namespace == namespace, t.Repo.name == name)
            )
            if own is not None:
                return org_id
            public = s.scalar(
                sa.select(t.Repo.org_id)
                .where(t.Repo.namespace == namespace, t.Repo.name == name, t.Repo.is_public.is_(True))
                .order_by(t.Repo.created_at, t.Repo.id)
                .limit(1)
            )
            return public or org_id

    def get(self, org_id: str, namespace: str, name: str) -> RepoInfo:
        with self.db.session() as s:
            row = self._row(s, org_id, namespace, name)
            return repo_store.repo_info(row, repo_store.head(s, row.id))

    def create(
        self,
        org_id: str,
        namespace: str,
        name: str,
        *,
        description: str = "",
        is_public: bool = False,
        files: list[tuple[str, bytes]] | None = None,
        author: str = "polytune",
        email: str = "polytune@localhost",
    ) -> RepoInfo:
        """A new repository; `files` (path, contents) become its first commit on main."""
        check_name(namespace, "namespace")
        check_name(name, "name")
        seeded = [(clean_path(p, "files.path"), data) for p, data in files or []]
        repo_id = new_id("repo")
        new = []
        for path, data in seeded:  # bytes first; the rows that make them visible come after
            key = repo_store.blob_key(repo_id)
            with self.blobs.writer(key) as f:
                f.write(data)
            new.append(repo_store.NewFile(path=path, blob_key=key, size=len(data)))
        exists = Conflict(f"Repository '{namespace}/{name}' already exists.", param="name", code="repository_exists")
        try:
            with self.db.session() as s:
                if s.scalar(
                    sa.select(t.Repo.id).where(
                        t.Repo.org_id == org_id, t.Repo.namespace == namespace, t.Repo.name == name
                    )
                ):
                    raise exists
                s.add(
                    t.Repo(
                        id=repo_id,
                        org_id=org_id,
                        namespace=namespace,
                        name=name,
                        description=description or "",
                        is_public=is_public,
                        created_at=now(),
                    )
                )
                s.flush()
                if new:
                    repo_store.commit(
                        s, repo_id, DEFAULT_BRANCH, new, message="Initialized repository", author=author, email=email
                    )
        except BaseException as e:
            for added in new:
                self.blobs.delete(added.blob_key)
            if isinstance(e, sa.exc.IntegrityError):  # created by a concurrent request meanwhile
                raise exists from None
            raise
        return self.get(org_id, namespace, name)

    # -- branches and paths --------------------------------------------------------------------
    def split_revision(self, repo_id: str, revision_path: str) -> tuple[str, str]:
        """`<branch>/<path>` -> (branch, path). Branch names may hold '/', so the longest prefix
        that names an existing branch wins; with none, the first segment is the branch."""
        parts = [p for p in revision_path.split("/") if p]
        if not parts:
            raise InvalidRequest("Expected '<branch>/<path>'.", param="revision")
        with self.db.session() as s:
            known = set(repo_store.branches(s, repo_id))
        for i in range(len(parts), 0, -1):
            if "/".join(parts[:i]) in known:
                return "/".join(parts[:i]), "/".join(parts[i:])
        return parts[0], "/".join(parts[1:])

    def branch(self, org_id: str, namespace: str, name: str, branch: str) -> BranchInfo:
        with self.db.session() as s:
            repo = self._row(s, org_id, namespace, name)
            head = repo_store.head(s, repo.id, branch)
            if head is None:
                raise NotFound(
                    f"Branch '{branch}' not found in '{namespace}/{name}'.", param="branch", code="branch_not_found"
                )
            return BranchInfo(name=branch, commit=repo_store.commit_info(head))

    # -- files -------------------------------------------------------------------------------
    def begin_file(self, repo_id: str, path: str) -> PendingFile:
        return PendingFile(self.blobs.begin(repo_store.blob_key(repo_id)), path, self.max_bytes)

    def commit_files(
        self,
        org_id: str,
        namespace: str,
        name: str,
        branch: str,
        pending: list[PendingFile],
        *,
        message: str,
        author: str,
        email: str,
    ) -> CommitInfo:
        """Make streamed files visible at their paths on `branch`, as one commit."""
        try:
            if not pending:
                raise InvalidRequest(
                    "Send at least one file as 'files[]'.", param="files[]", code="missing_required_parameter"
                )
            check_branch(branch)
            paths = [clean_path(p.path, "files[]") for p in pending]
            for p in pending:
                p.blob.commit()
            with self.db.session() as s:
                repo = self._row(s, org_id, namespace, name)
                # (Counts files this commit replaces too: the quota is never passed, even briefly.)
                self.quotas.check_storage(s, org_id, sum(p.blob.size for p in pending), param="files[]")
                row, replaced = repo_store.commit(
                    s,
                    repo.id,
                    branch,
                    [
                        repo_store.NewFile(path=path, blob_key=p.blob.key, size=p.blob.size)
                        for path, p in zip(paths, pending)
                    ],
                    message=message or f"Uploaded {', '.join(paths)}",
                    author=author or "unknown",
                    email=email or "",
                )
                info = repo_store.commit_info(row)
        except BaseException:
            for p in pending:
                p.blob.abort()
                with contextlib.suppress(Exception):
                    self.blobs.delete(p.blob.key)
            raise
        for key in replaced:
            self.blobs.delete(key)
        return info

    def file(self, org_id: str, namespace: str, name: str, branch: str, path: str) -> tuple[RepoFileInfo, str]:
        """The file at `path` on `branch`, and the key of its blob."""
        path = clean_path(path, "path")
        with self.db.session() as s:
            repo = self._row(s, org_id, namespace, name)
            row = s.scalar(
                sa.select(t.RepoFile).where(
                    t.RepoFile.repo_id == repo.id, t.RepoFile.branch == branch, t.RepoFile.path == path
                )
            )
            if row is None:
                raise NotFound(
                    f"'{path}' not found on branch '{branch}' of '{namespace}/{name}'.",
                    param="path",
                    code="file_not_found",
                )
            return repo_store.file_info(row), row.blob_key

    def read(self, org_id: str, namespace: str, name: str, revision_path: str) -> tuple[RepoFileInfo, Iterator[bytes]]:
        """(info, chunks) of the file at `<branch>/<path>`."""
        repo = self.get(org_id, namespace, name)
        branch, path = self.split_revision(repo.id, revision_path)
        info, key = self.file(org_id, namespace, name, branch, path)
        return info, self.blobs.iter_chunks(key)


def check_branch(branch: str) -> None:
    parts = branch.split("/")
    if not branch or any(not p or p in (".", "..") or not _NAME.match(p) for p in parts):
        raise InvalidRequest(f"Invalid branch name '{branch}'.", param="branch")
