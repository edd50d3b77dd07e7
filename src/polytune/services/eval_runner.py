"""Runs queued eval runs: the scheduler's pass hands them over (`dispatch`), a few threads run
them fairly by organization (one organization never holds every thread), and each run samples
its items in batches through the inference service (the backend decodes a batch's sequences
together), grades each batch with the eval's criteria and writes its output items and counts.

A cancel (or a delete) is seen between batches. A run whose server died (same host, its process
gone) is queued again by the next pass, and starts over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

import sqlalchemy as sa

from polytune.config import Settings
from polytune.domain.errors import DomainError
from polytune.domain.ids import new_id
from polytune.domain.inference import Usage
from polytune.graders import Grading, parse_grader
from polytune.graders.settings import grader_config
from polytune.scheduler import pid_alive
from polytune.services import eval_data
from polytune.services.eval_runs import EvalRunService
from polytune.services.evals import pass_threshold
from polytune.services.inference import InferenceService
from polytune.services.validation_queue import FairValidationQueue
from polytune.store import jobs as job_store
from polytune.store import tables as t
from polytune.store.db import Database, now

log = logging.getLogger(__name__)
# A run a fine-tuning job asked for waits (queued, no model) until the job has its model.
_READY = sa.or_(t.EvalRun.job_id.is_(None), t.EvalRun.model != "")


def _error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


class EvalRunner:
    def __init__(
        self,
        db: Database,
        runs: EvalRunService,
        inference: InferenceService,
        settings: Settings,
        *,
        workers: int = 2,
        batch: int | None = None,
    ):
        self.db, self.runs, self.inference, self.settings = db, runs, inference, settings
        self.batch = batch or settings.inference_max_batch
        # The queue's rotation is by organization: the same fairness dataset validation has.
        self.queue = FairValidationQueue(self._execute, workers=workers)
        self.worker = {"host": socket.gethostname(), "pid": os.getpid()}

    # -- the scheduler's pass --------------------------------------------------------------------
    def dispatch(self) -> int:
        """Requeue runs whose server died; hand every queued run to the threads."""
        with self.db.session() as s:
            for row in s.scalars(sa.select(t.EvalRun).where(t.EvalRun.status == "in_progress")):
                worker = row.worker or {}
                if worker.get("host") == self.worker["host"] and not pid_alive(int(worker.get("pid") or 0)):
                    row.status, row.worker = "queued", None
            self.runs.add_checkpoint_runs(s)
            s.flush()
            self._release_waiting(s)
            queued = s.execute(
                sa.select(t.EvalRun.id, t.EvalRun.org_id)
                .where(t.EvalRun.status == "queued", _READY)
                .order_by(t.EvalRun.seq)
                .limit(1000)
            ).all()
        return self.queue.add((r.id, r.org_id) for r in queued)

    @staticmethod
    def _release_waiting(s) -> None:
        """Runs waiting for a fine-tuning job: the job's fine-tuned model once it succeeded; a
        job that failed or was cancelled cancels its run."""
        waiting = s.execute(
            sa.select(t.EvalRun, t.Job.status, t.Job.fine_tuned_model)
            .join(t.Job, t.Job.id == t.EvalRun.job_id)
            .where(t.EvalRun.status == "queued", t.EvalRun.model == "")
        ).all()
        for run, status, model in waiting:
            if status == "succeeded" and model:
                run.model, run.data_source = model, {**run.data_source, "model": model}
                run.name = f"{model} after {run.job_id}"
            elif status in ("failed", "cancelled"):
                run.status, run.finished_at = "canceled", now()
                run.error = _error(
                    "fine_tuning_job_" + status,
                    f"The fine-tuning job {run.job_id} {status}; there is no model to evaluate.",
                )

    # -- one run ---------------------------------------------------------------------------------
    def _claim(self, run_id: str) -> bool:
        with self.db.session() as s:
            done = s.execute(
                sa.update(t.EvalRun)
                .where(t.EvalRun.id == run_id, t.EvalRun.status == "queued", _READY)
                .values(
                    status="in_progress",
                    started_at=now(),
                    worker=self.worker,
                    result_counts={"total": 0, "passed": 0, "failed": 0, "errored": 0},
                    per_testing_criteria_results=[],
                    per_model_usage=[],
                )
            )
            if not done.rowcount:  # type: ignore[attr-defined]  # an UPDATE's result counts rows
                return False
            # A run queued again after its server died starts over: what it wrote goes.
            s.execute(sa.delete(t.EvalOutputItem).where(t.EvalOutputItem.run_id == run_id))
            return True

    def _execute(self, run_id: str) -> None:
        if not self._claim(run_id):
            return  # canceled, or another server took it
        try:
            self._run(run_id)
        except DomainError as e:
            self._finish(run_id, "failed", _error(e.code or "invalid_request", e.message))
        except Exception as e:  # noqa: BLE001 - a run that breaks fails, the server goes on
            log.exception("eval run %s failed", run_id)
            self._finish(run_id, "failed", _error("internal_error", f"{type(e).__name__}: {e}"))
        finally:
            self.runs.api_key(run_id, forget=True)

    def _finish(self, run_id: str, status: str, error: dict[str, str] | None = None) -> None:
        with self.db.session() as s:
            done = s.execute(
                sa.update(t.EvalRun)
                .where(t.EvalRun.id == run_id, t.EvalRun.status == "in_progress")
                .values(status=status, error=error, finished_at=now())
            )
            run = s.scalars(sa.select(t.EvalRun).where(t.EvalRun.id == run_id)).one()
            if run.job_id and done.rowcount:  # type: ignore[attr-defined]  # an UPDATE's result counts rows
                # The job asked for it: its result is an event of the job.
                counts = run.result_counts
                rate = counts["passed"] / counts["total"] if counts["total"] else 0.0
                message = (
                    f"Eval {run.eval_id} of {run.model}: pass rate {rate:.2f} ({counts['passed']} of {counts['total']})"
                    if status == "completed"
                    else f"Eval {run.eval_id} of {run.model} {status}: {(error or {}).get('message', '')}"
                )
                job_store.add_event(
                    s,
                    run.job_id,
                    message,
                    level="info" if status == "completed" else "warn",
                    data={
                        "eval_id": run.eval_id,
                        "run_id": run.id,
                        "model": run.model,
                        "status": status,
                        "pass_rate": rate,
                        "result_counts": counts,
                        "per_testing_criteria_results": run.per_testing_criteria_results,
                    },
                )

    def _active(self, run_id: str) -> bool:
        with self.db.session() as s:
            return s.scalar(sa.select(t.EvalRun.status).where(t.EvalRun.id == run_id)) == "in_progress"

    def _run(self, run_id: str) -> None:
        with self.db.session() as s:
            run = s.scalars(sa.select(t.EvalRun).where(t.EvalRun.id == run_id)).one()
            evaluation = s.scalars(sa.select(t.Eval).where(t.Eval.id == run.eval_id)).one()
            org_id, data_source, eval_id = run.org_id, run.data_source, run.eval_id
        criteria = evaluation.testing_criteria
        # Checked again: a file may be gone, a model deleted since the run was created.
        checked = eval_data.check(
            org_id, data_source, evaluation.data_source_config, criteria, self.runs.files, self.runs.models
        )
        config = grader_config(self.settings, api_key=self.runs.api_key(run_id))
        graders = [
            parse_grader({k: v for k, v in c.items() if k != "pass_threshold"}, "testing_criteria", config)
            for c in criteria
        ]
        grading = Grading(config)
        counts = {"total": 0, "passed": 0, "failed": 0, "errored": 0}
        per_criterion = {c["name"]: {"testing_criteria": c["name"], "passed": 0, "failed": 0} for c in criteria}
        usage = {
            "model_name": checked.model or "",
            "invocation_count": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "cached_tokens": 0,
        }
        for start in range(0, len(checked.rows), self.batch):
            if not self._active(run_id):
                return  # canceled or deleted: what is written stays
            indexes = range(start, min(start + self.batch, len(checked.rows)))
            samples = (
                self._generate(org_id, checked, indexes, usage)
                if checked.kind == "completions"
                else [self._given(checked.rows[i].sample or {}) for i in indexes]
            )
            texts = [(sample["output"][0]["content"] if sample["output"] else "") for sample in samples]
            items = [checked.rows[i].item for i in indexes]
            graded = [grading.grade_batch(g, list(zip(texts, items))) for g in graders]
            rows = []
            for k, i in enumerate(indexes):
                results, status = [], "pass"
                for c, per_sample in zip(criteria, graded):
                    result = per_sample[k]
                    passed = not result.failed and not samples[k]["error"] and result.reward >= pass_threshold(c)
                    per_criterion[c["name"]]["passed" if passed else "failed"] += 1
                    entry: dict[str, Any] = {
                        "name": c["name"],
                        "type": c["type"],
                        "score": result.reward,
                        "passed": passed,
                        "sample": None,
                    }
                    if result.failed:
                        entry["errors"] = result.error_flags()
                        status = "error"
                    elif not passed and status == "pass":
                        status = "fail"
                    results.append(entry)
                if samples[k]["error"]:
                    status = "error"
                counts["total"] += 1
                counts[{"pass": "passed", "fail": "failed", "error": "errored"}[status]] += 1
                rows.append(
                    t.EvalOutputItem(
                        id=new_id("outputitem"),
                        org_id=org_id,
                        run_id=run_id,
                        eval_id=eval_id,
                        datasource_item_id=i,
                        datasource_item=items[k],
                        sample=samples[k],
                        results=results,
                        status=status,
                        created_at=now(),
                    )
                )
            with self.db.session() as s:
                s.add_all(rows)
                s.execute(
                    sa.update(t.EvalRun)
                    .where(t.EvalRun.id == run_id)
                    .values(
                        result_counts=dict(counts),
                        per_testing_criteria_results=list(per_criterion.values()),
                        per_model_usage=[dict(usage)] if checked.kind == "completions" else [],
                    )
                )
        self._finish(run_id, "completed")

    @staticmethod
    def _given(sample: dict[str, Any]) -> dict[str, Any]:
        """A jsonl row's own sample, in the shape of a generated one."""
        text = sample.get("output_text")
        output = sample.get("output")
        if text is None and isinstance(output, list) and output and isinstance(output[0], dict):
            text = output[0].get("content")
        messages = sample.get("input")
        messages = messages if isinstance(messages, list) else []
        given = [
            {"role": str(m.get("role")), "content": str(m.get("content"))} for m in messages if isinstance(m, dict)
        ]
        text = text if isinstance(text, str) else ("" if text is None else str(text))
        model = sample.get("model")
        return {
            "input": given,
            "output": [{"role": "assistant", "content": text}],
            "finish_reason": "stop",
            "model": model if isinstance(model, str) else "",
            "usage": None,
            "error": None,
        }

    def _generate(
        self, org_id: str, checked: eval_data.Checked, indexes: range, usage: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """One batch: every item's chat prompt decoded together (the backend batches concurrent
        requests); an item that cannot be sampled (too long a prompt) is that item's error."""
        assert checked.messages is not None and checked.params is not None and checked.model is not None
        params, model = checked.params, checked.model
        prepared: list[Any] = []
        for i in indexes:
            try:
                prepared.append(self.inference.prepare_chat(org_id, model, checked.messages[i], params))
            except DomainError as e:
                prepared.append(e)

        async def one(request) -> tuple[str, str, Usage | None]:
            parts, reason, used = [], "stop", None
            async for event in self.inference.run(request):
                if isinstance(event, Usage):
                    used = event
                else:
                    parts.append(event.text)
                    reason = event.finish_reason or reason
            return "".join(parts), reason, used

        async def batch() -> list[Any]:
            return await asyncio.gather(
                *(one(p) for p in prepared if not isinstance(p, DomainError)), return_exceptions=True
            )

        outcomes = iter(asyncio.run(batch()))
        samples = []
        for i, request in zip(indexes, prepared):
            sample: dict[str, Any] = {
                "input": [{"role": m.role, "content": m.content} for m in checked.messages[i]],
                "output": [],
                "finish_reason": "",
                "model": model,
                "usage": None,
                "error": None,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "seed": params.seed,
                "max_completion_tokens": params.max_tokens,
            }
            outcome = request if isinstance(request, DomainError) else next(outcomes)
            if isinstance(outcome, BaseException):
                code = getattr(outcome, "code", None) or "sampling_error"
                sample["error"] = _error(
                    code, getattr(outcome, "message", None) or f"{type(outcome).__name__}: {outcome}"
                )
            else:
                text, reason, used = outcome
                sample.update(output=[{"role": "assistant", "content": text}], finish_reason=reason)
                if used is not None:
                    sample["usage"] = {
                        "prompt_tokens": used.prompt_tokens,
                        "completion_tokens": used.completion_tokens,
                        "total_tokens": used.total_tokens,
                        "cached_tokens": 0,
                    }
                    usage["invocation_count"] += 1
                    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                        usage[key] += sample["usage"][key]
            samples.append(sample)
        return samples
