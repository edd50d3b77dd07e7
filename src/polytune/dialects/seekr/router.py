"""SeekrFlow routes: thin. Parse, call a service, render. Mounted at the root: the SDK strips a
trailing /vN from its base URL and asks for v1/flow/... on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from polytune.dialects.common.deps import OrgId, Svc
from polytune.dialects.common.file_routes import add_file_routes
from polytune.dialects.common.multipart import read_multipart
from polytune.dialects.common.openapi_doc import multipart_request
from polytune.dialects.common.params import MAX_ID, MAX_LIMIT, MAX_OFFSET
from polytune.domain.errors import InvalidRequest
from polytune.domain.objects import Page
from polytune.services.files import check_purpose
from polytune.services.pretrain import text_training_file

from . import render
from . import translate as tr
from .errors import SeekrRoute, body_fields
from .listing import file_window
from .protocol import FinetuneRequestIn, ProjectIn, RenameIn, ValidateMetadataIn

router = APIRouter(prefix="/v1/flow", route_class=SeekrRoute)
_MAX_FILENAME_BYTES = 1024


class _BlobSink:
    def __init__(self, write, blob):
        self._write, self.blob = write, blob

    def write(self, data: bytes) -> None:
        self._write(self.blob, data)


class _NameSink:
    """The SDK sends the file's name as a second file part, `filename`, whose content is the name."""

    def __init__(self):
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data.extend(data)
        if len(self.data) > _MAX_FILENAME_BYTES:
            raise InvalidRequest("The 'filename' part is too long.", param="filename")


def _every(fetch: Callable[[str | None], Page]) -> Iterator[Any]:
    """All items of a cursor-paginated service list, page by page."""
    after = None
    while True:
        page = fetch(after)
        yield from page.data
        if not page.has_more or not page.data:
            return
        after = page.data[-1].id


# -- files ------------------------------------------------------------------------------------
async def _receive_files(request: Request, org: str, svc, *, many: bool) -> list:
    """Stream every `files` part into its own pending blob, then record them all (or none)."""
    opened: list[tuple[str, Any, str]] = []
    name = _NameSink()

    def open_sink(field: str, filename: str):
        if field == "filename":
            return name
        if field != "files":
            raise InvalidRequest(f"Unexpected file part '{field}'; send files as 'files'.", param="files")
        if opened and not many:
            raise InvalidRequest("Send one 'files' part here; PUT /v1/flow/bulk_files takes several.", param="files")
        file_id, blob = svc.files.begin()
        opened.append((file_id, blob, filename))
        return _BlobSink(svc.files.write, blob)

    try:
        with body_fields(tr.upload_loc):
            form = await read_multipart(request, open_sink)
            if not opened:
                raise InvalidRequest("Missing required part: 'files'.", param="files")
            purpose = form.fields.get("purpose") or "fine-tune"
            check_purpose(purpose, tr.PURPOSES)
            given_name = name.data.decode("utf-8", "replace").strip() if not many else ""
            infos = []
            for i, (file_id, blob, filename) in enumerate(opened):
                infos.append(
                    await run_in_threadpool(
                        svc.files.finish,
                        org,
                        file_id,
                        blob,
                        filename=(given_name or filename).rsplit("/", 1)[-1],
                        purpose=purpose,
                        purposes=tr.PURPOSES,
                    )
                )
                opened[i] = (file_id, None, filename)
    except BaseException:
        for _, blob, _ in opened:
            if blob is not None:
                blob.abort()
        raise
    return infos


@router.put("/files", openapi_extra=multipart_request(["files"], {"purpose": {"type": "string"}}))
async def upload_file(request: Request, org: OrgId, svc: Svc) -> dict[str, Any]:
    (info,) = await _receive_files(request, org, svc, many=False)
    return render.file(info)


@router.put("/bulk_files", openapi_extra=multipart_request(["files"], {"purpose": {"type": "string"}}))
async def bulk_upload(request: Request, org: OrgId, svc: Svc) -> list[dict[str, Any]]:
    return [render.file(info) for info in await _receive_files(request, org, svc, many=True)]


@router.post("/files/validate_metadata")
def validate_metadata(body: ValidateMetadataIn, org: OrgId, svc: Svc) -> dict[str, Any]:
    """The SDK's check before an alignment upload: is this kind and size of file accepted?"""
    errors = []
    if body.purpose not in tr.PURPOSES:
        errors.append(f"purpose must be one of {list(tr.PURPOSES)}")
    if body.suffix.lstrip(".").lower() not in tr.FILE_TYPES:
        errors.append(f"file type '{body.suffix}' is not accepted; accepted: {list(tr.FILE_TYPES)}")
    if body.size > svc.files.max_bytes:
        errors.append(f"size {body.size} is over the limit of {svc.files.max_bytes} bytes")
    return {"is_valid": not errors, "errors": "; ".join(errors) or None}


@router.get("/files")
def list_files(
    org: OrgId,
    svc: Svc,
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    sort_by: str = "created_at",
    sort_order: str = "desc",
    purpose: str | None = None,
) -> dict[str, Any]:
    page = file_window(
        svc.files, org, offset=offset, limit=limit, sort_by=sort_by, sort_order=sort_order, purpose=purpose
    )
    return {"object": "list", "data": [render.file(f) for f in page.data], "has_more": page.has_more}


add_file_routes(router, render.file)  # retrieve, content, delete (dialects/common/file_routes.py)


@router.put("/files/{file_id}/rename")
def rename_file(file_id: str, body: RenameIn, org: OrgId, svc: Svc) -> dict[str, Any]:
    with body_fields(tr.upload_loc):
        return render.file(svc.files.rename(org, file_id, body.new_filename))


# -- projects ---------------------------------------------------------------------------------
@router.post("/projects")
def create_project(body: ProjectIn, org: OrgId, svc: Svc) -> dict[str, Any]:
    with body_fields(lambda p: (p,) if p in ("name", "description") else None):
        return render.project(svc.projects.create(org, name=body.name, description=body.description))


@router.get("/projects")
def list_projects(
    org: OrgId, svc: Svc, skip: int = Query(0, ge=0, le=MAX_OFFSET), limit: int = Query(100, ge=1, le=MAX_LIMIT)
) -> dict[str, Any]:
    return {"data": [render.project(p, with_runs=True) for p in svc.projects.list(org, skip=skip, limit=limit)]}


@router.get("/projects/{project_id}")
def retrieve_project(project_id: Annotated[int, Path(ge=1, le=MAX_ID)], org: OrgId, svc: Svc) -> dict[str, Any]:
    return render.project(svc.projects.get(org, project_id))


# -- models -----------------------------------------------------------------------------------
@router.get("/models")
def list_models(org: OrgId, svc: Svc) -> dict[str, Any]:
    return {"object": "list", "data": [render.model(m) for m in svc.models.list(org)]}


# -- fine-tunes -------------------------------------------------------------------------------
def _create(body: FinetuneRequestIn, org: str, svc) -> dict[str, Any]:
    with body_fields(tr.create_loc):
        # A checkpoint named as the model (services/checkpoint_starts.py): its base model's context.
        model = body.training_config.model
        context = svc.jobs.catalog.get(svc.starts.base_model(org, model) if svc.starts else model).max_length
        made: list[str] = []  # a pre_train job's {"text"} files, removed again if creation fails
        try:
            sent = None
            if body.training_config.pre_train:

                def convert(file_id: str, param: str) -> str:
                    made.append(text_training_file(svc.files, org, file_id, param))
                    return made[-1]

                body, sent = tr.with_text_files(body, convert)
            spec = tr.to_spec(body, model_max_length=context, sent_files=sent)
            on_create = _eval_after(body, spec.model, org, svc)
            job = svc.jobs.create(
                org, spec, project_id=body.project_id, warnings=tr.warnings(body), on_create=on_create
            )
        except BaseException:
            for file_id in made:
                svc.files.delete(org, file_id)
            raise
    return render.job(job)


def _eval_after(body: FinetuneRequestIn, model: str, org: str, svc) -> Callable[[Any, str], None] | None:
    """training_config.polytune_eval: the eval run the job brings (services/eval_runs.py)."""
    request = body.training_config.polytune_eval
    if request is None or svc.eval_runs is None:
        return None
    runs = svc.eval_runs
    after = runs.check_after_job(org, request, model, where="training_config.polytune_eval")
    return lambda s, job_id: runs.add_after_job(s, org, after, job_id)


# The sync client posts to /fine-tune, the async client to /fine-tunes.
@router.post("/fine-tune")
def create_fine_tune(body: FinetuneRequestIn, org: OrgId, svc: Svc) -> dict[str, Any]:
    return _create(body, org, svc)


@router.post("/fine-tunes")
def create_fine_tunes(body: FinetuneRequestIn, org: OrgId, svc: Svc) -> dict[str, Any]:
    return _create(body, org, svc)


@router.get("/fine-tunes")
def list_fine_tunes(org: OrgId, svc: Svc) -> dict[str, Any]:
    jobs = _every(lambda after: svc.jobs.list(org, after=after, limit=1000))
    return {"object": "list", "data": [render.job(j) for j in jobs if render.speaks(j)]}


@router.get("/fine-tunes/{job_id}")
def retrieve_fine_tune(job_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    return render.job(svc.jobs.get(org, job_id))


# The sync client cancels with PUT, the async client with POST.
@router.put("/fine-tunes/{job_id}/cancel")
@router.post("/fine-tunes/{job_id}/cancel")
def cancel_fine_tune(job_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    return render.job(svc.jobs.cancel(org, job_id))


@router.get("/fine-tunes/{job_id}/events")
def list_events(job_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    job = svc.jobs.get(org, job_id)
    items = list(_every(lambda after: svc.jobs.events(org, job_id, after=after, limit=1000)))
    return render.events(items[::-1], job)  # oldest first, as a log reads


@router.get("/fine-tunes/{job_id}/promote-model")
def promote_model(job_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    event = svc.jobs.record_promotion(org, job_id, promoted=True)
    return render.events([event], svc.jobs.get(org, job_id))


@router.get("/fine-tunes/{job_id}/demote-model")
def demote_model(job_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
    event = svc.jobs.record_promotion(org, job_id, promoted=False)
    return render.events([event], svc.jobs.get(org, job_id))
