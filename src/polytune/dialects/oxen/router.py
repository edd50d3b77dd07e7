"""Oxen.ai routes at the server root (the `oxenai` client builds `<scheme>://<host>/api/repos/...`
and can't take a path prefix): thin. Parse, call a service, render in Oxen's envelope.

The read routes (GET) serve another organization's repository of that name when it is public
(`RepoJobService.reader`): its fine-tunes, their progress and checkpoints, its files; of a
private one, only its fine-tunes created with `is_public: true`, and the folders they published
their weights to. Every write (upload, create, run) acts on the caller's own repositories only."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from polytune.dialects.common.body import json_body
from polytune.dialects.common.downloads import content_disposition
from polytune.dialects.common.deps import OrgId, Svc
from polytune.dialects.common.multipart import read_multipart
from polytune.dialects.common.openapi_doc import json_request, multipart_request
from polytune.dialects.common.params import MAX_PAGE
from polytune.domain.errors import InvalidRequest
from polytune.domain.job import Job

from . import render
from . import translate as tr
from .errors import OxenRoute, not_supported
from .protocol import CreateFineTuneRequest, CreateRepoRequest

router = APIRouter(route_class=OxenRoute)
_FILE_FIELDS = ("files[]", "file")


# -- repositories -------------------------------------------------------------------------------
@router.post("/api/repos", openapi_extra=json_request(CreateRepoRequest))
async def create_repo(request: Request, org: OrgId, svc: Svc) -> dict[str, Any]:
    req = await json_body(request, CreateRepoRequest)
    seed = [(f.path, f.contents.encode()) for f in req.files or []]
    author = next((f.user for f in req.files or [] if f.user), None)
    repo = await run_in_threadpool(
        svc.repos.create,
        org,
        req.namespace,
        req.name,
        description=req.description or "",
        is_public=bool(req.is_public),
        files=seed,
        **({"author": author.name, "email": author.email} if author else {}),
    )
    return render.ok("resource_created", repository=render.repository(repo))


@router.get("/api/repos/{namespace}/{name}")
def get_repo(namespace: str, name: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    owner = svc.repos.readable_owner(org, namespace, name)
    return render.ok("resource_found", repository=render.repository(svc.repos.get(owner, namespace, name)))


@router.get("/api/repos/{namespace}/{name}/branches/{branch:path}")
def get_branch(namespace: str, name: str, branch: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    owner = svc.repos.readable_owner(org, namespace, name)
    return render.ok("resource_found", branch=render.branch(svc.repos.branch(owner, namespace, name, branch)))


# -- files --------------------------------------------------------------------------------------
@router.put(
    "/api/repos/{namespace}/{name}/file/{target:path}",
    openapi_extra=multipart_request(
        ["files[]"], {"message": {"type": "string"}, "name": {"type": "string"}, "email": {"type": "string"}}
    ),
)
async def upload_files(
    namespace: str, name: str, target: str, request: Request, org: OrgId, svc: Svc
) -> dict[str, Any]:
    """`RemoteRepo.upload`: multipart `files[]` into `<branch>/<dir>`, one commit."""
    repo = await run_in_threadpool(svc.repos.get, org, namespace, name)
    branch, directory = await run_in_threadpool(svc.repos.split_revision, repo.id, target)
    pending = []

    def open_sink(field: str, filename: str):
        if field not in _FILE_FIELDS:
            raise InvalidRequest(f"Unexpected file part '{field}'; send files as 'files[]'.", param=field)
        pending.append(svc.repos.begin_file(repo.id, "/".join(p for p in (directory, filename) if p)))
        return pending[-1]

    try:
        form = await read_multipart(request, open_sink)
    except BaseException:
        for p in pending:
            p.blob.abort()
        raise
    commit = await run_in_threadpool(
        svc.repos.commit_files,
        org,
        namespace,
        name,
        branch,
        pending,
        message=form.fields.get("message", ""),
        author=form.fields.get("name", ""),
        email=form.fields.get("email", ""),
    )
    return render.ok("resource_created", commit=render.commit(commit))


@router.get("/api/repos/{namespace}/{name}/file/{target:path}")
def download_file(namespace: str, name: str, target: str, org: OrgId, svc: Svc) -> StreamingResponse:
    owner, public_only = svc.repo_jobs.reader(org, namespace, name)
    if public_only:  # another organization's private repository: a public fine-tune's weights only
        svc.repo_jobs.public_folder(owner, namespace, name, target)
    info, chunks = svc.repos.read(owner, namespace, name, target)
    media = mimetypes.guess_type(info.path)[0] or "application/octet-stream"
    return StreamingResponse(
        chunks,
        media_type=media,
        headers={
            "Content-Length": str(info.bytes),
            "oxen-revision-id": info.commit_id,
            "Content-Disposition": content_disposition(info.path.rsplit("/", 1)[-1]),
        },
    )


# -- fine-tunes ---------------------------------------------------------------------------------
def _fine_tune(svc: Svc, org: str, job: Job, message: str) -> dict[str, Any]:
    return render.ok(message, fine_tune=render.fine_tune(job, svc.repo_jobs.repository_of(org, job)))


def _eval_after(req: CreateFineTuneRequest, model: str, org: str, svc: Svc) -> Callable[[Any, str], None] | None:
    """training_params.polytune_eval: the eval run the job brings (services/eval_runs.py)."""
    request = req.training_params.polytune_eval
    if request is None or svc.eval_runs is None:
        return None
    runs = svc.eval_runs
    after = runs.check_after_job(org, request, model, where="training_params.polytune_eval")
    return lambda s, job_id: runs.add_after_job(s, org, after, job_id)


@router.post("/api/repos/{namespace}/{name}/fine_tunes", openapi_extra=json_request(CreateFineTuneRequest))
async def create_fine_tune(namespace: str, name: str, request: Request, org: OrgId, svc: Svc) -> JSONResponse:
    req = await json_body(request, CreateFineTuneRequest)
    spec, columns = tr.to_spec(req, name)
    try:
        on_create = await run_in_threadpool(_eval_after, req, spec.model, org, svc)
        job = await run_in_threadpool(
            svc.repo_jobs.create,
            org,
            namespace,
            name,
            spec,
            resource=req.resource,
            columns=columns,
            warnings=tr.warnings(req),
            on_create=on_create,
        )
    except InvalidRequest as e:
        raise tr.to_wire(e, req) from None
    body = await run_in_threadpool(_fine_tune, svc, org, job, "resource_created")
    return JSONResponse(body, status_code=201)


def _page(
    svc: Svc, org: str, page: int, page_size: int, status: str | None, sort: str, public_only: bool = False, **repo: str
) -> dict[str, Any]:
    if sort not in ("newest", "oldest"):
        raise InvalidRequest(f"sort must be 'newest' or 'oldest', got '{sort}'.", param="sort")
    found = svc.repo_jobs.list(
        org,
        statuses=tr.statuses(status),
        page=page,
        page_size=page_size,
        newest_first=sort == "newest",
        public_only=public_only,
        **repo,
    )
    repos: dict[str | None, Any] = {}  # one lookup per repository on the page
    for j in found.jobs:
        if j.spec.output.repository not in repos:
            repos[j.spec.output.repository] = svc.repo_jobs.repository_of(org, j)
    return render.ok(
        "resource_found",
        fine_tunes=[render.fine_tune(j, repos[j.spec.output.repository]) for j in found.jobs],
        page_number=page,
        page_size=page_size,
        total_entries=found.total,
        total_pages=(found.total + page_size - 1) // page_size,
    )


@router.get("/api/repos/{namespace}/{name}/fine_tunes")
def list_repo_fine_tunes(
    namespace: str,
    name: str,
    org: OrgId,
    svc: Svc,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    page_size: int = Query(20, ge=1, le=1000),
    status: str | None = None,
    sort: str = "newest",
) -> dict[str, Any]:
    owner, public_only = svc.repo_jobs.reader(org, namespace, name)
    return _page(svc, owner, page, page_size, status, sort, public_only, namespace=namespace, name=name)


@router.get("/api/users/{username}/fine_tunes")
def list_user_fine_tunes(
    username: str,
    org: OrgId,
    svc: Svc,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    page_size: int = Query(20, ge=1, le=1000),
    status: str | None = None,
    sort: str = "newest",
) -> dict[str, Any]:
    # polytune's keys belong to organizations: the key, not the username, decides whose
    # fine-tunes these are, and jobs created through any API are listed.
    return _page(svc, org, page, page_size, status, sort)


@router.get("/api/repos/{namespace}/{name}/fine_tunes/{job_id}")
def get_fine_tune(namespace: str, name: str, job_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    owner, public_only = svc.repo_jobs.reader(org, namespace, name)
    return _fine_tune(
        svc, owner, svc.repo_jobs.get(owner, namespace, name, job_id, public_only=public_only), "resource_found"
    )


@router.get("/api/repos/{namespace}/{name}/fine_tunes/{job_id}/train_status")
def train_status(namespace: str, name: str, job_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    owner, public_only = svc.repo_jobs.reader(org, namespace, name)
    job = svc.repo_jobs.get(owner, namespace, name, job_id, public_only=public_only)
    return render.ok("resource_found", train_status=render.train_status(job))


@router.post("/api/repos/{namespace}/{name}/fine_tunes/{job_id}/actions/run")
def run_fine_tune(namespace: str, name: str, job_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    return _fine_tune(svc, org, svc.repo_jobs.start(org, namespace, name, job_id), "resource_updated")


@router.get("/api/repos/{namespace}/{name}/fine_tunes/{job_id}/checkpoints")
def list_checkpoints(namespace: str, name: str, job_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    owner, public_only = svc.repo_jobs.reader(org, namespace, name)
    job, found = svc.repo_jobs.checkpoints(owner, namespace, name, job_id, public_only=public_only)
    return render.ok(
        "resource_found",
        fine_tune_id=job.id,
        branch=job.spec.output.branch,
        checkpoints=[render.checkpoint(c, path, size) for c, path, size in found],
        total_checkpoints=len(found),
    )


# -- everything else of Oxen's protocol ------------------------------------------------------------
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


@router.api_route("/api/repos/{rest:path}", methods=_METHODS)
def unsupported_repo_route(rest: str, request: Request) -> JSONResponse:
    return not_supported(f"{request.method} /api/repos/{rest}")


@router.api_route("/api/users/{rest:path}", methods=_METHODS)
def unsupported_user_route(rest: str, request: Request) -> JSONResponse:
    return not_supported(f"{request.method} /api/users/{rest}")
