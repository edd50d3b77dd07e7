"""Jobs that train on a table in a repository and publish their weights back into it.

At create, the table (`<branch>/<path>`) is read once and converted to a chat JSONL training
file owned by the organization, so the job trains on the data as it was then (like a pinned
commit), and every other API can read the job and its file like any other. The job is held
in `created` until start(); when it succeeds the worker commits the weights into the same
branch (see training/runner.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from polytune.data.image_table import image_caption_examples
from polytune.data.tabular import question_answer_examples
from polytune.domain.errors import InvalidRequest, NotFound
from polytune.domain.job import Job, JobStatus
from polytune.domain.objects import Checkpoint
from polytune.domain.repos import RepoInfo
from polytune.domain.spec import IMAGE_METHODS, JobSpec
from polytune.services.checkpoint_starts import is_checkpoint_id
from polytune.store import jobs as job_store
from polytune.store import repos as repo_store
from polytune.store import tables as t
from polytune.store.blobs import local_copy

from .files import FileService
from .jobs import JobService
from .repos import RepoService, clean_path


# A job whose fine-tune was created public (Oxen's `is_public`), read from its spec in SQL.
_PUBLIC = t.Job.spec["output"]["public"].as_boolean().is_(True)


@dataclass
class TableColumns:
    question: str
    answer: str


@dataclass
class ImageColumns:
    image: str
    caption: str


@dataclass
class JobsPage:
    jobs: list[Job]
    total: int


class RepoJobService:
    def __init__(self, repos: RepoService, files: FileService, jobs: JobService):
        self.repos, self.files, self.jobs = repos, files, jobs

    def create(
        self,
        org_id: str,
        namespace: str,
        name: str,
        spec: JobSpec,
        *,
        resource: str,
        columns: TableColumns | ImageColumns,
        warnings: list[str] | None = None,
        on_create: Callable[[Session, str], None] | None = None,
    ) -> Job:
        """A held job training on `resource` (`<branch>/<path>`); nothing is left behind on error.
        `on_create(session, job_id)` adds rows that belong with the job (jobs.create)."""
        # A checkpoint named as the model (services/checkpoint_starts.py) is checked by jobs.create,
        # once its base model is known.
        if not is_checkpoint_id(spec.model):
            self.jobs.check(spec)
        repo = self.repos.get(org_id, namespace, name)
        branch, path = self.repos.split_revision(repo.id, resource)
        if not path:
            raise InvalidRequest(f"resource '{resource}' names no file; expected '<branch>/<path>'.", param="resource")
        try:
            info, key = self.repos.file(org_id, namespace, name, branch, path)
        except NotFound as e:  # a parameter of this request, not the URL, names the file
            raise InvalidRequest(f"resource: {e.message}", param="resource", code="resource_not_found") from None
        with local_copy(self.repos.blobs, key) as local:
            if spec.method.type in IMAGE_METHODS:
                assert isinstance(columns, ImageColumns)  # the dialect reads image columns for image methods
                examples = image_caption_examples(
                    local,
                    filename=path,
                    image_column=columns.image,
                    caption_column=columns.caption,
                    read_file=lambda p: self._read(org_id, namespace, name, branch, p),
                )
            else:
                assert isinstance(columns, TableColumns)
                examples = question_answer_examples(
                    local, filename=path, question_column=columns.question, answer_column=columns.answer
                )
        file_id = self._training_file(org_id, repo, branch, path, examples)
        spec = spec.model_copy(
            update={
                "training_files": [file_id],
                "output": spec.output.model_copy(update={"repository": repo.id, "branch": branch}),
                "extras": {**spec.extras, "resource": {"branch": branch, "path": path, "version": info.commit_id}},
            }
        )
        try:
            return self.jobs.create(
                org_id,
                spec,
                hold=True,
                warnings=warnings,
                on_create=lambda s, job_id: self._created(s, repo.id, job_id, on_create),
            )
        except BaseException:
            self.files.delete(org_id, file_id)
            raise

    @staticmethod
    def _created(s: Session, repo_id: str, job_id: str, also: Callable[[Session, str], None] | None) -> None:
        repo_store.link_job(s, repo_id, job_id)
        if also is not None:
            also(s, job_id)

    def _read(self, org_id: str, namespace: str, name: str, branch: str, path: str) -> bytes:
        """A file of the repository (an image a table points at); FileNotFoundError if none."""
        try:
            _, key = self.repos.file(org_id, namespace, name, branch, path)
        except (NotFound, InvalidRequest):
            raise FileNotFoundError(path) from None
        return b"".join(self.repos.blobs.iter_chunks(key))

    def _training_file(self, org_id: str, repo: RepoInfo, branch: str, path: str, examples: list) -> str:
        file_id, pending = self.files.begin()
        try:
            for ex in examples:
                self.files.write(pending, orjson.dumps(ex) + b"\n")
            filename = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{repo.full_name}/{branch}/{path}") + ".jsonl"
            info = self.files.finish(org_id, file_id, pending, filename=filename, purpose="fine-tune")
        except BaseException:
            pending.abort()
            raise
        if info.status == "error":
            self.files.delete(org_id, file_id)
            raise InvalidRequest(f"{path}: {info.status_details}", param="resource")
        return file_id

    # -- who reads what ---------------------------------------------------------------------
    def reader(self, org_id: str, namespace: str, name: str) -> tuple[str, bool]:
        """Whose repository `namespace/name` a read by `org_id` is served from, and whether that
        read sees only the repository's public fine-tunes: the caller's own, else another
        organization's public repository (everything in it), else another organization's
        private repository that holds fine-tunes created with `is_public: true` (those only,
        read-only). Otherwise the caller's own, which then answers not found."""
        owner = self.repos.readable_owner(org_id, namespace, name)
        with self.repos.db.session() as s:
            if (
                s.scalar(
                    sa.select(t.Repo.id).where(
                        t.Repo.org_id == owner, t.Repo.namespace == namespace, t.Repo.name == name
                    )
                )
                is not None
            ):
                return owner, False
            other = s.scalar(
                sa.select(t.Repo.org_id)
                .join(t.RepoJob, t.RepoJob.repo_id == t.Repo.id)
                .join(t.Job, t.Job.id == t.RepoJob.job_id)
                .where(t.Repo.namespace == namespace, t.Repo.name == name, _PUBLIC)
                .order_by(t.Repo.created_at, t.Repo.id)
                .limit(1)
            )
        return (other, True) if other is not None else (org_id, False)

    def public_folder(self, org_id: str, namespace: str, name: str, target: str) -> None:
        """NotFound unless `target` (`<branch>/<path>`) lies in the folder a public fine-tune of
        the repository published its weights to: all another organization may read of a
        private repository."""
        repo = self.repos.get(org_id, namespace, name)
        branch, path = self.repos.split_revision(repo.id, target)
        path = clean_path(path, "path")  # as the read itself sees it ('..' is refused there too)
        for job in self.list(org_id, namespace=namespace, name=name, page_size=1000, public_only=True).jobs:
            out = job.spec.output
            if out.branch == branch and (path + "/").startswith(out.repository_path(job.id) + "/"):
                return
        raise NotFound(f"Repository '{namespace}/{name}' not found.", param="repository", code="repository_not_found")

    # -- a repository's jobs -----------------------------------------------------------------
    def _job(self, org_id: str, namespace: str, name: str, job_id: str, public_only: bool = False) -> Job:
        repo = self.repos.get(org_id, namespace, name)
        with self.repos.db.session() as s:
            linked = s.scalar(
                sa.select(t.RepoJob.job_id).where(t.RepoJob.repo_id == repo.id, t.RepoJob.job_id == job_id)
            )
        job = self.jobs.get(org_id, job_id) if linked is not None else None
        if job is None or (public_only and not job.spec.output.public):
            raise NotFound(f"No fine-tune '{job_id}' in '{namespace}/{name}'.", param="id", code="fine_tune_not_found")
        return job

    def get(self, org_id: str, namespace: str, name: str, job_id: str, *, public_only: bool = False) -> Job:
        return self._job(org_id, namespace, name, job_id, public_only)

    def start(self, org_id: str, namespace: str, name: str, job_id: str) -> Job:
        self._job(org_id, namespace, name, job_id)
        return self.jobs.start(org_id, job_id)

    def checkpoints(
        self, org_id: str, namespace: str, name: str, job_id: str, *, public_only: bool = False
    ) -> tuple[Job, list[tuple[Checkpoint, str, int | None]]]:
        """The job and its checkpoints by step: each with its folder in the repository and the
        bytes published there (None until the job succeeds and publishes them)."""
        job = self._job(org_id, namespace, name, job_id, public_only)
        out = job.spec.output
        found = []
        with self.repos.db.session() as s:
            for c in sorted(self.jobs.checkpoints(org_id, job_id, limit=10_000).data, key=lambda c: c.step):
                path = f"{out.repository_path(job_id)}/checkpoints/step-{c.step}"
                size = s.scalar(
                    sa.select(sa.func.sum(t.RepoFile.bytes)).where(
                        t.RepoFile.repo_id == out.repository,
                        t.RepoFile.branch == out.branch,
                        t.RepoFile.path.startswith(path + "/", autoescape=True),
                    )
                )
                found.append((c, path, int(size) if size is not None else None))
        return job, found

    def list(
        self,
        org_id: str,
        *,
        namespace: str | None = None,
        name: str | None = None,
        statuses: list[JobStatus] | None = None,
        page: int = 1,
        page_size: int = 20,
        newest_first: bool = True,
        public_only: bool = False,
    ) -> JobsPage:
        """One page (numbered from 1) of the organization's jobs, or of one repository's
        (`public_only`: its fine-tunes created with `is_public: true`)."""
        if page < 1:
            raise InvalidRequest("page must be at least 1.", param="page")
        if not 1 <= page_size <= 1000:
            raise InvalidRequest("page_size must be between 1 and 1000.", param="page_size")
        stmt = sa.select(t.Job).where(t.Job.org_id == org_id)
        if namespace is not None and name is not None:
            repo = self.repos.get(org_id, namespace, name)
            stmt = stmt.join(t.RepoJob, t.RepoJob.job_id == t.Job.id).where(t.RepoJob.repo_id == repo.id)
        if statuses:
            stmt = stmt.where(t.Job.status.in_([st.value for st in statuses]))
        if public_only:
            stmt = stmt.where(_PUBLIC)
        with self.repos.db.session() as s:
            total = s.scalar(sa.select(sa.func.count()).select_from(stmt.subquery())) or 0
            rows = s.scalars(
                stmt.order_by(t.Job.seq.desc() if newest_first else t.Job.seq.asc())
                .offset((page - 1) * page_size)
                .limit(page_size)
            )
            return JobsPage([job_store.to_domain(r) for r in rows], total)

    def repository_of(self, org_id: str, job: Job) -> RepoInfo | None:
        """The repository a job publishes into, if any (for rendering its name)."""
        if not job.spec.output.repository:
            return None
        with self.repos.db.session() as s:
            row = s.scalar(sa.select(t.Repo).where(t.Repo.id == job.spec.output.repository, t.Repo.org_id == org_id))
            if row is None:
                return None
            return repo_store.repo_info(row)
