"""OpenAI's grader routes (`client.fine_tuning.alpha.graders.run / .validate`): thin."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from polytune.dialects.common.body import json_body
from polytune.dialects.common.openapi_doc import json_request
from polytune.dialects.common.deps import OrgId, Svc, api_key
from polytune.services.graders import GraderService

from . import translate as tr
from .protocol import GraderRunRequest, GraderValidateRequest

router = APIRouter()
_RUN = "/fine_tuning/alpha/graders/run"


@router.post(_RUN, openapi_extra=json_request(GraderRunRequest))
async def run_grader(request: Request, org: OrgId, svc: Svc) -> dict[str, Any]:
    req = await json_body(request, GraderRunRequest)
    # Model graders call this same API (the prefix the request came in on) with the caller's
    # key, unless the server is configured with another endpoint.
    own = str(request.url).split(_RUN)[0]
    service = GraderService(svc.settings, own_base_url=own, api_key=api_key(request))
    grader, result, seconds = await run_in_threadpool(service.run, req.grader, req.model_sample, req.item)
    return tr.grader_run(grader, result, seconds)


@router.post("/fine_tuning/alpha/graders/validate", openapi_extra=json_request(GraderValidateRequest))
async def validate_grader(request: Request, org: OrgId, svc: Svc) -> dict[str, Any]:
    req = await json_body(request, GraderValidateRequest)
    return {"grader": GraderService(svc.settings).validate(req.grader)}
