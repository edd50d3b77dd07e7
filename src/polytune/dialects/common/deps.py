"""Dependencies as Annotated aliases: a route asks for `OrgId` or `Svc` and gets it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from polytune.config import Settings
from polytune.services.checkpoint_starts import JobStarts
from polytune.services.eval_runs import EvalRunService
from polytune.services.evals import EvalService
from polytune.services.files import FileService
from polytune.services.grader_runs import GraderRuns
from polytune.services.idempotency import IdempotencyService
from polytune.services.images import ImageService
from polytune.services.inference import InferenceService
from polytune.services.jobs import JobService
from polytune.services.keys import KeyService
from polytune.services.model_export import ModelExportService
from polytune.services.models import ModelService
from polytune.services.primitives import PrimitiveService
from polytune.services.projects import ProjectService
from polytune.services.repo_jobs import RepoJobService
from polytune.services.repos import RepoService


@dataclass
class Services:
    settings: Settings
    keys: KeyService
    files: FileService
    jobs: JobService
    models: ModelService
    projects: ProjectService
    idempotency: IdempotencyService
    repos: RepoService | None = None
    repo_jobs: RepoJobService | None = None
    grader_runs: GraderRuns | None = None
    inference: InferenceService | None = None
    images: ImageService | None = None
    exports: ModelExportService | None = None
    evals: EvalService | None = None
    eval_runs: EvalRunService | None = None
    primitives: PrimitiveService | None = None
    # A checkpoint named as a job's model (services/checkpoint_starts.py).
    starts: JobStarts | None = None


# The accessors below are `async def` on purpose: FastAPI runs a plain `def` dependency in its
# thread pool, a hand-off to another thread and back for each (three per request before the
# route's own work), which a Tinker step pays on its critical path four times.
async def get_services(request: Request) -> Services:
    return request.app.state.services


def api_key(request: Request) -> str | None:
    """The key from `Authorization: Bearer <key>`; a bare `Authorization: <key>` (SeekrFlow's
    SDK sends that) and `X-API-Key: <key>` (Tinker's SDK sends that) are accepted too."""
    header = request.headers.get("authorization", "").strip()
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return header or request.headers.get("x-api-key", "").strip() or None


def current_org(request: Request, services: Annotated[Services, Depends(get_services)]) -> str:
    return services.keys.authenticate(api_key(request))


Svc = Annotated[Services, Depends(get_services)]
OrgId = Annotated[str, Depends(current_org)]


async def get_inference(services: Svc) -> InferenceService:
    assert services.inference is not None  # built with the others (app.py:build_services)
    return services.inference


async def get_images(services: Svc) -> ImageService:
    assert services.images is not None  # built with the others (app.py:build_services)
    return services.images


Inference = Annotated[InferenceService, Depends(get_inference)]
Images = Annotated[ImageService, Depends(get_images)]
