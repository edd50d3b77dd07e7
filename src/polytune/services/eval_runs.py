"""Eval runs as a use case: create (the data source checked in full, then queued), read, list,
cancel, delete, and the output items a run wrote. The runs themselves are executed by
eval_runner.py, which the scheduler feeds."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from polytune.domain.errors import InvalidRequest, NotFound
from polytune.domain.ids import new_id
from polytune.domain.objects import Page
from polytune.services import eval_data
from polytune.services.evals import EvalService, check_metadata
from polytune.services.files import FileService
from polytune.services.models import ModelService
from polytune.store import tables as t
from polytune.store.db import Database, now
from polytune.store.pagination import page

TERMINAL = ("completed", "failed", "canceled")
OUTPUT_STATUSES = ("pass", "fail", "error")
EMPTY_COUNTS = {"total": 0, "passed": 0, "failed": 0, "errored": 0}


def run_record(row: t.EvalRun) -> dict[str, Any]:
    return {
        "id": row.id,
        "eval_id": row.eval_id,
        "name": row.name,
        "model": row.model,
        "status": row.status,
        "created_at": row.created_at,
        "data_source": row.data_source,
        "metadata": row.metadata_,
        "error": row.error,
        "result_counts": row.result_counts,
        "per_testing_criteria_results": row.per_testing_criteria_results,
        "per_model_usage": row.per_model_usage,
    }


def item_record(row: t.EvalOutputItem) -> dict[str, Any]:
    return {
        "id": row.id,
        "run_id": row.run_id,
        "eval_id": row.eval_id,
        "created_at": row.created_at,
        "datasource_item_id": row.datasource_item_id,
        "datasource_item": row.datasource_item,
        "sample": row.sample,
        "results": row.results,
        "status": row.status,
    }


@dataclass(frozen=True)
class AfterJob:
    """A checked polytune_eval: the eval, its data source (no model), and whether each
    checkpoint of the job is evaluated too."""

    eval_id: str
    data_source: dict[str, Any]
    each_checkpoint: bool = False


class EvalRunService:
    def __init__(self, db: Database, evals: EvalService, files: FileService, models: ModelService):
        self.db, self.evals, self.files, self.models = db, evals, files, models
        # A run's model graders call this server's API with the key that created the run; kept in
        # memory only (never stored), so after a restart they answer model_grader_server_error.
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()
        # Set by the app when it runs a scheduler: wakes the runner up at once.
        self.on_queued: Any = None
        # Set by the app: the catalog model a job named by its `model` trains on (a checkpoint's
        # base model: services/checkpoint_starts.py), which stands in when a job's eval is checked.
        self.base_model: Callable[[str, str], str] | None = None

    def create(
        self,
        org_id: str,
        eval_id: str,
        *,
        data_source: Any,
        name: str | None = None,
        metadata: Any = None,
        api_key: str | None = None,
    ) -> dict[str, Any]:
        evaluation = self.evals.get(org_id, eval_id)
        checked = eval_data.check(
            org_id,
            data_source,
            evaluation["data_source_config"],
            evaluation["testing_criteria"],
            self.files,
            self.models,
        )
        model = checked.model or ""
        run_id = new_id("evalrun")
        row = t.EvalRun(
            id=run_id,
            org_id=org_id,
            eval_id=eval_id,
            name=name or f"{model or 'jsonl'} run",
            model=model,
            status="queued",
            data_source=data_source,
            metadata_=check_metadata(metadata),
            error=None,
            result_counts=dict(EMPTY_COUNTS),
            per_testing_criteria_results=[],
            per_model_usage=[],
            created_at=now(),
        )
        with self.db.session() as s:
            s.add(row)
        if api_key:
            with self._lock:
                self._keys[run_id] = api_key
        if self.on_queued is not None:
            self.on_queued()
        return run_record(row)

    # -- a run after a fine-tuning job (polytune's extension on job create) ---------------------
    def check_after_job(self, org_id: str, request: Any, model: str, *, where: str = "polytune_eval") -> AfterJob:
        """`{"eval_id", "data_source", "checkpoints"}`: the eval exists and the `completions` data source (its
        model left out: the job's fine-tuned model fills it) is sound, checked with the catalog
        model the job trains on standing in (for a job started from a checkpoint, the checkpoint's
        base model: a Tinker training state is no served model, and a checkpoint the organization
        lacks is the job's 404 naming `model`, not an error of the eval). Params are named under
        `where` (the field's path in the dialect's body)."""
        base_model = self.base_model(org_id, model) if self.base_model is not None else model
        if not isinstance(request, dict) or not isinstance(request.get("eval_id"), str):
            raise InvalidRequest(
                f'{where} must be {{"eval_id": ..., "data_source": {{...}}}}.', param=f"{where}.eval_id"
            )
        unknown = sorted(set(request) - {"eval_id", "data_source", "checkpoints"})
        if unknown:
            raise InvalidRequest(
                f"Unknown parameter: '{where}.{unknown[0]}'.", param=f"{where}.{unknown[0]}", code="unknown_parameter"
            )
        if not isinstance(request.get("checkpoints", False), bool):
            raise InvalidRequest(f"{where}.checkpoints must be true or false.", param=f"{where}.checkpoints")
        try:
            evaluation = self.evals.get(org_id, request["eval_id"])
        except NotFound as e:
            raise InvalidRequest(e.message, param=f"{where}.eval_id", code="eval_not_found") from None
        data_source = request.get("data_source")
        if not isinstance(data_source, dict) or data_source.get("type") != "completions" or "model" in data_source:
            raise InvalidRequest(
                f"{where}.data_source must be a 'completions' data source without a model "
                "(the fine-tuned model is sampled).",
                param=f"{where}.data_source",
            )
        try:
            eval_data.check(
                org_id,
                {**data_source, "model": base_model},
                evaluation["data_source_config"],
                evaluation["testing_criteria"],
                self.files,
                self.models,
            )
        except InvalidRequest as e:
            e.param = f"{where}.{e.param}" if e.param else where
            raise
        return AfterJob(evaluation["id"], data_source, bool(request.get("checkpoints")))

    def add_after_job(self, s, org_id: str, after: AfterJob, job_id: str) -> None:
        """In the job's own transaction: the run, waiting (queued, no model yet) for the job."""
        eval_id, data_source = after.eval_id, after.data_source
        s.add(
            t.EvalRun(
                id=new_id("evalrun"),
                org_id=org_id,
                eval_id=eval_id,
                name=f"after {job_id}",
                model="",
                status="queued",
                data_source=data_source,
                metadata_={
                    "fine_tuning_job_id": job_id,
                    **({"each_checkpoint": "true"} if after.each_checkpoint else {}),
                },
                error=None,
                result_counts=dict(EMPTY_COUNTS),
                per_testing_criteria_results=[],
                per_model_usage=[],
                created_at=now(),
                job_id=job_id,
            )
        )

    @staticmethod
    def add_checkpoint_runs(s) -> None:
        """For each run waiting for a job with `checkpoints: true`: a run of every checkpoint the
        job has saved that has none yet, queued with the checkpoint's model (the scheduler's pass
        calls this, so a checkpoint is evaluated while the job trains on)."""
        waiting = s.scalars(sa.select(t.EvalRun).where(t.EvalRun.status == "queued", t.EvalRun.model == ""))
        for run in [r for r in waiting if r.job_id and (r.metadata_ or {}).get("each_checkpoint") == "true"]:
            done = {
                (r.metadata_ or {}).get("fine_tuning_checkpoint_id")
                for r in s.scalars(sa.select(t.EvalRun).where(t.EvalRun.job_id == run.job_id))
            }
            checkpoints = s.scalars(
                sa.select(t.Checkpoint).where(t.Checkpoint.job_id == run.job_id).order_by(t.Checkpoint.step)
            )
            for ckpt in [c for c in checkpoints if c.id not in done]:
                s.add(
                    t.EvalRun(
                        id=new_id("evalrun"),
                        org_id=run.org_id,
                        eval_id=run.eval_id,
                        name=f"{ckpt.model_id} (step {ckpt.step}) of {run.job_id}",
                        model=ckpt.model_id,
                        status="queued",
                        data_source={**run.data_source, "model": ckpt.model_id},
                        metadata_={"fine_tuning_job_id": run.job_id, "fine_tuning_checkpoint_id": ckpt.id},
                        error=None,
                        result_counts=dict(EMPTY_COUNTS),
                        per_testing_criteria_results=[],
                        per_model_usage=[],
                        created_at=now(),
                        job_id=run.job_id,
                    )
                )

    def api_key(self, run_id: str, *, forget: bool = False) -> str | None:
        with self._lock:
            return self._keys.pop(run_id, None) if forget else self._keys.get(run_id)

    def _row(self, s, org_id: str, eval_id: str, run_id: str) -> t.EvalRun:
        self.evals.row(s, org_id, eval_id)
        row = s.scalar(
            sa.select(t.EvalRun).where(
                t.EvalRun.id == run_id,
                t.EvalRun.eval_id == eval_id,
                t.EvalRun.org_id == org_id,
                t.EvalRun.deleted_at.is_(None),
            )
        )
        if row is None:
            raise NotFound(f"No run with id '{run_id}' in eval '{eval_id}'.", param="run_id", code="run_not_found")
        return row

    def get(self, org_id: str, eval_id: str, run_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            return run_record(self._row(s, org_id, eval_id, run_id))

    def list(self, org_id: str, eval_id: str, *, after: str | None, limit: int, order: str, status: str | None) -> Page:
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be 'asc' or 'desc'.", param="order")
        if status is not None and status not in ("queued", "in_progress", *TERMINAL):
            raise InvalidRequest(
                "status must be one of queued, in_progress, completed, canceled, failed.", param="status"
            )
        with self.db.session() as s:
            self.evals.row(s, org_id, eval_id)
            stmt = sa.select(t.EvalRun).where(
                t.EvalRun.eval_id == eval_id, t.EvalRun.org_id == org_id, t.EvalRun.deleted_at.is_(None)
            )
            if status:
                stmt = stmt.where(t.EvalRun.status == status)
            rows, more = page(s, stmt, t.EvalRun, after=after, limit=limit, order=order)  # type: ignore[arg-type]
            return Page(data=[run_record(r) for r in rows], has_more=more)

    def cancel(self, org_id: str, eval_id: str, run_id: str) -> dict[str, Any]:
        """A queued run ends at once; a running one at the end of the batch it is generating."""
        with self.db.session() as s:
            row = self._row(s, org_id, eval_id, run_id)
            if row.status in TERMINAL:
                raise InvalidRequest(f"The run is already {row.status}.", param="run_id", code="run_not_cancellable")
            s.execute(
                sa.update(t.EvalRun)
                .where(t.EvalRun.id == run_id, t.EvalRun.status.notin_(TERMINAL))
                .values(status="canceled", finished_at=now())
            )
            s.refresh(row)
            record = run_record(row)
        self.api_key(run_id, forget=True)
        return record

    def delete(self, org_id: str, eval_id: str, run_id: str) -> str:
        """Deleting a running run cancels it too."""
        with self.db.session() as s:
            row = self._row(s, org_id, eval_id, run_id)
            row.deleted_at = now()
            if row.status not in TERMINAL:
                row.status, row.finished_at = "canceled", now()
        self.api_key(run_id, forget=True)
        return run_id

    # -- output items ----------------------------------------------------------------------------
    def items(
        self, org_id: str, eval_id: str, run_id: str, *, after: str | None, limit: int, order: str, status: str | None
    ) -> Page:
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be 'asc' or 'desc'.", param="order")
        if status is not None and status not in ("pass", "fail"):
            raise InvalidRequest("status must be 'pass' or 'fail'.", param="status")
        with self.db.session() as s:
            self._row(s, org_id, eval_id, run_id)
            stmt = sa.select(t.EvalOutputItem).where(t.EvalOutputItem.run_id == run_id)
            if status:
                stmt = stmt.where(t.EvalOutputItem.status == status)
            rows, more = page(s, stmt, t.EvalOutputItem, after=after, limit=limit, order=order)  # type: ignore[arg-type]
            return Page(data=[item_record(r) for r in rows], has_more=more)

    def item(self, org_id: str, eval_id: str, run_id: str, item_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            self._row(s, org_id, eval_id, run_id)
            row = s.scalar(
                sa.select(t.EvalOutputItem).where(t.EvalOutputItem.id == item_id, t.EvalOutputItem.run_id == run_id)
            )
            if row is None:
                raise NotFound(
                    f"No output item with id '{item_id}' in run '{run_id}'.",
                    param="output_item_id",
                    code="output_item_not_found",
                )
            return item_record(row)
