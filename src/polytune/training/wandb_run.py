"""Weights & Biases for a job: one W&B run per worker attempt, fed the job's own metrics.

W&B is a nice-to-have beside the job, never a reason for it to fail: every failure (a bad key,
the service down, a library error) becomes one warning event and the job trains on without it.
Online runs that can't reach W&B fall back to offline. Either way the run lives in the job's
folder, and the runner attaches that folder to the job as a result file.

The API key comes in through the worker's environment (WANDB_API_KEY) and is scrubbed from any
message this module writes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from polytune.domain.spec import JobSpec, WandbIntegration
from polytune.training.reporter import Reporter

log = logging.getLogger(__name__)


def run_config(spec: JobSpec) -> dict[str, Any]:
    """What the run is logged with: the resolved hyperparameters at the top level, and what
    else decides the training (base model, method, adapter, seed, data)."""
    return {
        **spec.hyperparameters.model_dump(mode="json"),
        "model": spec.model,
        "method": spec.method.type,
        "adapter": spec.adapter.kind,
        "lora": spec.adapter.lora.model_dump(mode="json") if spec.adapter.kind == "lora" else None,
        "seed": spec.seed,
        "training_files": spec.training_files,
        "validation_file": spec.validation_file,
    }


class WandbRun:
    """A started W&B run; `active` turns False at the first failure (reported once)."""

    def __init__(self, run, reporter: Reporter, api_key: str | None):
        self._run, self._reporter, self._key = run, reporter, api_key
        self.active = True

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self._call("logging metrics", lambda: self._run.log(dict(metrics), step=step))

    def finish(self, summary: dict[str, Any], *, exit_code: int = 0) -> None:
        def done() -> None:
            self._run.summary.update(summary)
            self._run.finish(exit_code=exit_code)

        self._call("finishing the run", done)
        self.active = False

    def _call(self, doing: str, fn) -> None:
        if not self.active:
            return
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - W&B must never fail the job
            self.active = False
            warn(self._reporter, f"W&B failed while {doing}; the job goes on without it: {scrub(str(e), self._key)}")


class WandbReporter:
    """The job's Reporter, with every metrics event also logged to each of the job's W&B runs
    (one per integration)."""

    def __init__(self, inner: Reporter, run: WandbRun | list[WandbRun]):
        self._inner, self._runs = inner, run if isinstance(run, list) else [run]

    def metrics(self, step: int, metrics: dict[str, float]) -> None:
        self._inner.metrics(step, metrics)
        for run in self._runs:
            run.log(step, {k: v for k, v in metrics.items() if v is not None})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def run_name(spec: JobSpec, integration: WandbIntegration, job_id: str) -> str:
    """The W&B run's display name: the integration's, else SeekrFlow's experiment_name, else the job id."""
    return integration.name or spec.extras.get("experiment_name") or job_id


def run_id(job_id: str, index: int) -> str:
    """The run id of the job's `index`-th integration; stable, so a resumed job continues it."""
    return job_id if index == 0 else f"{job_id}-{index}"


def start_run(
    spec: JobSpec,
    job_id: str,
    folder: Path,
    reporter: Reporter,
    *,
    api_key: str | None,
    mode: str,
    init_timeout: float,
    key_source: str | None = None,
    index: int = 0,
) -> WandbRun | None:
    """Start the run of the job's `index`-th W&B integration under `folder`/wandb; None (after a
    warning event) when it can't start at all. `key_source` ("job", "organization") says in
    the start event where the key came from, the only thing about the key ever shown."""
    integration = spec.integrations[index].wandb
    try:
        import wandb
    except ImportError:
        warn(reporter, "W&B logging was asked for, but the wandb library is not installed on the worker")
        return None
    folder.mkdir(parents=True, exist_ok=True)
    # W&B's caches and settings stay in the job's folder, not in a home directory shared by jobs.
    for var, sub in (("WANDB_CACHE_DIR", ".cache"), ("WANDB_CONFIG_DIR", ".config"), ("WANDB_DATA_DIR", ".data")):
        os.environ[var] = str(folder / sub)
    # wandb reports its own errors to its authors' error tracker; nothing leaves but the run.
    os.environ["WANDB_ERROR_REPORTING"] = "false"
    if api_key and index == 0:
        os.environ["WANDB_API_KEY"] = api_key  # each run also gets its own key in its settings
    if mode == "online" and not api_key:
        warn(
            reporter,
            "No W&B API key: neither the job nor its organization has one "
            "(`polytune integrations set-wandb-key --org NAME`); logging offline instead",
        )
        mode = "offline"
    run = _init(wandb, spec, index, job_id, folder, mode, init_timeout, reporter, api_key)
    if run is None and mode == "online":
        # The failed attempt still holds the run id in wandb's service: start afresh.
        try:
            wandb.teardown()
        except Exception:  # noqa: BLE001
            pass
        run = _init(wandb, spec, index, job_id, folder, "offline", init_timeout, reporter, api_key)
    if run is None:
        return None
    where = (
        f"project '{integration.project}'"
        if run.settings.mode == "online"
        else "offline, in the run directory attached to the job when it ends"
    )
    reporter.event(
        f"Logging to W&B: {where}",
        data={
            "project": integration.project,
            "run_id": run.id,
            "name": run.name,
            "mode": run.settings.mode,
            "api_key_from": key_source,
        },
    )
    return WandbRun(run, reporter, api_key)


def _init(
    wandb,
    spec: JobSpec,
    index: int,
    job_id: str,
    folder: Path,
    mode: str,
    init_timeout: float,
    reporter: Reporter,
    api_key: str | None,
):
    integration = spec.integrations[index].wandb
    try:
        return wandb.init(
            project=integration.project,
            entity=integration.entity,
            name=run_name(spec, integration, job_id),
            tags=integration.tags or None,
            config=run_config(spec),
            dir=str(folder),
            mode=mode,
            # Online, a resumed job (after a pause or a lost worker) continues the same run.
            id=run_id(job_id, index),
            resume="allow" if mode == "online" else None,
            job_type="fine-tune",
            # One run per integration, all open at once in this process.
            reinit="create_new",
            settings=wandb.Settings(
                silent=True,
                console="off",
                x_disable_stats=True,
                disable_git=True,
                init_timeout=init_timeout,
                **({"api_key": api_key} if api_key else {}),
            ),
        )
    except Exception as e:  # noqa: BLE001 - W&B must never fail the job
        then = "; logging offline instead" if mode == "online" else "; the job goes on without it"
        warn(reporter, f"W&B could not start a run ({mode}): {scrub(str(e), api_key)}{then}")
        return None


def scrub(text: str, secret: str | None) -> str:
    text = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return text.replace(secret, "[redacted]") if secret else text


def warn(reporter: Reporter, message: str) -> None:
    log.warning("%s", message)
    reporter.event(message, level="warn")
