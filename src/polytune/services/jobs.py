"""The job use cases: create, read, cancel; and the validation pass that queues new jobs."""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from polytune.domain.errors import InvalidRequest, NotFound
from polytune.domain.ids import new_id
from polytune.domain.job import Job, JobStatus
from polytune.domain.objects import Checkpoint, Event, Page
from polytune.domain.spec import IMAGE_METHODS, JobSpec, method_type
from polytune.domain.validation import MAX_METADATA_KEYS, check_spec
from polytune.services.job_validation import JobValidation, check_format
from polytune.catalog.memory_fit import Capacity, check_fit, check_quantization, read_config
from polytune.services.quotas import Quotas
from polytune.store import jobs as job_store
from polytune.store import tables as t
from polytune.store.blobs import BlobStore
from polytune.store.db import Database, now
from polytune.store.pagination import page
from polytune.store.secret_box import SecretBox
from polytune.store.secrets import add_job_secret
from polytune.catalog.pipelines import check_trainable
from polytune.catalog.models import Catalog

log = logging.getLogger(__name__)


def _retry_when_stale(change):
    """The scheduler may move a job (validated, claimed, requeued) between a request's read and
    its write — SQLite has no row locks — and the write then fails as stale (never applied).
    Read the job again and decide again, a few times, instead of answering a 500."""

    @functools.wraps(change)
    def retried(self, org_id: str, job_id: str) -> Job:
        for _ in range(4):
            try:
                return change(self, org_id, job_id)
            except job_store.StaleTransition:
                continue
        return change(self, org_id, job_id)

    return retried


# File purposes a job of each method trains on: "fine-tune" for all (OpenAI's one purpose), and
# the method's own purpose where a provider has one (SeekrFlow's uploads).
TRAINING_PURPOSES: dict[str, tuple[str, ...]] = {
    "dpo": ("fine-tune", "preference-fine-tune"),
    "reinforcement": ("fine-tune", "reinforcement-fine-tune"),
}


class JobService:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        catalog: Catalog,
        *,
        secret_box: SecretBox,
        min_examples: int = 10,
        validation_workers: int = 2,
        quotas: Quotas | None = None,
    ):
        self.db, self.blobs, self.catalog, self.min_examples = db, blobs, catalog, min_examples
        self.secret_box = secret_box
        self.quotas = quotas or Quotas()
        self.validation = JobValidation(db, blobs, catalog, min_examples=min_examples, workers=validation_workers)
        # The executor's check that a job's resources can ever be placed (set by the app when
        # it runs a scheduler; the Ray executor has one): raises InvalidRequest.
        self.placement_check: Callable[[JobSpec], None] | None = None
        # The accelerators a job may ever get (set by the app from its executor): jobs that
        # cannot fit them are refused at creation (catalog/memory_fit.py).
        self.capacity: Callable[[], Capacity | None] | None = None
        # A checkpoint named as the model: its base model, starting from it (services/checkpoint_starts.py);
        # discard_start removes the copy of it made for a job that was then refused.
        self.starts: Callable[[str, JobSpec], JobSpec] | None = None
        self.discard_start: Callable[[JobSpec], None] | None = None

    # -- create ------------------------------------------------------------------------------
    def check(self, spec: JobSpec) -> None:
        """The checks that need no data: the spec's rules and the model's presence in the catalog."""
        check_spec(spec)
        entry = self.catalog.get(spec.model)
        if (entry.kind == "image") != (spec.method.type in IMAGE_METHODS):
            fits = [e.name for e in self.catalog.list() if (e.kind == "image") == (spec.method.type in IMAGE_METHODS)]
            raise InvalidRequest(
                f"The model '{spec.model}' is {'an image' if entry.kind == 'image' else 'a text'} "
                f"model; method '{spec.method.type}' trains {'image' if spec.method.type in IMAGE_METHODS else 'text'} "
                f"models (in the catalog: {', '.join(fits) or 'none'}).",
                param="model",
                code="model_kind_mismatch",
            )
        if entry.kind == "image":
            check_trainable(self.catalog.pipeline_class(entry), spec.model)
        if self.placement_check is not None:
            self.placement_check(spec)
        capacity = self.capacity() if self.capacity is not None else None
        check_quantization(spec, adapter_default=entry.adapter_default, accelerators=capacity is not None)
        if capacity is not None and capacity.device_memory and entry.kind == "text":
            check_fit(
                spec,
                read_config(self.catalog.resolve_path(entry), **entry.load_options),
                adapter_default=entry.adapter_default,
                max_length=entry.max_length,
                devices=capacity.devices,
                device_memory=capacity.device_memory,
                fsdp_setting=capacity.fsdp_setting,
            )

    def create(
        self,
        org_id: str,
        spec: JobSpec,
        *,
        secrets_: dict[str, str] | None = None,
        project_id: int | None = None,
        hold: bool = False,
        on_create: Callable[[Session, str], None] | None = None,
        warnings: list[str] | None = None,
    ) -> Job:
        """Check what can be checked at once (400 on failure, nothing created); then the job
        waits in `validating_files` while the scheduler reads its data — or, with `hold`, in
        `created` until start(). `on_create(session, job_id)` adds rows that belong with the
        job in the same transaction."""
        spec = self.starts(org_id, spec) if self.starts is not None else spec
        try:
            return self._insert(org_id, spec, secrets_, project_id, hold, on_create, warnings)
        except BaseException:
            if self.discard_start is not None:
                self.discard_start(spec)
            raise

    def _insert(
        self,
        org_id: str,
        spec: JobSpec,
        secrets_: dict[str, str] | None,
        project_id: int | None,
        hold: bool,
        on_create: Callable[[Session, str], None] | None,
        warnings: list[str] | None,
    ) -> Job:
        self.check(spec)
        with self.db.session() as s:
            self.quotas.check_new_job(s, org_id)
            if (
                project_id is not None
                and s.scalar(sa.select(t.Project.id).where(t.Project.id == project_id, t.Project.org_id == org_id))
                is None
            ):
                raise InvalidRequest(
                    f"Project {project_id} does not exist.", param="project_id", code="project_not_found"
                )
            for param, fid in [("training_file", f) for f in spec.training_files] + (
                [("validation_file", spec.validation_file)] if spec.validation_file else []
            ):
                check_format(self._check_file(s, org_id, fid, param, spec.method.type), spec.method.type, param)
            if spec.seed is None:
                spec = spec.model_copy(update={"seed": secrets.randbelow(2**31)})
            status = JobStatus.CREATED if hold else JobStatus.VALIDATING_FILES
            row = t.Job(
                id=new_id("ftjob"),
                org_id=org_id,
                status=status.value,
                spec=spec.model_dump(mode="json"),
                created_at=now(),
                result_files=[],
                trained_steps=0,
                attempts=0,
                project_id=project_id,
            )
            s.add(row)
            s.flush()
            for k, v in spec.metadata.items():
                s.add(t.JobMetadata(job_id=row.id, key=k, value=v))
            for name, value in (secrets_ or {}).items():
                add_job_secret(s, self.secret_box, row.id, name, value)
            if on_create is not None:
                on_create(s, row.id)
            job_store.add_event(s, row.id, f"Created fine-tuning job: {row.id}")
            for message in warnings or []:  # what the dialect noticed in the request (ignored keys)
                job_store.add_event(s, row.id, message, level="warn")
            job_store.add_event(
                s, row.id, "Waiting for a start" if hold else f"Validating training file: {spec.training_file}"
            )
            return job_store.to_domain(row)

    def start(self, org_id: str, job_id: str) -> Job:
        """Move a job held in `created` on to validation (and so to the queue)."""
        with self.db.session() as s:
            row = _locked(s, org_id, job_id)
            status = JobStatus(row.status)
            if status != JobStatus.CREATED:
                done = f"has already {status.value}" if status.terminal else f"was already started ({status.value})"
                raise InvalidRequest(
                    f"Job {job_id} {done}; only a created job can be started.",
                    param="fine_tuning_job_id",
                    code="invalid_job_state",
                )
            job_store.transition(
                s,
                row,
                JobStatus.VALIDATING_FILES,
                f"Started; validating training file: {row.spec['training_files'][0]}",
            )
            return job_store.to_domain(row)

    def _check_file(self, s, org_id: str, file_id: str, param: str, method: str) -> t.File:
        row = s.scalar(
            sa.select(t.File).where(t.File.id == file_id, t.File.org_id == org_id, t.File.deleted_at.is_(None))
        )
        if row is None:
            raise InvalidRequest(f"File '{file_id}' does not exist (or was deleted).", param=param, code="invalid_file")
        purposes = TRAINING_PURPOSES.get(method, ("fine-tune",))
        if row.purpose not in purposes:
            raise InvalidRequest(
                f"File '{file_id}' has purpose '{row.purpose}'; a {method} job needs "
                f"purpose {' or '.join(repr(p) for p in purposes)}.",
                param=param,
                code="invalid_file_purpose",
            )
        if row.status == "error":
            raise InvalidRequest(
                f"File '{file_id}' failed validation: {row.status_details}", param=param, code="invalid_file"
            )
        return row

    # -- read --------------------------------------------------------------------------------
    def get(self, org_id: str, job_id: str) -> Job:
        with self.db.session() as s:
            row = job_store.get_row(s, job_id, org_id=org_id)
            if row is None:
                raise NotFound(f"No fine-tuning job found with id '{job_id}'.", param="fine_tuning_job_id")
            return job_store.to_domain(row)

    def list(
        self, org_id: str, *, after: str | None = None, limit: int = 20, metadata: dict[str, str] | None = None
    ) -> Page:
        if len(metadata or {}) > MAX_METADATA_KEYS:  # each filter is a join: a job holds no more keys
            raise InvalidRequest(
                f"At most {MAX_METADATA_KEYS} metadata filters, got {len(metadata or {})}.", param="metadata"
            )
        with self.db.session() as s:
            stmt = sa.select(t.Job).where(t.Job.org_id == org_id)
            for i, (k, v) in enumerate((metadata or {}).items()):
                md = sa.orm.aliased(t.JobMetadata, name=f"md{i}")
                stmt = stmt.join(md, sa.and_(md.job_id == t.Job.id, md.key == k, md.value == v))
            rows, more = page(s, stmt, t.Job, after=after, limit=limit)
            return Page([job_store.to_domain(r) for r in rows], more)

    def events(self, org_id: str, job_id: str, *, after: str | None = None, limit: int = 20) -> Page:
        self.get(org_id, job_id)
        with self.db.session() as s:
            stmt = sa.select(t.JobEvent).where(t.JobEvent.job_id == job_id)
            rows, more = page(s, stmt, t.JobEvent, after=after, limit=limit)
            return Page([_event(r) for r in rows], more)

    def checkpoints(self, org_id: str, job_id: str, *, after: str | None = None, limit: int = 10) -> Page:
        self.get(org_id, job_id)
        with self.db.session() as s:
            stmt = sa.select(t.Checkpoint).where(t.Checkpoint.job_id == job_id)
            rows, more = page(s, stmt, t.Checkpoint, after=after, limit=limit)
            return Page([_checkpoint(r) for r in rows], more)

    def checkpoint(self, org_id: str, job_id: str, checkpoint_id: str) -> Checkpoint:
        self.get(org_id, job_id)
        with self.db.session() as s:
            row = s.scalar(
                sa.select(t.Checkpoint).where(t.Checkpoint.id == checkpoint_id, t.Checkpoint.job_id == job_id)
            )
            if row is None:
                raise NotFound(f"Job '{job_id}' has no checkpoint '{checkpoint_id}'.", param="checkpoint_id")
            return _checkpoint(row)

    def record_promotion(self, org_id: str, job_id: str, *, promoted: bool) -> Event:
        """Note that the job's model was promoted (or demoted). Every fine-tuned model is
        servable as soon as it exists, so this records the request; it gates nothing."""
        job = self.get(org_id, job_id)
        if job.status != JobStatus.SUCCEEDED or not job.fine_tuned_model:
            raise InvalidRequest(
                f"Job {job_id} is {job.status.value}; only a job that has succeeded has a model to promote or demote.",
                param="fine_tuning_job_id",
                code="invalid_job_state",
            )
        verb = "promoted" if promoted else "demoted"
        with self.db.session() as s:
            ev = job_store.add_event(
                s,
                job_id,
                f"Model {job.fine_tuned_model} {verb}",
                data={"model": job.fine_tuned_model, "promoted": promoted},
            )
            s.flush()
            return _event(ev)

    # -- change ------------------------------------------------------------------------------
    @_retry_when_stale
    def cancel(self, org_id: str, job_id: str) -> Job:
        """Cancelled at once in the store, from any unfinished state; a running worker sees it at
        its next step and stops. Cancelling a cancelled job again answers the job as it is."""
        with self.db.session() as s:
            row = _locked(s, org_id, job_id)
            status = JobStatus(row.status)
            if status == JobStatus.CANCELLED:
                return job_store.to_domain(row)
            if status.terminal:
                raise InvalidRequest(
                    f"Job {job_id} has already {status.value}; only a job that has not finished can be cancelled.",
                    param="fine_tuning_job_id",
                    code="invalid_job_state",
                )
            job_store.transition(
                s, row, JobStatus.CANCELLED, "Fine-tuning job cancelled by request", cancel_requested_at=now()
            )
            return job_store.to_domain(row)

    @_retry_when_stale
    def pause(self, org_id: str, job_id: str) -> Job:
        """A running job saves a checkpoint at its next step and frees its worker (pausing →
        paused); a queued job is paused at once."""
        with self.db.session() as s:
            row = _locked(s, org_id, job_id)
            if method_type(row.spec or {}) == "primitives":
                # Its client drives it call by call: an idle run is released by itself (docs/tinker.md).
                raise InvalidRequest(
                    f"Job {job_id} is a Tinker training run: it can't be paused (an idle run "
                    "frees its model by itself); cancel it to end it.",
                    param="fine_tuning_job_id",
                    code="invalid_job_state",
                )
            status = JobStatus(row.status)
            if status in (JobStatus.PAUSING, JobStatus.PAUSED):
                return job_store.to_domain(row)
            if status == JobStatus.RUNNING:
                job_store.transition(s, row, JobStatus.PAUSING, "Pausing: the job saves a checkpoint at its next step")
            elif status == JobStatus.QUEUED:
                job_store.transition(s, row, JobStatus.PAUSED, "Fine-tuning job paused before it started")
            else:
                raise InvalidRequest(
                    f"Job {job_id} is {status.value}; only a queued or running job can be paused.",
                    param="fine_tuning_job_id",
                    code="invalid_job_state",
                )
            return job_store.to_domain(row)

    @_retry_when_stale
    def resume(self, org_id: str, job_id: str) -> Job:
        """A paused job is queued again; its worker continues from the checkpoint it saved."""
        with self.db.session() as s:
            row = _locked(s, org_id, job_id)
            status = JobStatus(row.status)
            if status != JobStatus.PAUSED:
                raise InvalidRequest(
                    f"Job {job_id} is {status.value}; only a paused job can be resumed.",
                    param="fine_tuning_job_id",
                    code="invalid_job_state",
                )
            where = f"step {row.resume_step}" if row.resume_step else "the start"
            job_store.transition(s, row, JobStatus.QUEUED, f"Fine-tuning job resumed; it continues from {where}")
            return job_store.to_domain(row)

    def validate_pending(self) -> int:
        """Hand every job in `validating_files` to the validation threads (job_validation.py);
        returns how many it handed over."""
        return self.validation.pending()


def _event(r: t.JobEvent) -> Event:
    return Event(
        id=r.id, job_id=r.job_id, created_at=r.created_at, level=r.level, type=r.type, message=r.message, data=r.data
    )


def _checkpoint(r: t.Checkpoint) -> Checkpoint:
    return Checkpoint(
        id=r.id,
        job_id=r.job_id,
        step=r.step,
        created_at=r.created_at,
        metrics=r.metrics,
        model_id=r.model_id,
        result_files=list(r.result_files or []),
    )


def _locked(s: Session, org_id: str, job_id: str) -> t.Job:
    """The organization's job row, locked for a status change, or NotFound."""
    row = job_store.get_row(s, job_id, org_id=org_id, lock=True)
    if row is None:
        raise NotFound(f"No fine-tuning job found with id '{job_id}'.", param="fine_tuning_job_id")
    return row
