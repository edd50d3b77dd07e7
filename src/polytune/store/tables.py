"""Tables. Every row belongs to an organization; every list pages on the integer `seq` column."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


def _seq() -> Mapped[int]:
    return mapped_column(sa.Integer, primary_key=True, autoincrement=True)


def _id() -> Mapped[str]:
    return mapped_column(sa.String(64), unique=True, index=True)


def _org() -> Mapped[str]:
    return mapped_column(sa.String(64), sa.ForeignKey("organizations.id"), index=True)


class Organization(Base):
    __tablename__ = "organizations"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)


class ApiKey(Base):
    __tablename__ = "api_keys"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    org_id: Mapped[str] = _org()
    # sha256 of the key: the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)


class File(Base):
    __tablename__ = "files"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    org_id: Mapped[str] = _org()
    filename: Mapped[str] = mapped_column(sa.String(512))
    purpose: Mapped[str] = mapped_column(sa.String(64), index=True)
    bytes: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(32))
    status_details: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    blob_key: Mapped[str] = mapped_column(sa.String(512))
    expires_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    deleted_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True, index=True)
    # What the upload check found: {"format", "n_examples", "shape"} (data/validate.py).
    data_report: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)


class Upload(Base):
    __tablename__ = "uploads"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    org_id: Mapped[str] = _org()
    filename: Mapped[str] = mapped_column(sa.String(512))
    purpose: Mapped[str] = mapped_column(sa.String(64))
    bytes: Mapped[int] = mapped_column(sa.BigInteger)
    mime_type: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    expires_at: Mapped[int] = mapped_column(sa.BigInteger)
    file_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)


class UploadPart(Base):
    __tablename__ = "upload_parts"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    upload_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("uploads.id"), index=True)
    bytes: Mapped[int] = mapped_column(sa.BigInteger)
    blob_key: Mapped[str] = mapped_column(sa.String(512))
    created_at: Mapped[int] = mapped_column(sa.BigInteger)


class Job(Base):
    __tablename__ = "jobs"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    org_id: Mapped[str] = _org()
    status: Mapped[str] = mapped_column(sa.String(32), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    started_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    finished_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    fine_tuned_model: Mapped[str | None] = mapped_column(sa.String(512), nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    result_files: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    trained_tokens: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    trained_steps: Mapped[int] = mapped_column(sa.Integer, default=0)
    total_steps: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    estimated_finish: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    # A cancel is a request the worker sees at its next step.
    cancel_requested_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    worker: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    # The project the job was filed under (SeekrFlow's integer project ids); None for most.
    project_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True, index=True)
    # The newest full trainer checkpoint (weights, optimizer, scheduler, RNG, data position) a
    # restarted worker continues from; written only after its blobs are complete.
    resume_step: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    resume_key: Mapped[str | None] = mapped_column(sa.String(512), nullable=True)
    # What validation found in the job's data: examples, tokens, long examples, billable tokens.
    data_report: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)


class JobMetadata(Base):
    """One row per metadata pair, so `metadata[k]=v` filters are an indexed join on any database."""

    __tablename__ = "job_metadata"
    seq: Mapped[int] = _seq()
    job_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("jobs.id"), index=True)
    key: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[str] = mapped_column(sa.String(512))
    __table_args__ = (sa.Index("ix_job_metadata_kv", "key", "value"),)


class JobSecret(Base):
    """Secrets given with a job (a W&B api key): kept apart from the spec, never rendered,
    encrypted with the server's secret (store/secret_box.py)."""

    __tablename__ = "job_secrets"
    seq: Mapped[int] = _seq()
    job_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("jobs.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[str] = mapped_column(sa.Text)


class OrgSecret(Base):
    """An organization's secrets set by its administrator (`polytune integrations
    set-wandb-key`): encrypted like job secrets, read only by that organization's workers."""

    __tablename__ = "org_secrets"
    seq: Mapped[int] = _seq()
    org_id: Mapped[str] = _org()
    name: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[int] = mapped_column(sa.BigInteger)
    __table_args__ = (sa.UniqueConstraint("org_id", "name", name="uq_org_secrets_org_name"),)


class JobEvent(Base):
    __tablename__ = "job_events"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    job_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("jobs.id"), index=True)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    level: Mapped[str] = mapped_column(sa.String(16))
    type: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str] = mapped_column(sa.Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    job_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("jobs.id"), index=True)
    org_id: Mapped[str] = _org()
    step: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    metrics: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    model_id: Mapped[str] = mapped_column(sa.String(512))
    # File ids of the checkpoint's weights as one archive, downloadable like any file.
    result_files: Mapped[list[Any] | None] = mapped_column(sa.JSON, nullable=True)


class Project(Base):
    """A named group of jobs. Its id is a plain integer because SeekrFlow's clients say so."""

    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = _org()
    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.String(1000))
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[int] = mapped_column(sa.BigInteger)


class Model(Base):
    """A fine-tuned model or checkpoint: its weights live in blob storage under `blob_key`."""

    __tablename__ = "models"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = mapped_column(sa.String(512), unique=True, index=True)
    org_id: Mapped[str] = _org()
    job_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("jobs.id"), index=True)
    base_model: Mapped[str] = mapped_column(sa.String(512))
    kind: Mapped[str] = mapped_column(sa.String(16))  # full | lora
    is_checkpoint: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    blob_key: Mapped[str] = mapped_column(sa.String(512))
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    deleted_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)


class IdempotencyKey(Base):
    """A create request seen with an `Idempotency-Key`: a retry gets the first answer back."""

    __tablename__ = "idempotency_keys"
    seq: Mapped[int] = _seq()
    org_id: Mapped[str] = _org()
    route: Mapped[str] = mapped_column(sa.String(64))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    # None while the first request is still being handled.
    response: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    __table_args__ = (sa.UniqueConstraint("org_id", "route", "key", name="uq_idempotency_org_route_key"),)


class Repo(Base):
    """A repository of files (Oxen.ai's clients push datasets here); `namespace/name` is
    unique within its organization."""

    __tablename__ = "repos"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    org_id: Mapped[str] = _org()
    namespace: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    is_public: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    __table_args__ = (sa.UniqueConstraint("org_id", "namespace", "name", name="uq_repos_org_ns_name"),)


class RepoCommit(Base):
    """One change to a branch; the newest commit of a branch is its head."""

    __tablename__ = "repo_commits"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    repo_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("repos.id"))
    branch: Mapped[str] = mapped_column(sa.String(200))
    parent_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    message: Mapped[str] = mapped_column(sa.Text)
    author: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[float] = mapped_column(sa.Float)
    __table_args__ = (sa.Index("ix_repo_commits_repo_branch", "repo_id", "branch"),)


class RepoFile(Base):
    """The current version of one file on one branch; its bytes are the blob at `blob_key`."""

    __tablename__ = "repo_files"
    seq: Mapped[int] = _seq()
    repo_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("repos.id"))
    branch: Mapped[str] = mapped_column(sa.String(200))
    path: Mapped[str] = mapped_column(sa.String(1024))
    blob_key: Mapped[str] = mapped_column(sa.String(512))
    bytes: Mapped[int] = mapped_column(sa.BigInteger)
    commit_id: Mapped[str] = mapped_column(sa.String(64))
    updated_at: Mapped[float] = mapped_column(sa.Float)
    __table_args__ = (sa.UniqueConstraint("repo_id", "branch", "path", name="uq_repo_files_branch_path"),)


class RepoJob(Base):
    """A job trained from (and publishing into) a repository, so a repository lists its jobs."""

    __tablename__ = "repo_jobs"
    seq: Mapped[int] = _seq()
    repo_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("repos.id"), index=True)
    job_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("jobs.id"), unique=True)


class Eval(Base):
    """An eval (OpenAI's Evals API): the shape of its items and the graders every run applies."""

    __tablename__ = "evals"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    org_id: Mapped[str] = _org()
    name: Mapped[str] = mapped_column(sa.String(512))
    data_source_config: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    testing_criteria: Mapped[list[Any]] = mapped_column(sa.JSON)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", sa.JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    deleted_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)


class EvalRun(Base):
    """One run of an eval over a data source: queued, run by the server's eval runner (the
    scheduler hands queued runs to it fairly by organization), then its counts."""

    __tablename__ = "eval_runs"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    org_id: Mapped[str] = _org()
    eval_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("evals.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(512))
    model: Mapped[str] = mapped_column(sa.String(512))
    status: Mapped[str] = mapped_column(sa.String(32), index=True)
    data_source: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", sa.JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    result_counts: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    per_testing_criteria_results: Mapped[list[Any]] = mapped_column(sa.JSON)
    per_model_usage: Mapped[list[Any]] = mapped_column(sa.JSON)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    started_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    finished_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    # A run a fine-tuning job asked for (polytune_eval on job create): it waits, queued with no
    # model, until the job succeeds and its fine-tuned model becomes the run's model.
    job_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    # {"host", "pid"} of the server running it: a run whose server is gone is queued again.
    worker: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    deleted_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)


class EvalOutputItem(Base):
    """One item of a run: the data source row, the sample the model gave, each grader's result."""

    __tablename__ = "eval_output_items"
    seq: Mapped[int] = _seq()
    id: Mapped[str] = _id()
    org_id: Mapped[str] = _org()
    run_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("eval_runs.id"), index=True)
    eval_id: Mapped[str] = mapped_column(sa.String(64))
    datasource_item_id: Mapped[int] = mapped_column(sa.Integer)
    datasource_item: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    sample: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    results: Mapped[list[Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
