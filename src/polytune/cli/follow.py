"""`polytune jobs follow ID`: a live progress bar and the job's events as they come, until the
job ends (or pauses); the exit code is its outcome, so scripts can branch on it."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from polytune.cli.api import EXIT_REQUEST_FAILED, err, out, requesting, when

# The job's outcome as the process's exit code (2 is a usage error, 5 a failed request).
EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 3, "paused": 4}


def status_of(job) -> str:
    """polytune's own status: `status` is mapped into OpenAI's enum (a paused job reads
    "queued" there), `polytune_status` keeps pausing and paused apart."""
    return (job.model_extra or {}).get("polytune_status") or job.status


LEVEL_STYLE = {"warn": "yellow", "error": "red"}


def duration(job) -> str | None:
    if not job.created_at:
        return None
    seconds = int((job.finished_at or time.time()) - job.created_at)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _Events:
    """The job's events not shown yet, oldest first (the API lists them newest first)."""

    def __init__(self, api, job_id: str):
        self.api, self.job_id = api, job_id
        self.seen: set[str] = set()
        self.loss: float | None = None

    def new(self) -> list[Any]:
        fresh: list[Any] = []
        after = None
        while True:
            page = self.api.fine_tuning.jobs.list_events(self.job_id, limit=100, **({"after": after} if after else {}))
            unseen = [e for e in page.data if e.id not in self.seen]
            fresh.extend(unseen)
            if len(unseen) < len(page.data) or not page.has_more or not page.data:
                break
            after = page.data[-1].id
        fresh.reverse()
        for e in fresh:
            self.seen.add(e.id)
            if e.type == "metrics" and (e.data or {}).get("train_loss") is not None:
                self.loss = e.data["train_loss"]
        return fresh


def _line(e) -> str:
    style = LEVEL_STYLE.get(e.level)
    text = f"{when(e.created_at)}  {e.message}"
    return f"[{style}]{text}[/{style}]" if style else text


def follow(api, job_id: str, *, interval: float = 1.0) -> int:
    events = _Events(api, job_id)
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epoch {task.fields[epoch]}  loss {task.fields[loss]}  {task.fields[speed]}"),
        TimeRemainingColumn(),
    ]
    # Tokens per second: the job's billable tokens spread evenly over its steps, times the steps
    # per second seen here (the API reports no running token count).
    seen_steps: list[tuple[float, int]] = []
    with requesting(), Progress(*columns, console=out, transient=False) as bar:
        task = bar.add_task(job_id, total=None, epoch="-", loss="-", speed="")
        while True:
            job = api.fine_tuning.jobs.retrieve(job_id)
            for e in events.new():
                bar.console.print(_line(e), markup=True, highlight=False)
            extra = job.model_extra or {}
            steps, total = extra.get("trained_steps") or 0, extra.get("total_steps")
            seen_steps = (seen_steps + [(time.monotonic(), steps)])[-30:]
            n_epochs = job.hyperparameters.n_epochs if job.hyperparameters else None
            epoch = f"{steps / total * n_epochs:.2f}" if total and isinstance(n_epochs, int) else "-"
            speed = ""
            (t0, s0), (t1, s1) = seen_steps[0], seen_steps[-1]
            if total and job.trained_tokens and s1 > s0 and t1 > t0:
                speed = f"{job.trained_tokens / total * (s1 - s0) / (t1 - t0):,.0f} tok/s"
            bar.update(
                task,
                description=f"{job_id} {status_of(job)}",
                total=total,
                completed=steps,
                epoch=epoch,
                loss="-" if events.loss is None else f"{events.loss:.4f}",
                speed=speed,
            )
            if status_of(job) in EXIT_CODES:
                break
            time.sleep(interval)
    if job.status == "failed" and job.error:
        err.print(f"[red]failed: {job.error.message}[/red]")
    elif job.status == "succeeded":
        out.print(f"fine-tuned model: {job.fine_tuned_model}")
    return EXIT_CODES.get(status_of(job), EXIT_REQUEST_FAILED)
