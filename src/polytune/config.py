"""The one settings class. Every default can be changed by a POLYTUNE_* environment variable."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLYTUNE_", extra="ignore")

    data_dir: Path = Field(default=Path(".polytune"), description="where the embedded defaults live")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default sqlite in data_dir")
    storage_url: str | None = Field(default=None, description="fsspec URL for blobs; default data_dir/blobs")
    host: str = "127.0.0.1"
    port: int = 8000
    executor: Literal["local", "ray"] = "local"
    # Fork each local worker from a process that has torch/transformers/trl already imported
    # (executors/warm.py); off: start each worker as a fresh `python -m polytune.training.runner`.
    warm_workers: bool = Field(default=True, description="fork local workers from a pre-imported process")
    worker_slots: int = Field(default=1, ge=1, description="jobs that train at once")
    # The local executor's accelerators (executors/accelerators.py): "0,1,2,3" (device ids) or a
    # count; "0"/"none": none. Unset: torch.cuda.device_count(). With accelerators, capacity is
    # counted in them (a job takes resources.n_accel) and worker_slots no longer applies.
    accelerators: str | None = Field(default=None, description="local accelerators: ids or a count")
    # One accelerator's memory in GiB for the memory planner; unset: read from the device.
    accelerator_memory_gb: float | None = Field(default=None, gt=0, description="one accelerator's memory")
    # Ray (executor "ray", docs/scaling.md): the cluster's address ("host:port" of its head, or
    # "auto"); unset: polytune starts a Ray of its own on this machine, which ends with the server.
    ray_address: str | None = Field(default=None, description="Ray cluster to run jobs on")
    ray_namespace: str = Field(default="polytune", description="Ray namespace of polytune's tasks")
    # On a cluster without accelerators a job runs one CPU worker per requested accelerator,
    # each taking this many of Ray's CPUs.
    ray_cpus_per_worker: float = Field(default=1.0, gt=0, description="Ray CPUs per worker without GPUs")
    # A multi-worker job shards its model across the workers (FSDP) instead of copying it (DDP):
    # "auto" when it would not fit one device (training/sharding.py), "always", or "never".
    fsdp: Literal["auto", "always", "never"] = Field(default="auto", description="FSDP for multi-worker jobs")
    # The stored model catalog (catalog/stored.py) is read again only when it changed; that check
    # (a stat, or a HEAD on object storage) is skipped for this long after the last one (0: every
    # look-up checks, so another node's `models add` is seen at once).
    catalog_check_seconds: float = Field(default=0.0, ge=0, description="seconds between catalog change checks")
    # This node's copies of stored models (<data dir>/cache: base models fetched from object
    # storage, fine-tuned models fetched for serving) are pruned to this, least recently used
    # first, never one in use (store/node_cache.py). 0: no cap.
    node_cache_gb: float = Field(default=100.0, ge=0, description="cap on the node's cache of fetched models")
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, description="413 beyond this")
    # Every other request body (JSON: jobs, chat, graders) is read into memory: keep it small.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="413 beyond this (non-upload bodies)")
    scheduler_interval: float = Field(default=0.5, description="seconds between scheduler passes")
    cancel_grace_seconds: float = Field(default=10.0, description="then the worker's group is killed")
    min_examples: int = Field(default=10, ge=1, description="fewer training examples fails the job's validation")
    # Jobs' data is validated by this many threads, fairly by organization; one organization
    # takes at most all but one of them (services/validation_queue.py).
    validation_workers: int = Field(default=2, ge=1, description="threads validating jobs' data")
    max_retries: int = Field(default=3, ge=0, description="times a job whose worker died is resumed")
    heartbeat_timeout: float = Field(default=120.0, description="seconds of worker silence = lost")
    # The Tinker API (docs/tinker.md): a training run with no call for this long saves its state,
    # frees its model, and loads it back at its next call. 0: never.
    primitives_idle_seconds: float = Field(default=1800.0, ge=0, description="idle Tinker runs are released")
    resume_checkpoint_steps: int = Field(default=200, ge=0, description="resume checkpoint every N steps (0: off)")
    resume_checkpoint_minutes: float = Field(default=10.0, ge=0, description="... or every M minutes (0: off)")
    max_jobs_per_org: int = Field(default=0, ge=0, description="running jobs per organization (0: no limit)")
    # Quotas per organization (docs/quotas.md; 0: no limit). Unfinished jobs are created,
    # validating, queued, running, pausing or paused ones; stored bytes are files, the parts of
    # unfinished uploads and repository files.
    max_unfinished_jobs_per_org: int = Field(default=100, ge=0, description="429 for a job beyond it")
    max_storage_bytes_per_org: int = Field(default=100 * 1024**3, ge=0, description="413 for an upload beyond it")
    # Expired uploads and files past their expires_after are deleted by a sweep this often.
    expiry_sweep_interval: float = Field(default=60.0, gt=0, description="seconds between expiry sweeps")
    shutdown_grace_seconds: float = Field(default=60.0, description="on SIGTERM, time for workers to checkpoint")
    # Serving: weights kept in memory (base models, full fine-tunes, LoRA adapters) stay under this;
    # the least recently used idle ones are evicted to make room.
    inference_memory_mb: int = Field(default=4096, ge=1, description="memory budget for served weights")
    inference_max_batch: int = Field(default=16, ge=1, description="sequences decoded together per model")
    # A fast model's tokens are sent a few at a time (the first at once): one SSE event and one
    # client parse per token cost as much as a token of a 1 M model (docs/benchmarks.md).
    stream_interval_ms: float = Field(
        default=10.0, ge=0, le=1000, description="streamed text goes out at most this often (0: every token)"
    )
    # process: the engine in a process of its own, its Python under its own GIL (a stream beside
    # another tenant's uploads keeps 0.82-0.97 of its speed, against 0.26-0.33 in the server's
    # process: docs/benchmarks.md); thread: in the API server's process (one process less: a
    # machine short of memory, debugging with one process).
    inference_engine: Literal["process", "thread"] = Field(
        default="process", description="where the serving engine runs: process | thread"
    )
    # The engine process starts with the server (torch imported, no model loaded: ~2 s of CPU and
    # ~0.4 GB), so the first request does not wait ~3 s for it; false: on the first request.
    inference_warm_start: bool = Field(default=True, description="start the engine process with the server")
    # 0: one less than the CPU cores (at least 1), leaving a core to the event loop. On a busy
    # machine more threads than free cores make torch's CPU kernels far slower, not faster.
    inference_threads: int = Field(default=0, ge=0, description="torch CPU threads for serving")
    # Graders (docs/graders.md). score_model / label_model call this OpenAI-compatible endpoint
    # (its base URL, with /v1); unset: polytune's own API (for graders/run the server answering
    # the request, with the caller's key; for training http://host:port/v1 with grader_model_api_key).
    grader_model_base_url: str | None = Field(default=None, description="chat endpoint of model graders")
    grader_model_api_key: str | None = Field(default=None, description="its API key")
    grader_embeddings_model: str | None = Field(default=None, description="enables text_similarity cosine")
    grader_python_cpu_seconds: float = Field(default=5.0, gt=0, description="python grader CPU time per sample")
    grader_python_timeout_seconds: float = Field(default=10.0, gt=0, description="... wall-clock time per sample")
    grader_python_memory_mb: int = Field(default=512, ge=64, description="... address space of its process")
    # The python grader's sandbox (docs/graders.md): bubblewrap's binary, and the packages of
    # the server's environment a grader may import (comma-separated; read-only in the sandbox).
    grader_bwrap_path: str = Field(default="bwrap", description="bubblewrap binary for python graders")
    grader_python_packages: str = Field(
        default="numpy,rapidfuzz,regex", description="packages a python grader may import"
    )
    # graders/run admission: at most this many at once per organization and in all (the rest
    # get 429 with Retry-After), and this many per organization per minute.
    grader_runs_per_org: int = Field(default=2, ge=1, description="concurrent graders/run per organization")
    grader_runs_total: int = Field(default=8, ge=1, description="concurrent graders/run in all")
    grader_runs_per_minute: int = Field(default=60, ge=1, description="graders/run per organization per minute")
    # How this server reaches its own API (model graders' default endpoint), never taken from a
    # request's Host header; unset: http://<host, or 127.0.0.1 for 0.0.0.0>:<port>/v1.
    internal_base_url: str | None = Field(default=None, description="this server's own API, from inside")
    # Image jobs (and image serving, through inference_threads) on CPU: measured on a busy
    # 2-core machine, two torch threads ran these small convolutions 5-20x slower than one.
    train_threads: int = Field(default=0, ge=0, description="torch CPU threads of an image job (0: cores - 1)")
    # Text jobs on CPU: "auto" trains under bf16 autocast where the CPU has bf16 matrix
    # instructions and the model is large enough for it to win (training/cpu_path.py).
    train_precision: Literal["auto", "fp32", "bf16"] = "auto"
    # Text jobs on an accelerator: "auto" uses Liger kernels for supervised jobs where
    # liger-kernel is installed (the `gpu` extra) and patches the model type (training/gpu_path.py).
    liger: Literal["auto", "off"] = "auto"

    # Seals secrets at rest (W&B keys): a Fernet key. Unset: one is generated into
    # <data dir>/secret.key (0600). Set it on every machine when workers run elsewhere.
    secret_key: SecretStr | None = Field(default=None, description="Fernet key for secrets at rest")
    # W&B: "online" logs to the W&B service (falling back to offline, with a warning event, when
    # it can't be reached in wandb_init_timeout seconds); "offline" logs into the job's run
    # directory only, attached to the job as a result file either way.
    wandb_mode: Literal["online", "offline"] = "online"
    wandb_init_timeout: float = Field(default=30.0, gt=0, description="seconds to reach W&B")

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def node_cache_bytes(self) -> int:
        return int(self.node_cache_gb * 1024**3)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'polytune.db'}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or str(self.resolved_data_dir / "blobs")


def cpu_threads(configured: int) -> int:
    """A thread-count setting: 0 means one less than the CPU cores (at least 1), leaving a core
    to the event loop or the scheduler."""
    return configured or max(1, (os.cpu_count() or 2) - 1)


@lru_cache
def get_settings() -> Settings:
    return Settings()
