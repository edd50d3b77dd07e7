"""Models a caller can see: the catalog's base models and its organization's fine-tuned ones."""

from __future__ import annotations

import re

import sqlalchemy as sa

from polytune.domain.errors import InvalidRequest, NotFound
from polytune.domain.inference import ServedModel
from polytune.domain.job import JobStatus
from polytune.domain.names import model_name
from polytune.domain.objects import ModelInfo
from polytune.domain.spec import JobSpec
from polytune.store import tables as t
from polytune.store.blobs import BlobStore
from polytune.store.db import Database, now
from polytune.catalog.models import Catalog

BASE_OWNER = "polytune"
_CHECKPOINT_SUFFIX = re.compile(r":ckpt-step-\d+$")


def _info(row: t.Model, types: dict[str, str]) -> ModelInfo:
    return ModelInfo(
        id=row.id,
        created=row.created_at,
        owned_by=row.org_id,
        base_model=row.base_model,
        job_id=row.job_id,
        kind=row.kind,
        is_checkpoint=row.is_checkpoint,
        model_type=types.get(row.base_model or "", "chat"),
    )


def _model_type(kind: str) -> str:
    """The catalog's kind of model (text | image) as the API names what it serves."""
    return "image" if kind == "image" else "chat"


def _not_found(model_id: str) -> NotFound:
    return NotFound(
        f"The model '{model_id}' does not exist or you do not have access to it.", param="model", code="model_not_found"
    )


class ModelService:
    def __init__(self, db: Database, catalog: Catalog, created: int, blobs: BlobStore | None = None):
        self.db, self.catalog, self.created, self.blobs = db, catalog, created, blobs

    def _base(self) -> list[ModelInfo]:
        return [
            ModelInfo(id=e.name, created=self.created, owned_by=BASE_OWNER, model_type=_model_type(e.kind))
            for e in self.catalog.list()
        ]

    def _types(self) -> dict[str, str]:
        # A base model taken out of the catalog leaves its fine-tunes "chat": text is the default.
        return {e.name: _model_type(e.kind) for e in self.catalog.list()}

    def _row(self, s, org_id: str, model_id: str) -> t.Model | None:
        return s.scalar(
            sa.select(t.Model).where(t.Model.id == model_id, t.Model.org_id == org_id, t.Model.deleted_at.is_(None))
        )

    def list(self, org_id: str) -> list[ModelInfo]:
        with self.db.session() as s:
            rows = s.scalars(
                sa.select(t.Model).where(t.Model.org_id == org_id, t.Model.deleted_at.is_(None)).order_by(t.Model.seq)
            )
            types = self._types()
            return self._base() + [_info(r, types) for r in rows]

    def get(self, org_id: str, model_id: str) -> ModelInfo:
        for base in self._base():
            if base.id == model_id:
                return base
        with self.db.session() as s:
            row = self._row(s, org_id, model_id)
        if row is None:
            raise _not_found(model_id)
        return _info(row, self._types())

    def delete(self, org_id: str, model_id: str) -> ServedModel:
        """Delete a fine-tuned model or checkpoint: its weights leave storage; its job keeps its
        history (fine_tuned_model, checkpoints) but the id no longer resolves."""
        if model_id in {e.name for e in self.catalog.list()}:
            raise InvalidRequest(
                f"'{model_id}' is a base model of the catalog; only fine-tuned models can be deleted.",
                param="model",
                code="model_not_deletable",
            )
        with self.db.session() as s:
            row = self._row(s, org_id, model_id)
            if row is None:
                raise _not_found(model_id)
            row.deleted_at = now()
            served = ServedModel(
                id=row.id,
                kind=row.kind,  # type: ignore[arg-type]  # the column holds full|lora
                base_model=row.base_model,
                blob_key=row.blob_key,
            )
            # A job's final model is its last epoch checkpoint's folder when they are the same
            # weights (stored once): the folder goes only with the last model that uses it.
            shared = s.scalar(
                sa.select(sa.func.count())
                .select_from(t.Model)
                .where(t.Model.blob_key == row.blob_key, t.Model.id != row.id, t.Model.deleted_at.is_(None))
            )
        if self.blobs is not None and served.blob_key and not shared:
            self.blobs.delete(served.blob_key)
            self.blobs.delete(f"exports/{served.blob_key}")  # its downloads (services/model_export.py)
        return served

    def resolve(self, org_id: str, model_id: str) -> ServedModel:
        """What to serve for `model_id`; a model whose job has not finished is a clear 400."""
        if model_id in {e.name for e in self.catalog.list()}:
            return ServedModel(id=model_id, kind="base", base_model=model_id)
        with self.db.session() as s:
            row = self._row(s, org_id, model_id)
            if row is not None:
                return ServedModel(
                    id=row.id,
                    kind=row.kind,  # type: ignore[arg-type]  # the column holds full|lora
                    base_model=row.base_model,
                    blob_key=row.blob_key,
                )
            job = self._job_for(s, org_id, model_id)
        if job is not None:
            status = JobStatus(job.status)
            if not status.terminal:
                raise InvalidRequest(
                    f"The model '{model_id}' is not ready: its fine-tuning job {job.id} is {status.value}. "
                    "It can be used once the job has succeeded (checkpoints as soon as they are listed).",
                    param="model",
                    code="model_not_ready",
                )
            if status != JobStatus.SUCCEEDED:
                raise NotFound(
                    f"The model '{model_id}' does not exist: its fine-tuning job {job.id} {status.value}.",
                    param="model",
                    code="model_not_found",
                )
            if model_id == job.id and job.fine_tuned_model:
                raise NotFound(
                    f"'{model_id}' is a fine-tuning job; its model is '{job.fine_tuned_model}'.",
                    param="model",
                    code="model_not_found",
                )
        raise _not_found(model_id)

    def _job_for(self, s, org_id: str, model_id: str) -> t.Job | None:
        """The job that will produce `model_id` (its id, or the name its model will get)."""
        if model_id.startswith("ftjob-"):
            return s.scalar(sa.select(t.Job).where(t.Job.id == model_id, t.Job.org_id == org_id))
        name = _CHECKPOINT_SUFFIX.sub("", model_id)
        if not name.startswith("ft:"):
            return None
        short = name.rsplit(":", 1)[-1]
        if not short.isalnum():
            return None
        org_name = s.scalar(sa.select(t.Organization.name).where(t.Organization.id == org_id)) or org_id
        for job in s.scalars(sa.select(t.Job).where(t.Job.org_id == org_id, t.Job.id.like(f"ftjob-{short}%"))):
            if model_name(JobSpec.model_validate(job.spec), org_name, job.id) == name:
                return job
        return None
