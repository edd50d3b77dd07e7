"""Training runs of the primitives API (Tinker): each is a job of method `primitives` in the store
(listed, cancelled and counted like any job), with its model resident in a worker
(executors/primitives.py) from creation until it is cancelled or unloaded.

Checkpoints live under the data dir as peft adapter folders, named by Tinker paths:
tinker://<job id>/weights/<name> (adapter and optimizer state) and
tinker://<job id>/sampler_weights/<name> (the adapter alone).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
import os
import re
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from polytune.catalog.models import Catalog
from polytune.domain.errors import InvalidRequest, NotFound
from polytune.domain.ids import new_id
from polytune.domain.job import JobStatus
from polytune.domain.primitives import LORA_ALPHA, LoraSettings
from polytune.domain.spec import AdapterSpec, JobSpec, LoraSpec, method_type
from polytune.executors.primitives import Call, PrimitiveWorker
from polytune.services.checkpoint_starts import job_adapter
from polytune.services.checkpoint_urls import CheckpointUrls
from polytune.store import jobs as job_store
from polytune.store import tables as t
from polytune.store.blobs import BlobStore
from polytune.store.db import Database, now

log = logging.getLogger("polytune.primitives")

_PATH = re.compile(
    r"tinker://(?P<job>[A-Za-z0-9_-]+)/(?P<kind>weights|sampler_weights|external_weights)/(?P<name>[A-Za-z0-9_.-]+)"
)
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")


@dataclass
class Run:
    model_id: str
    job_id: str
    org_id: str
    base_model: str
    base_dir: str
    lora: LoraSettings
    worker: PrimitiveWorker
    steps: int = 0
    last_call: float = field(default_factory=time.monotonic)
    released: bool = False  # idle: its state saved and its model freed until the next call
    step_loss: float = 0.0  # summed over the forward_backward calls since the last optimizer step
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    adapter_dir: Path | None = None  # the saved adapter it started from (its peft config is the run's)


class PrimitiveRuns:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        data_dir: Path,
        sweep_interval: float = 1.0,
        idle_seconds: float = 0.0,
        blobs: BlobStore | None = None,
    ):
        self.db, self.catalog, self.idle_seconds, self.blobs = db, catalog, idle_seconds, blobs
        self.root = Path(data_dir) / "primitives"
        self.urls = CheckpointUrls(self.root)
        self._runs: dict[str, Run] = {}
        self._ended: dict[str, str] = {}  # model id -> org id of runs that were cancelled or unloaded
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper = threading.Thread(
            target=self._sweep, args=(sweep_interval,), name="polytune-primitives-sweep", daemon=True
        )
        self._sweeper.start()

    # -- runs ----------------------------------------------------------------------------------
    def create(
        self,
        org_id: str,
        model_id: str,
        base_model: str,
        lora: LoraSettings,
        first_seq: int = 1,
        adapter_dir: Path | None = None,
    ) -> Run:
        """A job of method `primitives`, running from now on, and its worker loading the model."""
        entry = self.catalog.get(base_model)
        if entry.kind != "text":
            raise InvalidRequest(
                f"'{base_model}' is an image model; training runs need a text model.", param="base_model"
            )
        if not 1 <= lora.rank <= 512:
            raise InvalidRequest("lora_config.rank must be between 1 and 512.", param="lora_config.rank")
        base_dir = str(self.catalog.resolve_path(entry))
        with self._lock:
            if model_id in self._runs:
                raise InvalidRequest(f"Training run '{model_id}' already exists.", param="model_seq_id")
        spec = JobSpec(
            model=base_model,
            method="primitives",
            training_files=[],
            adapter=AdapterSpec(kind="lora", lora=LoraSpec(r=lora.rank, alpha=LORA_ALPHA)),
            seed=lora.seed,
            extras={
                "tinker_model_id": model_id,
                "lora": {
                    "train_mlp": lora.train_mlp,
                    "train_attn": lora.train_attn,
                    "train_unembed": lora.train_unembed,
                },
            },
        )
        job_id = new_id("ftjob")
        with self.db.session() as s:
            # Running at once, on this server: no queue (the worker is a thread here); the
            # scheduler sees its worker alive through `pid` and never claims it.
            s.add(
                t.Job(
                    id=job_id,
                    org_id=org_id,
                    status=JobStatus.RUNNING.value,
                    spec=spec.model_dump(mode="json"),
                    created_at=now(),
                    started_at=now(),
                    worker={"host": socket.gethostname(), "pid": os.getpid(), "kind": "primitives"},
                    trained_steps=0,
                )
            )
            job_store.add_event(
                s,
                job_id,
                f"Training run {model_id} started on {base_model} (LoRA rank "
                f"{lora.rank}); its model stays loaded between calls",
            )
        run = Run(
            model_id,
            job_id,
            org_id,
            base_model,
            base_dir,
            lora,
            PrimitiveWorker(job_id, base_dir, base_model, lora, first_seq=first_seq, adapter_dir=adapter_dir),
            adapter_dir=adapter_dir,
        )
        with self._lock:
            self._runs[model_id] = run
        return run

    def get(self, org_id: str, model_id: str) -> Run:
        with self._lock:
            run = self._runs.get(model_id)
            ended = self._ended.get(model_id) == org_id
        if ended or (run is not None and run.org_id == org_id and run.closed):
            raise InvalidRequest(
                f"Training run '{model_id}' has ended (cancelled or unloaded).",
                param="model_id",
                code="invalid_job_state",
            )
        if run is None or run.org_id != org_id:
            raise NotFound(f"No training run '{model_id}'.", param="model_id", code="model_not_found")
        with run.lock:
            run.last_call = time.monotonic()
            if run.released:
                self._reload(run)
        return run

    # -- idle release --------------------------------------------------------------------------
    def _idle_folder(self, run: Run) -> Path:
        return self.root / run.job_id / "idle"

    def _release(self, run: Run) -> None:
        """Save the run's whole state (adapter and optimizer), then free its model."""
        with run.lock:
            if run.released or run.closed or time.monotonic() - run.last_call < self.idle_seconds:
                return
            folder = self._idle_folder(run)
            folder.mkdir(parents=True, exist_ok=True)
            run.worker.submit(lambda model: model.save_state(folder)).result()
            run.worker.close()
            run.released = True
        with self.db.session() as s:
            job_store.add_event(
                s,
                run.job_id,
                f"Idle for {self.idle_seconds:g} s: state saved, model released (it loads again at the next call)",
            )

    def _reload(self, run: Run) -> None:
        """Under run.lock: a new worker continues from the saved state and the same seq_id."""
        folder = self._idle_folder(run)
        worker = PrimitiveWorker(
            run.job_id,
            run.base_dir,
            run.base_model,
            run.lora,
            first_seq=run.worker.next_seq,
            adapter_dir=run.adapter_dir,
        )
        worker.submit(lambda model: model.load_state(folder, optimizer=True))
        run.worker, run.released = worker, False
        with self.db.session() as s:
            job_store.add_event(s, run.job_id, "Called again: model loaded back from its saved state")

    def loaded_ids(self, org_id: str, prefix: str) -> list[str]:
        """The model ids of an organization's live runs that start with `prefix` (a session's)."""
        with self._lock:
            return [m for m, run in self._runs.items() if run.org_id == org_id and m.startswith(prefix)]

    def submit(self, org_id: str, model_id: str, call: Call, seq_id: int | None) -> Future:
        run = self.get(org_id, model_id)
        return run.worker.submit(call, seq_id)

    def record_step(self, run: Run, metrics: dict[str, float]) -> None:
        """An optimizer step: the job's trained_steps and a metrics event (the dashboard's loss)."""
        with run.lock:
            run.steps += 1
            step = run.steps
        with self.db.session() as s:
            s.execute(sa.update(t.Job).where(t.Job.id == run.job_id).values(trained_steps=step))
            parts = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            job_store.add_event(s, run.job_id, f"Step {step}: {parts}", type="metrics", data={"step": step, **metrics})

    def unload(self, org_id: str, model_id: str) -> Run:
        """The run's job succeeds and its worker frees the model."""
        run = self.get(org_id, model_id)
        with self.db.session() as s:
            row = job_store.get_row(s, run.job_id, lock=True)
            if row is not None and row.status == JobStatus.RUNNING.value:
                job_store.transition(s, row, JobStatus.SUCCEEDED, "Training run unloaded by its client")
        self._close(run)
        return run

    def _close(self, run: Run) -> None:
        run.closed = True
        run.worker.close()
        with self._lock:
            self._runs.pop(run.model_id, None)
            self._ended[run.model_id] = run.org_id

    def _sweep(self, interval: float) -> None:
        """A run whose job ended from any API (a cancel) frees its worker."""
        while not self._stop.wait(interval):
            with self._lock:
                runs = list(self._runs.values())
            if not runs:
                continue
            try:
                with self.db.session() as s:
                    ended = set(
                        s.scalars(
                            sa.select(t.Job.id).where(
                                t.Job.id.in_([r.job_id for r in runs]), t.Job.status != JobStatus.RUNNING.value
                            )
                        )
                    )
            except Exception:  # noqa: BLE001 - the next sweep tries again
                log.exception("primitives sweep failed")
                continue
            for run in runs:
                if run.job_id in ended:
                    log.info("training run %s ended (job %s); freeing its model", run.model_id, run.job_id)
                    self._close(run)
                elif self.idle_seconds and not run.released and time.monotonic() - run.last_call >= self.idle_seconds:
                    try:
                        self._release(run)
                    except Exception:  # noqa: BLE001 - the run stays loaded; the next sweep tries again
                        log.exception("releasing idle training run %s failed", run.model_id)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.closed = True
            run.worker.close()

    # -- checkpoints ---------------------------------------------------------------------------
    def new_checkpoint(self, run: Run, kind: str, name: str | None) -> tuple[str, Path]:
        name = name or f"{kind}-{int(time.time() * 1000)}"
        if not _NAME.fullmatch(name):
            raise InvalidRequest(f"Invalid checkpoint name '{name}': letters, digits, '_', '.', '-'.", param="path")
        folder = self.root / run.job_id / kind / name
        return f"tinker://{run.job_id}/{kind}/{name}", folder

    def publish_sampler(self, run: Run, path: str, folder: Path) -> None:
        """Sampler weights become a fine-tuned model of the organization named by their Tinker
        path: listed by /v1/models and served at /v1/chat/completions like a job's checkpoint."""
        if self.blobs is None:
            return
        # A fresh key each save: a name saved again must not be served from the old cached copy.
        key = f"models/{run.job_id}/sampler_weights/{folder.name}-{new_id('w', 8)}"
        self.blobs.put_dir(folder, key)
        with self.db.session() as s:
            row = s.scalar(sa.select(t.Model).where(t.Model.id == path))
            if row is None:
                row = t.Model(id=path, org_id=run.org_id, job_id=run.job_id, base_model=run.base_model, kind="lora")
                s.add(row)
            old, row.blob_key, row.is_checkpoint, row.created_at, row.deleted_at = row.blob_key, key, True, now(), None
        if old:
            self.blobs.delete(old)

    def checkpoint(self, org_id: str, path: str) -> tuple[str, Path]:
        """The base model and folder of an organization's checkpoint; 404 for anyone else's."""
        if (path or "").startswith("ft:"):  # a LoRA job's model or checkpoint (services/checkpoint_starts.py)
            return job_adapter(self.db, self.blobs, self.root / "cache", org_id, path, param="path")
        match = _PATH.fullmatch(path or "")
        if match is None:
            raise InvalidRequest(f"'{path}' is not a checkpoint path (tinker://<run>/weights/<name>).", param="path")
        with self.db.session() as s:
            row = job_store.get_row(s, match["job"], org_id=org_id)
            base_model = row.spec.get("model") if row is not None else None
        folder = self.root / match["job"] / match["kind"] / match["name"]
        if base_model is None or not folder.is_dir():
            raise NotFound(f"No checkpoint '{path}'.", param="path")
        return base_model, folder

    # -- listing (the REST routes) -------------------------------------------------------------
    def job_id(self, org_id: str, run_id: str) -> str:
        """A run named by its model id (live runs) or its job id (any run of the organization)."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is not None and run.org_id == org_id:
            return run.job_id
        with self.db.session() as s:
            row = job_store.get_row(s, run_id, org_id=org_id)
            if row is None or method_type(row.spec or {}) != "primitives":
                raise NotFound(f"No training run '{run_id}'.", param="training_run_id")
            return row.id

    def list_runs(self, org_id: str, limit: int, offset: int) -> tuple[list[dict], int]:
        with self.db.session() as s:
            rows = [
                r
                for r in s.scalars(sa.select(t.Job).where(t.Job.org_id == org_id).order_by(t.Job.seq.desc()))
                if method_type(r.spec or {}) == "primitives"
            ]
            described = [self._describe(r) for r in rows[offset : offset + limit]]
        return described, len(rows)

    def describe(self, org_id: str, run_id: str) -> dict:
        job_id = self.job_id(org_id, run_id)
        with self.db.session() as s:
            row = job_store.get_row(s, job_id, org_id=org_id)
            assert row is not None  # job_id() found it
            return self._describe(row)

    def _describe(self, row: t.Job) -> dict:
        checkpoints = self.checkpoints(row.id)
        last = lambda kind: next((c for c in reversed(checkpoints) if c["checkpoint_type"] == kind), None)  # noqa: E731
        return {
            "training_run_id": row.id,
            "base_model": row.spec["model"],
            "model_owner": row.org_id,
            "is_lora": True,
            "lora_rank": row.spec["adapter"]["lora"]["r"],
            "corrupted": row.status == JobStatus.FAILED.value,
            "last_request_time": _iso(row.finished_at or row.started_at or row.created_at),
            "last_checkpoint": last("training"),
            "last_sampler_checkpoint": last("sampler"),
        }

    def checkpoints(self, job_id: str) -> list[dict]:
        """A run's saved states and sampler weights, oldest first."""
        found = []
        kinds = (("training", "weights"), ("sampler", "sampler_weights"), ("external", "external_weights"))
        for kind, folder_name in kinds:
            for folder in (self.root / job_id / folder_name).glob("*"):
                if folder.is_dir():
                    found.append(
                        {
                            "checkpoint_id": f"{folder_name}/{folder.name}",
                            "checkpoint_type": kind,
                            "time": _iso(folder.stat().st_mtime),
                            "tinker_path": f"tinker://{job_id}/{folder_name}/{folder.name}",
                            "size_bytes": folder_size(folder),
                        }
                    )
        return sorted(found, key=lambda c: c["time"])


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()
