"""Training runs of the primitives API (Tinker): each is a job of method `primitives` in the store
(listed, cancelled and counted like any job), with its model resident in a worker
(executors/primitives.py) from creation until it is cancelled or unloaded.

A run holds a scheduler slot (an accelerator) while its model is loaded: the scheduler places it
at once or refuses it (Scheduler.place_now: the organization's quotas and fair share), since its
client waits on the call. An idle run saves its state and gives its slot back; its next call
takes one again, or fails naming the setting that refused it (docs/tinker.md).

Checkpoints live under the data dir as peft adapter folders, named by Tinker paths:
tinker://<job id>/weights/<name> (adapter and optimizer state) and
tinker://<job id>/sampler_weights/<name> (the adapter alone).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
import time
from concurrent.futures import Future
from contextlib import AbstractContextManager
from pathlib import Path

import sqlalchemy as sa

from polytune.catalog.models import Catalog
from polytune.domain.errors import InvalidRequest, NotFound, QuotaExceeded
from polytune.domain.ids import new_id
from polytune.domain.job import JobStatus
from polytune.domain.primitives import LORA_ALPHA, LoraSettings
from polytune.domain.spec import AdapterSpec, JobSpec, LoraSpec
from polytune.executors.primitives import Call, PrimitiveWorker
from polytune.services.checkpoint_starts import job_adapter
from polytune.services.checkpoint_urls import CheckpointUrls
from polytune.services.primitive_listing import RunListing
from polytune.services.primitive_run import Placement, Run, RunBusy
from polytune.services.quotas import Quotas
from polytune.store import jobs as job_store
from polytune.store import tables as t
from polytune.store import worker as worker_store
from polytune.store.blobs import BlobStore
from polytune.store.db import Database, now

log = logging.getLogger("polytune.primitives")

_PATH = re.compile(
    r"tinker://(?P<job>[A-Za-z0-9_-]+)/(?P<kind>weights|sampler_weights|external_weights)/(?P<name>[A-Za-z0-9_.-]+)"
)
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")


class PrimitiveRuns(RunListing):
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        data_dir: Path,
        sweep_interval: float = 1.0,
        idle_seconds: float = 0.0,
        blobs: BlobStore | None = None,
        quotas: Quotas | None = None,
    ):
        self.db, self.catalog, self.idle_seconds, self.blobs = db, catalog, idle_seconds, blobs
        self.quotas = quotas or Quotas()
        # Set by the app with its scheduler; None (no scheduler in this process): runs hold no slot.
        self.placement: Placement | None = None
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
        # Held while this server runs: an idle run frees its model and loads it again later.
        base_dir = str(self.catalog.resolve_path(entry, keep=True))
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
        spec_json = spec.model_dump(mode="json")
        with self.db.session() as s:  # refused for the quota before a slot is looked for
            self.quotas.check_new_job(s, org_id)
        with self._placed(job_id, org_id, spec_json) as devices, self.db.session() as s:
            self.quotas.check_new_job(s, org_id)  # again, with the organization locked (PostgreSQL)
            # Running at once, on this server: no queue (the worker is a thread here); the
            # scheduler sees its worker alive through `pid` and never claims it.
            s.add(
                t.Job(
                    id=job_id,
                    org_id=org_id,
                    status=JobStatus.RUNNING.value,
                    spec=spec_json,
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
            worker = PrimitiveWorker(
                job_id, base_dir, base_model, lora, first_seq=first_seq, devices=devices, adapter_dir=adapter_dir
            )
        run = Run(model_id, job_id, org_id, base_model, base_dir, lora, spec_json, worker, adapter_dir=adapter_dir)
        with self._lock:
            self._runs[model_id] = run
        worker.ready.add_done_callback(lambda ready: self._loaded(run, ready.exception()))
        return run

    def _loaded(self, run: Run, error: BaseException | None) -> None:
        """Idle time counts from here; a model that could not load fails its job (the sweep then
        frees the run's slot)."""
        run.last_call = time.monotonic()
        if error is None:
            return
        message = f"The training run's model could not be loaded: {error}"
        failure = {"code": "model_load_failed", "message": message, "param": None}
        worker_store.finish(self.db, run.job_id, JobStatus.FAILED, message, from_=(JobStatus.RUNNING,), error=failure)

    def _placed(self, job_id: str, org_id: str, spec: dict) -> AbstractContextManager[tuple[str, ...]]:
        """A slot for the run now (the devices it holds), or QuotaExceeded naming the setting."""
        if self.placement is None:
            return contextlib.nullcontext(())
        return self.placement.place_now(job_id, org_id, spec)

    def _find(self, org_id: str, model_id: str) -> Run:
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
        return run

    def get(self, org_id: str, model_id: str, wait: bool = True) -> Run:
        """The run, loaded back first if it was released (when no slot is free, its worker
        answers the call with the refusal instead). wait=False (a call on the event loop): RunBusy
        instead of waiting for a release in progress or loading the run back."""
        run = self._find(org_id, model_id)
        if not run.lock.acquire(blocking=wait):
            raise RunBusy(model_id)
        try:
            run.last_call = time.monotonic()
            if run.released and not wait:
                raise RunBusy(model_id)
            if run.released:
                self._reload(run)
        finally:
            run.lock.release()
        return run

    # -- idle release --------------------------------------------------------------------------
    def _idle_folder(self, run: Run) -> Path:
        return self.root / run.job_id / "idle"

    def _release(self, run: Run) -> None:
        """Save the run's whole state (adapter and optimizer), free its model, give its slot back."""
        with run.lock:
            if run.released or run.closed or time.monotonic() - run.last_call < self.idle_seconds:
                return
            folder = self._idle_folder(run)
            folder.mkdir(parents=True, exist_ok=True)
            run.worker.submit(lambda model: model.save_state(folder)).result()
            run.worker.close()
            run.worker.join()
            run.released = True
            self._mark(run, released=True)
            if self.placement is not None:
                self.placement.release(run.job_id)
        with self.db.session() as s:
            job_store.add_event(
                s,
                run.job_id,
                f"Idle for {self.idle_seconds:g} s: state saved, model released and its slot given back "
                "(it loads again at the next call)",
            )

    def _reload(self, run: Run) -> None:
        """Under run.lock: a new worker, in a slot taken now, continues from the saved state and
        the same seq_id; with no slot, the released worker answers calls with why."""
        folder = self._idle_folder(run)
        next_seq = run.worker.next_seq
        try:
            with self._placed(run.job_id, run.org_id, run.spec) as devices:
                self._mark(run, released=False)
                worker = PrimitiveWorker(
                    run.job_id,
                    run.base_dir,
                    run.base_model,
                    run.lora,
                    first_seq=next_seq,
                    devices=devices,
                    adapter_dir=run.adapter_dir,
                )
        except QuotaExceeded as e:
            run.worker.refuse(
                QuotaExceeded(
                    f"Training run '{run.model_id}' was released while idle and cannot come back now: {e.message}",
                    code=e.code,
                )
            )
            return
        worker.submit(lambda model: model.load_state(folder, optimizer=True))
        run.worker, run.released = worker, False
        with self.db.session() as s:
            job_store.add_event(s, run.job_id, "Called again: model loaded back from its saved state")

    def _mark(self, run: Run, *, released: bool) -> None:
        """The job's worker record says whether it holds its slot (scheduler.holds_accelerators)."""
        with self.db.session() as s:
            row = job_store.get_row(s, run.job_id, lock=True)
            if row is not None:
                row.worker = {**(row.worker or {}), "released": released}

    def submit(self, org_id: str, model_id: str, call: Call, seq_id: int | None) -> Future:
        run = self.get(org_id, model_id)
        return run.worker.submit(call, seq_id)

    def record_step(self, run: Run, metrics: dict[str, float]) -> None:
        """An optimizer step: the job's trained_steps and a metrics event (the dashboard's loss).
        Called in the run's worker thread, one call at a time: not under run.lock, which an idle
        release holds while it waits for the worker."""
        run.steps += 1
        step = run.steps
        with self.db.session() as s:
            s.execute(sa.update(t.Job).where(t.Job.id == run.job_id).values(trained_steps=step))
            parts = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            job_store.add_event(s, run.job_id, f"Step {step}: {parts}", type="metrics", data={"step": step, **metrics})

    def unload(self, org_id: str, model_id: str) -> Run:
        """The run's job succeeds and its worker frees the model and its slot."""
        run = self._find(org_id, model_id)  # a released run is not loaded back to be unloaded
        with self.db.session() as s:
            row = job_store.get_row(s, run.job_id, lock=True)
            if row is not None and row.status == JobStatus.RUNNING.value:
                job_store.transition(s, row, JobStatus.SUCCEEDED, "Training run unloaded by its client")
        self._close(run)
        return run

    def _close(self, run: Run) -> None:
        run.closed = True
        run.worker.close()
        run.worker.join()  # its slot is free once the call in progress has ended
        if self.placement is not None:
            self.placement.release(run.job_id)
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
