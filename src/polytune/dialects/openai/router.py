"""OpenAI routes: thin. Parse, call a service, render. Mounted at /v1 and /api/llm (mount.py)."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from polytune.dialects.common.body import json_body
from polytune.dialects.common.deps import OrgId, Svc
from polytune.dialects.common.file_routes import add_file_routes
from polytune.dialects.common.idempotency import once_per_key
from polytune.dialects.common.multipart import read_multipart
from polytune.dialects.common.openapi_doc import json_request, multipart_request
from polytune.dialects.common.params import MAX_LIMIT
from polytune.domain.errors import InvalidRequest, TooLarge
from polytune.services.graders import GraderService

from . import render
from . import translate as tr
from .protocol import CompleteUploadRequest, CreateJobRequest, CreateUploadRequest

router = APIRouter()


async def _flavor(request: Request) -> str:
    """Whose enum a job is shown in: TrueFoundry's under /api/llm, OpenAI's (and Nebius's) under /v1."""
    return "truefoundry" if request.scope["path"].startswith("/api/llm/") else "openai"


Flavor = Annotated[str, Depends(_flavor)]
# Room for the multipart framing around the file's own bytes.
_FORM_OVERHEAD = 64 * 1024


class _Sink:
    """Limits bytes on their way to a pending blob, and hashes them (for idempotency)."""

    def __init__(self, write, blob):
        self._write, self.blob = write, blob
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._write(self.blob, data)
        self.digest.update(data)


def _too_large_early(request: Request, limit: int) -> None:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + _FORM_OVERHEAD:
        raise TooLarge(f"The request is {length} bytes; files may be at most {limit} bytes.", param="file")


async def _receive_one_file(request: Request, begin, write, field: str):
    """Stream the one file part named `field` into a pending blob; returns
    (form, id, blob, filename, sha256 of the bytes)."""
    opened: list[tuple[str, Any, str, _Sink]] = []

    def open_sink(name: str, filename: str):
        if name != field:
            raise InvalidRequest(f"Unexpected file part '{name}'; send the file as '{field}'.", param=name)
        if opened:
            raise InvalidRequest(f"Send exactly one '{field}' part.", param=field)
        obj_id, blob = begin()
        sink = _Sink(write, blob)
        opened.append((obj_id, blob, filename, sink))
        return sink

    try:
        form = await read_multipart(request, open_sink)
        if not opened:
            raise InvalidRequest(
                f"Missing required parameter: '{field}'.", param=field, code="missing_required_parameter"
            )
    except BaseException:
        for _, blob, _, _ in opened:
            blob.abort()
        raise
    obj_id, blob, filename, sink = opened[0]
    return form, obj_id, blob, filename, sink.digest.hexdigest()


# -- files ------------------------------------------------------------------------------------
@router.post(
    "/files",
    openapi_extra=multipart_request(
        ["file"], {"purpose": {"type": "string"}, "expires_after[seconds]": {"type": "string"}}, ["file", "purpose"]
    ),
)
async def create_file(request: Request, org: OrgId, svc: Svc) -> dict[str, Any]:
    _too_large_early(request, svc.files.max_bytes)
    form, file_id, blob, filename, digest = await _receive_one_file(request, svc.files.begin, svc.files.write, "file")
    try:
        purpose = form.fields.get("purpose")
        if not purpose:
            raise InvalidRequest(
                "Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter"
            )
        expires = form.fields.get("expires_after[seconds]")
        expires_after = None
        if expires is not None:
            if not expires.isdigit() or not 3600 <= int(expires) <= 2_592_000:
                raise InvalidRequest(
                    "expires_after.seconds must be between 3600 and 2592000.", param="expires_after.seconds"
                )
            expires_after = int(expires)

        async def create() -> dict[str, Any]:
            info = await run_in_threadpool(
                svc.files.finish, org, file_id, blob, filename=filename, purpose=purpose, expires_after=expires_after
            )
            return render.file(info)

        request_hash = hashlib.sha256(f"{purpose}\0{filename}\0{expires_after}\0{digest}".encode()).hexdigest()
        return await once_per_key(request, svc, org, "files", request_hash, create, on_replay=blob.abort)
    except BaseException:
        blob.abort()
        raise


@router.get("/files")
def list_files(
    org: OrgId,
    svc: Svc,
    after: str | None = None,
    limit: int = Query(10000, ge=1, le=MAX_LIMIT),
    order: str = "desc",
    purpose: str | None = None,
) -> dict[str, Any]:
    return render.page(svc.files.list(org, after=after, limit=limit, order=order, purpose=purpose), render.file)


add_file_routes(router, render.file)  # retrieve, content, delete (dialects/common/file_routes.py)


# -- uploads ----------------------------------------------------------------------------------
@router.post("/uploads", openapi_extra=json_request(CreateUploadRequest))
async def create_upload(request: Request, org: OrgId, svc: Svc) -> dict[str, Any]:
    req = await json_body(request, CreateUploadRequest)
    info = await run_in_threadpool(
        svc.files.create_upload,
        org,
        filename=req.filename,
        purpose=req.purpose,
        bytes=req.bytes,
        mime_type=req.mime_type,
    )
    return render.upload(info)


@router.post("/uploads/{upload_id}/parts", openapi_extra=multipart_request(["data"]))
async def add_upload_part(upload_id: str, request: Request, org: OrgId, svc: Svc) -> dict[str, Any]:
    begin = lambda: svc.files.begin_part(org, upload_id)  # noqa: E731
    _, part_id, blob, _, _ = await _receive_one_file(request, begin, svc.files.write_part, "data")
    try:
        info = await run_in_threadpool(svc.files.finish_part, org, upload_id, part_id, blob)
    except BaseException:
        with contextlib.suppress(Exception):
            blob.abort()
        raise
    return render.upload_part(info)


@router.post("/uploads/{upload_id}/complete", openapi_extra=json_request(CompleteUploadRequest))
async def complete_upload(upload_id: str, request: Request, org: OrgId, svc: Svc) -> dict[str, Any]:
    req = await json_body(request, CompleteUploadRequest)
    info = await run_in_threadpool(svc.files.complete_upload, org, upload_id, req.part_ids, req.md5)
    return render.upload(info)


@router.post("/uploads/{upload_id}/cancel")
def cancel_upload(upload_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    return render.upload(svc.files.cancel_upload(org, upload_id))


# -- fine-tuning jobs -------------------------------------------------------------------------
@router.post("/fine_tuning/jobs", openapi_extra=json_request(CreateJobRequest))
async def create_job(request: Request, org: OrgId, svc: Svc, flavor: Flavor) -> dict[str, Any]:
    req = await json_body(request, CreateJobRequest)
    spec, secrets = tr.to_spec(req)
    if spec.reward is not None:
        GraderService(svc.settings).validate(spec.reward.graders[0], "method.reinforcement.grader")
    on_create = None
    if req.polytune_eval is not None and svc.eval_runs is not None:
        runs = svc.eval_runs
        after = await run_in_threadpool(runs.check_after_job, org, req.polytune_eval, spec.model)
        on_create = lambda s, job_id: runs.add_after_job(s, org, after, job_id)  # noqa: E731

    async def create() -> dict[str, Any]:
        try:
            job = await run_in_threadpool(svc.jobs.create, org, spec, secrets_=secrets, on_create=on_create)
        except InvalidRequest as e:
            e.param = tr.wire_param(e.param, req)
            raise
        return render.job(job, flavor)

    request_hash = hashlib.sha256(await request.body()).hexdigest()
    return await once_per_key(request, svc, org, "fine_tuning.jobs", request_hash, create)


def _metadata_filter(request: Request) -> dict[str, str]:
    out = {}
    for key, value in request.query_params.multi_items():
        if key.startswith("metadata[") and key.endswith("]"):
            out[key[len("metadata[") : -1]] = value
    return out


@router.get("/fine_tuning/jobs")
def list_jobs(
    request: Request,
    org: OrgId,
    svc: Svc,
    flavor: Flavor,
    after: str | None = None,
    limit: int = Query(20, ge=1, le=MAX_LIMIT),
) -> dict[str, Any]:
    return render.page(
        svc.jobs.list(org, after=after, limit=limit, metadata=_metadata_filter(request)),
        lambda j: render.job(j, flavor),
    )


@router.get("/fine_tuning/jobs/{job_id}")
def retrieve_job(job_id: str, org: OrgId, svc: Svc, flavor: Flavor) -> dict[str, Any]:
    return render.job(svc.jobs.get(org, job_id), flavor)


@router.post("/fine_tuning/jobs/{job_id}/cancel")
def cancel_job(job_id: str, org: OrgId, svc: Svc, flavor: Flavor) -> dict[str, Any]:
    return render.job(svc.jobs.cancel(org, job_id), flavor)


@router.post("/fine_tuning/jobs/{job_id}/pause")
def pause_job(job_id: str, org: OrgId, svc: Svc, flavor: Flavor) -> dict[str, Any]:
    return render.job(svc.jobs.pause(org, job_id), flavor)


@router.post("/fine_tuning/jobs/{job_id}/resume")
def resume_job(job_id: str, org: OrgId, svc: Svc, flavor: Flavor) -> dict[str, Any]:
    return render.job(svc.jobs.resume(org, job_id), flavor)


@router.get("/fine_tuning/jobs/{job_id}/events")
def list_events(
    job_id: str, org: OrgId, svc: Svc, after: str | None = None, limit: int = Query(20, ge=1, le=MAX_LIMIT)
) -> dict[str, Any]:
    return render.page(svc.jobs.events(org, job_id, after=after, limit=limit), render.event)


@router.get("/fine_tuning/jobs/{job_id}/checkpoints")
def list_checkpoints(
    job_id: str, org: OrgId, svc: Svc, after: str | None = None, limit: int = Query(10, ge=1, le=MAX_LIMIT)
) -> dict[str, Any]:
    return render.page(svc.jobs.checkpoints(org, job_id, after=after, limit=limit), render.checkpoint)


@router.get("/fine_tuning/jobs/{job_id}/checkpoints/{checkpoint_id}")
def retrieve_checkpoint(job_id: str, checkpoint_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    """Nebius's extra route (raw HTTP in its docs): one checkpoint with its result_files."""
    return render.checkpoint(svc.jobs.checkpoint(org, job_id, checkpoint_id))


# -- models -----------------------------------------------------------------------------------
@router.get("/models")
def list_models(org: OrgId, svc: Svc) -> dict[str, Any]:
    return {"object": "list", "data": [render.model(m) for m in svc.models.list(org)]}


@router.get("/models/{model_id:path}")
def retrieve_model(model_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    return render.model(svc.models.get(org, model_id))
