"""OpenAI's grader routes (`client.fine_tuning.alpha.graders.run / .validate`): thin."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from polytune.dialects.common.body import json_body
from polytune.dialects.common.openapi_doc import json_request
from polytune.dialects.common.deps import OrgId, Svc, api_key
from polytune.services.graders import GraderService

from . import render
from .protocol import GraderRunRequest, GraderValidateRequest

router = APIRouter()


@router.post("/fine_tuning/alpha/graders/run", openapi_extra=json_request(GraderRunRequest))
async def run_grader(request: Request, org: OrgId, svc: Svc) -> dict[str, Any]:
    req = await json_body(request, GraderRunRequest)
    # Model graders call this server's own API (its configured internal address, never the
    # Host header) with the caller's key, unless the server is configured with another endpoint.
    service = GraderService(svc.settings, api_key=api_key(request))
    # Bounded per organization and in all, on the graders' own threads (services/grader_runs.py).
    grader, result, seconds = await svc.grader_runs.run(org, service.run, req.grader, req.model_sample, req.item)
    return render.grader_run(grader, result, seconds)


@router.post("/fine_tuning/alpha/graders/validate", openapi_extra=json_request(GraderValidateRequest))
async def validate_grader(request: Request, org: OrgId, svc: Svc) -> dict[str, Any]:
    req = await json_body(request, GraderValidateRequest)
    return {"grader": GraderService(svc.settings).validate(req.grader)}
