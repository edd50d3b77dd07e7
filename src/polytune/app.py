"""Builds the FastAPI app and wires the services into it."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from polytune import __version__
from polytune.config import Settings, get_settings
from polytune.dashboard.router import mount_dashboard
from polytune.dialects.body_limit import BodyLimitMiddleware, render_for_path
from polytune.dialects.common import openapi_doc
from polytune.dialects.common.deps import Services
from polytune.dialects.common.errors import http_handler_by_prefix
from polytune.dialects.openai import errors as openai_errors
from polytune.dialects.oxen import errors as oxen_errors
from polytune.dialects.seekr import errors as seekr_errors
from polytune.dialects.openai.mount import OPENAI_PREFIXES, mount_openai
from polytune.dialects.seekr.router import router as seekr_router
from polytune.dialects.oxen.router import router as oxen_router
from polytune.dialects.tinker.api_router import router as tinker_router
from polytune.dialects.url_guard import UrlGuardMiddleware
from polytune.domain.errors import DomainError
from polytune.executors import make_executor
from polytune.lazy_imports import from_transformers
from polytune.scheduler import Scheduler
from polytune.services.eval_runner import EvalRunner
from polytune.services.eval_runs import EvalRunService
from polytune.services.evals import EvalService
from polytune.services.expiry import ExpirySweeper
from polytune.services.files import FileService
from polytune.services.grader_runs import GraderRuns
from polytune.services.graders import GraderService
from polytune.services.idempotency import IdempotencyService
from polytune.services.images import ImageService
from polytune.services.inference import InferenceService
from polytune.services.jobs import JobService
from polytune.services.keys import KeyService
from polytune.services.model_export import ModelExportService
from polytune.services.models import ModelService
from polytune.services.checkpoint_starts import JobStarts
from polytune.services.primitive_runs import PrimitiveRuns
from polytune.services.primitives import PrimitiveService
from polytune.services.projects import ProjectService
from polytune.services.quotas import Quotas
from polytune.services.repo_jobs import RepoJobService
from polytune.services.repos import RepoService
from polytune.store.blobs import BlobStore
from polytune.store.db import Database
from polytune.store.private_files import private_dir
from polytune.store.secret_box import SecretBox
from polytune.catalog.models import Catalog

log = logging.getLogger("polytune")


def build_services(settings: Settings) -> tuple[Services, Database]:
    private_dir(settings.resolved_data_dir)  # and a umask of 077 for all this process writes
    db = Database(settings.resolved_database_url)
    db.migrate()
    blobs = BlobStore(settings.resolved_storage_url)
    catalog = Catalog.for_settings(settings, blobs)
    quotas = Quotas.from_settings(settings)
    services = Services(
        settings=settings,
        keys=KeyService(db),
        files=FileService(db, blobs, max_bytes=settings.max_upload_bytes, quotas=quotas),
        jobs=JobService(
            db,
            blobs,
            catalog,
            secret_box=SecretBox.from_settings(settings),
            min_examples=settings.min_examples,
            validation_workers=settings.validation_workers,
            quotas=quotas,
        ),
        models=ModelService(db, catalog, created=int(time.time()), blobs=blobs),
        projects=ProjectService(db),
        idempotency=IdempotencyService(db),
    )
    services.repos = RepoService(db, blobs, max_bytes=settings.max_upload_bytes, quotas=quotas)
    services.repo_jobs = RepoJobService(services.repos, services.files, services.jobs)
    services.grader_runs = GraderRuns(settings)
    # Serving and image generation: cheap to make (their backends start with the first request),
    # closed with the app (lifespan), handed to routers through dialects/common/deps.py.
    services.inference = InferenceService(settings, services.models, catalog, blobs)
    services.images = ImageService(settings, services.models, catalog, blobs)
    services.exports = ModelExportService(settings, services.models, catalog, blobs)
    services.evals = EvalService(db, GraderService(settings).config)
    services.eval_runs = EvalRunService(db, services.evals, services.files, services.models)
    # The Tinker API's training runs (their models load with each run's first call) and samplers.
    services.primitives = PrimitiveService(
        PrimitiveRuns(
            db,
            catalog,
            settings.resolved_data_dir,
            idle_seconds=settings.primitives_idle_seconds,
            blobs=blobs,
            quotas=quotas,
        ),
        catalog,
        services.inference,
    )
    # A job may start from a Tinker checkpoint (or a LoRA model) named as its model.
    services.starts = JobStarts(db, blobs, services.primitives.runs)
    services.jobs.starts = services.starts.job_spec
    services.jobs.discard_start = services.starts.discard
    services.eval_runs.base_model = services.starts.base_model
    return services, db


def _probe_grader_sandbox(settings: Settings) -> None:
    """Set the python graders' sandbox up once now (cached), so the first grader does not wait
    for it, and say at start when python graders are refused on this machine."""
    from polytune.graders.boundary import probe
    from polytune.graders.settings import sandbox

    boundary = probe(sandbox(settings))
    if not boundary.ok:
        log.warning("python graders are disabled: %s (docs/graders.md)", boundary.error)
    elif boundary.seccomp is None:
        log.warning("python graders run without a seccomp filter: %s", boundary.seccomp_note)


def _import_tokenizers() -> None:
    # Under the lock every other import of these names takes (lazy_imports.py): a job validated
    # while this runs waits for it instead of seeing transformers half imported.
    from_transformers("AutoTokenizer")


def create_app(settings: Settings | None = None, *, run_scheduler: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        services, db = build_services(settings)
        app.state.services = services
        threading.Thread(
            target=_probe_grader_sandbox, args=(settings,), name="polytune-sandbox-probe", daemon=True
        ).start()
        assert services.inference is not None
        services.inference.warm_up()  # the engine process (settings.inference_warm_start)
        sweeper = ExpirySweeper(db, services.files.blobs, interval=settings.expiry_sweep_interval)
        sweeper.start()
        scheduler = None
        if run_scheduler and settings.warm_workers:
            # The scheduler's dataset validation runs in this process and tokenizes with
            # transformers: import it now, beside startup, so the first job does not wait for it.
            threading.Thread(target=_import_tokenizers, name="polytune-warm-up", daemon=True).start()
        if run_scheduler:
            executor = make_executor(settings)
            # A job that can never be placed on the executor (a Ray cluster too small for it) is
            # refused at creation instead of queueing forever.
            services.jobs.placement_check = getattr(executor, "check", None)
            # The accelerators a job may ever get: the memory planner refuses what cannot fit them.
            services.jobs.capacity = (
                (lambda: executor.memory_capacity) if hasattr(type(executor), "memory_capacity") else None
            )
            # Eval runs sample through this server's inference service: its threads run them.
            assert services.eval_runs is not None and services.inference is not None
            evals = EvalRunner(db, services.eval_runs, services.inference, settings)
            services.eval_runs.on_queued = evals.dispatch
            scheduler = Scheduler(
                db,
                services.jobs,
                executor,
                slots=settings.worker_slots,
                evals=evals,
                interval=settings.scheduler_interval,
                cancel_grace=settings.cancel_grace_seconds,
                heartbeat_timeout=settings.heartbeat_timeout,
                max_retries=settings.max_retries,
                max_jobs_per_org=settings.max_jobs_per_org,
                shutdown_grace=settings.shutdown_grace_seconds,
            )
            # A Tinker run holds a slot of this scheduler while its model is loaded (place_now).
            assert services.primitives is not None
            services.primitives.runs.placement = scheduler
            scheduler.start()
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            sweeper.stop()
            if scheduler:
                scheduler.stop()
            services.grader_runs.shutdown()
            services.inference.close()
            services.primitives.close()
            db.dispose()

    app = FastAPI(title="polytune", version=__version__, lifespan=lifespan)
    app.add_exception_handler(DomainError, openai_errors.domain_error_handler)
    app.add_exception_handler(RequestValidationError, openai_errors.request_validation_handler)
    # A path or method that does not exist answers in the envelope of the dialect it is under.
    by_prefix = {
        seekr_errors.PREFIX: seekr_errors.SeekrErrors(),
        **{prefix: oxen_errors.OxenErrors() for prefix in oxen_errors.PREFIXES},
    }
    app.add_exception_handler(HTTPException, http_handler_by_prefix(by_prefix, openai_errors.http_error_handler))
    app.add_exception_handler(Exception, openai_errors.unhandled_error_handler)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, render=render_for_path)
    app.add_middleware(UrlGuardMiddleware, render=render_for_path)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for prefix in OPENAI_PREFIXES:  # /v1 (OpenAI, Nebius) and /api/llm (TrueFoundry)
        mount_openai(app, prefix)
    # SeekrFlow's /v1/flow/... at the root; its routes render their own errors (seekr/errors.py).
    app.include_router(seekr_router)
    # Oxen's client builds <host>/api/repos/... itself: its routes live at the root.
    app.include_router(oxen_router)
    # Tinker's SDK calls <base_url>/api/v1/...: the training primitives (docs/tinker.md).
    app.include_router(tinker_router)
    # The dashboard at `/` (its assets under /dashboard/): static pages over the /v1 API.
    mount_dashboard(app)
    openapi_doc.install(app)  # the hand-parsed request bodies, in /openapi.json
    return app
