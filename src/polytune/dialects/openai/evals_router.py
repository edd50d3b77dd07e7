"""OpenAI's Evals API (`client.evals`, `client.evals.runs`, `client.evals.runs.output_items`):
thin. Parse, call the eval services, render (evals_translate.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from polytune.dialects.common.body import json_body
from polytune.dialects.common.deps import OrgId, Svc, api_key
from polytune.dialects.common.openapi_doc import json_request
from polytune.dialects.common.params import MAX_LIMIT
from polytune.services.eval_runs import EvalRunService
from polytune.services.evals import EvalService

from . import evals_translate as tr
from .evals_protocol import CreateEvalRequest, CreateRunRequest, UpdateEvalRequest
from .render import page

router = APIRouter()


async def _evals(svc: Svc) -> EvalService:
    assert svc.evals is not None  # built with the others (app.py:build_services)
    return svc.evals


async def _runs(svc: Svc) -> EvalRunService:
    assert svc.eval_runs is not None
    return svc.eval_runs


Evals = Annotated[EvalService, Depends(_evals)]
Runs = Annotated[EvalRunService, Depends(_runs)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _base(request: Request) -> str:
    """The dashboard's address as the caller reached this server (report_url)."""
    return str(request.base_url)


# -- evals ------------------------------------------------------------------------------------
@router.post("/evals", openapi_extra=json_request(CreateEvalRequest))
async def create_eval(request: Request, org: OrgId, evals: Evals) -> dict[str, Any]:
    req = await json_body(request, CreateEvalRequest)
    created = await run_in_threadpool(
        evals.create,
        org,
        name=req.name,
        data_source_config=req.data_source_config,
        testing_criteria=req.testing_criteria,
        metadata=req.metadata,
    )
    return tr.evaluation(created)


@router.get("/evals")
def list_evals(
    org: OrgId,
    evals: Evals,
    after: str | None = None,
    limit: Limit = 20,
    order: str = "asc",
    order_by: str = "created_at",
) -> dict[str, Any]:
    return page(evals.list(org, after=after, limit=limit, order=order, order_by=order_by), tr.evaluation)


@router.get("/evals/{eval_id}")
def get_eval(eval_id: str, org: OrgId, evals: Evals) -> dict[str, Any]:
    return tr.evaluation(evals.get(org, eval_id))


@router.post("/evals/{eval_id}", openapi_extra=json_request(UpdateEvalRequest))
async def update_eval(eval_id: str, request: Request, org: OrgId, evals: Evals) -> dict[str, Any]:
    req = await json_body(request, UpdateEvalRequest)
    return tr.evaluation(await run_in_threadpool(evals.update, org, eval_id, name=req.name, metadata=req.metadata))


@router.delete("/evals/{eval_id}")
def delete_eval(eval_id: str, org: OrgId, evals: Evals) -> dict[str, Any]:
    return tr.deleted("eval_id", evals.delete(org, eval_id), "eval.deleted")


# -- runs -------------------------------------------------------------------------------------
@router.post("/evals/{eval_id}/runs", openapi_extra=json_request(CreateRunRequest))
async def create_run(eval_id: str, request: Request, org: OrgId, runs: Runs) -> dict[str, Any]:
    req = await json_body(request, CreateRunRequest)
    # Model graders call this server's API with the caller's key (as graders/run does).
    created = await run_in_threadpool(
        runs.create,
        org,
        eval_id,
        data_source=req.data_source,
        name=req.name,
        metadata=req.metadata,
        api_key=api_key(request),
    )
    return tr.run(created, _base(request))


@router.get("/evals/{eval_id}/runs")
def list_runs(
    eval_id: str,
    request: Request,
    org: OrgId,
    runs: Runs,
    after: str | None = None,
    limit: Limit = 20,
    order: str = "asc",
    status: str | None = None,
) -> dict[str, Any]:
    base = _base(request)
    return page(
        runs.list(org, eval_id, after=after, limit=limit, order=order, status=status), lambda r: tr.run(r, base)
    )


@router.get("/evals/{eval_id}/runs/{run_id}")
def get_run(eval_id: str, run_id: str, request: Request, org: OrgId, runs: Runs) -> dict[str, Any]:
    return tr.run(runs.get(org, eval_id, run_id), _base(request))


@router.post("/evals/{eval_id}/runs/{run_id}/cancel")
def cancel_run(eval_id: str, run_id: str, request: Request, org: OrgId, runs: Runs) -> dict[str, Any]:
    return tr.run(runs.cancel(org, eval_id, run_id), _base(request))


@router.delete("/evals/{eval_id}/runs/{run_id}")
def delete_run(eval_id: str, run_id: str, org: OrgId, runs: Runs) -> dict[str, Any]:
    return tr.deleted("run_id", runs.delete(org, eval_id, run_id), "eval.run.deleted")


# -- output items -----------------------------------------------------------------------------
@router.get("/evals/{eval_id}/runs/{run_id}/output_items")
def list_output_items(
    eval_id: str,
    run_id: str,
    org: OrgId,
    runs: Runs,
    after: str | None = None,
    limit: Limit = 20,
    order: str = "asc",
    status: str | None = None,
) -> dict[str, Any]:
    return page(runs.items(org, eval_id, run_id, after=after, limit=limit, order=order, status=status), tr.output_item)


@router.get("/evals/{eval_id}/runs/{run_id}/output_items/{output_item_id}")
def get_output_item(eval_id: str, run_id: str, output_item_id: str, org: OrgId, runs: Runs) -> dict[str, Any]:
    return tr.output_item(runs.item(org, eval_id, run_id, output_item_id))
