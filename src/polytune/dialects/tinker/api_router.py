"""The Tinker API under /api/v1 (what the official `tinker` SDK calls): thin routes that decode
(protocol.py, serving.py), call the primitives service, and answer futures."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from polytune.dialects.common.deps import OrgId, Svc
from polytune.domain.errors import DomainError, InvalidRequest
from polytune.services import primitive_checkpoints as checkpoints
from polytune.services.primitive_run import RunBusy
from polytune.services.primitives import PrimitiveService

from . import protocol as w
from . import serving

router = APIRouter(prefix="/api/v1", tags=["tinker"])
PROTOBUF = "application/x-protobuf"


async def _primitives(services: Svc) -> PrimitiveService:
    assert services.primitives is not None  # built with the others (app.py:build_services)
    return services.primitives


Prims = Annotated[PrimitiveService, Depends(_primitives)]


def _future(request_id: str, model_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"request_id": request_id, "model_id": model_id, **extra}


# -- service ------------------------------------------------------------------------------------
@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/get_server_capabilities")
def capabilities(org_id: OrgId, services: Svc, prims: Prims) -> dict[str, Any]:
    models = [
        {"model_name": e.name, "max_context_length": e.max_length, "trainable": True, "sampleable": True}
        for e in prims.catalog.list()
        if e.kind == "text"
    ]
    return {"supported_models": models}


@router.post("/client/config")
@router.post("/client/dynamic_config")
def client_config(org_id: OrgId) -> dict[str, Any]:
    return w.client_config()


@router.post("/telemetry")
def telemetry(org_id: OrgId) -> dict[str, str]:
    return {"status": "accepted"}  # the SDK's own diagnostics: nothing here keeps them


@router.post("/create_session")
def create_session(body: w.CreateSession, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    return {"type": "create_session", "session_id": prims.create_session(org_id)}


@router.post("/session_heartbeat")
def session_heartbeat(body: w.SessionRef, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    prims.heartbeat(org_id, body.session_id)
    return {"type": "session_heartbeat"}


@router.post("/sessions/{session_id}/finish")
async def finish_session(session_id: str, org_id: OrgId, prims: Prims) -> None:
    await run_in_threadpool(prims.finish_session, org_id, session_id)


# -- training -----------------------------------------------------------------------------------
@router.post("/create_model")
async def create_model(body: w.CreateModel, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    if body.optimizer_config.type != "adamw":
        raise InvalidRequest(
            f"Optimizer '{body.optimizer_config.type}' is not available here; use adamw.", param="optimizer_config.type"
        )
    run = await run_in_threadpool(
        prims.create_run,
        org_id,
        body.session_id,
        body.model_seq_id,
        body.base_model,
        serving.lora_settings(body.lora_config),
    )
    return _future(prims.track(org_id, "create_model", prims.loaded(run)), run.model_id)


@router.post("/get_info")
def get_info(body: w.ModelRef, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    run = prims.get_info(org_id, body.model_id)
    # The tokenizer is the catalog model's own folder: the SDK loads it with AutoTokenizer, offline.
    return {
        "type": "get_info",
        "model_id": run.model_id,
        "model_name": run.base_model,
        "is_lora": True,
        "lora_rank": run.lora.rank,
        "optimizer_config": {"type": "adamw"},
        "model_data": {"model_name": run.base_model, "tokenizer_id": run.base_dir, "arch": "causal_lm"},
    }


@router.post("/create_custom_loss")
async def create_custom_loss(body: w.CreateCustomLoss, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    prims.check_session(org_id, body.session_id)
    if body.graph.format != 1:
        raise InvalidRequest(f"Custom loss graph format {body.graph.format} is unknown here (1).", param="graph.format")
    inputs = [(i.name, i.rank) for i in body.inputs]
    loss_id = prims.losses.create(org_id, body.session_id, body.name, inputs, body.graph.nodes)
    done: Future = Future()
    done.set_result(loss_id)
    return _future(prims.track(org_id, "create_custom_loss", done))


@router.post("/forward_backward")
async def forward_backward(request: Request, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    if PROTOBUF not in request.headers.get("content-type", ""):
        raise InvalidRequest(
            f"forward_backward takes a protobuf body (Content-Type: {PROTOBUF}).", param="content-type"
        )
    call = serving.decode_forward_backward(await request.body())
    args = (org_id, call.model_id, call.seq_id, call.data, call.loss_fn, call.config, call.forward_only)
    work = await _on_loop_or_off(prims.forward_backward, *args)
    return _future(prims.track(org_id, "forward_backward", work), call.model_id)


@router.post("/optim_step")
async def optim_step(body: w.OptimStep, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    args = (org_id, body.model_id, body.seq_id, serving.adam_settings(body))
    work = await _on_loop_or_off(prims.optim_step, *args)
    return _future(prims.track(org_id, "optim_step", work), body.model_id)


async def _on_loop_or_off(submit: Callable[..., Future], *args: Any) -> Future:
    """A training call's submission, on the event loop while its run is loaded (a queue put: a
    thread hand-off each way would be most of a small model's per-call overhead), else off it:
    a released run is loaded back inside (seconds), under the run's lock."""
    try:
        return submit(*args, wait=False)
    except RunBusy:
        return await run_in_threadpool(submit, *args)


@router.post("/save_weights")
async def save_weights(body: w.SaveWeights, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    work = await run_in_threadpool(prims.save_state, org_id, body.model_id, body.seq_id, body.path)
    return _future(prims.track(org_id, "save_weights", work), body.model_id)


@router.post("/save_weights_for_sampler")
async def save_weights_for_sampler(body: w.SaveWeights, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    work = await run_in_threadpool(
        lambda: prims.save_for_sampler(org_id, body.model_id, body.seq_id, body.path, with_session=body.path is None)
    )
    return _future(prims.track(org_id, "save_weights_for_sampler", work), body.model_id)


@router.post("/save_weights_external")
async def save_weights_external(body: w.SaveWeightsExternal, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    work = await run_in_threadpool(
        prims.save_external, org_id, body.model_id, body.seq_id, body.path, bool(body.age_encryption_recipients)
    )
    return _future(prims.track(org_id, "save_weights_external", work), body.model_id)


@router.post("/load_weights")
async def load_weights(body: w.LoadWeights, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    if body.session_id is not None:
        if body.model_seq_id is None:
            raise InvalidRequest("model_seq_id is required with session_id.", param="model_seq_id")
        model_id, work = await run_in_threadpool(
            prims.create_run_from_state, org_id, body.session_id, body.model_seq_id, body.path, body.optimizer
        )
        return _future(prims.track(org_id, "load_weights", work), model_id)
    if body.model_id is None:
        raise InvalidRequest("load_weights needs model_id (or session_id and model_seq_id).", param="model_id")
    work = await run_in_threadpool(prims.load_state, org_id, body.model_id, body.seq_id, body.path, body.optimizer)
    return _future(prims.track(org_id, "load_weights", work), body.model_id)


@router.post("/unload_model")
async def unload_model(body: w.ModelRef, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    run = await run_in_threadpool(prims.unload, org_id, body.model_id)
    return {"type": "unload_model", "model_id": run.model_id}


# -- sampling -----------------------------------------------------------------------------------
@router.post("/create_sampling_session")
async def create_sampling_session(body: w.CreateSamplingSession, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    prims.check_session(org_id, body.session_id)
    session_id = await run_in_threadpool(prims.create_sampling_session, org_id, body.model_path, body.base_model)
    return {"type": "create_sampling_session", "sampling_session_id": session_id}


@router.get("/samplers/{sampler_id}")
def get_sampler(sampler_id: str, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    session = prims.sampling_session(org_id, sampler_id)
    return {"sampler_id": sampler_id, "base_model": session.base_model, "model_path": session.model_path}


@router.post("/asample")
async def asample(body: w.Sample, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    if body.sampling_session_id is not None:
        session = prims.sampling_session(org_id, body.sampling_session_id)
    else:
        sid = await run_in_threadpool(prims.create_sampling_session, org_id, body.model_path, body.base_model)
        session = prims.sampling_session(org_id, sid)
    prompt, settings = serving.prompt_tokens(body), serving.sample_settings(body)
    prims.check_sample(session, prompt, body.num_samples, settings)
    request_id = prims.track(org_id, "sample", prims.sample(session, prompt, body.num_samples, settings))
    return _future(request_id, sample_sequence_ids=[f"{request_id}:{i}" for i in range(body.num_samples)])


# -- training runs and their checkpoints (RestClient) ----------------------------------------------
@router.get("/training_runs")
def list_training_runs(org_id: OrgId, prims: Prims, limit: int = 20, offset: int = 0) -> dict[str, Any]:
    if not 1 <= limit <= 1000 or offset < 0:
        raise InvalidRequest("limit must be 1..1000 and offset >= 0.", param="limit")
    runs, total = prims.runs.list_runs(org_id, limit, offset)
    return {"training_runs": runs, "cursor": {"offset": offset, "limit": limit, "total_count": total}}


@router.get("/training_runs/{run_id}")
def get_training_run(run_id: str, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    return prims.runs.describe(org_id, run_id)


@router.get("/training_runs/{run_id}/checkpoints")
def list_checkpoints(run_id: str, org_id: OrgId, prims: Prims) -> dict[str, Any]:
    return {"checkpoints": prims.runs.checkpoints(prims.runs.job_id(org_id, run_id))}


@router.get("/training_runs/{run_id}/checkpoints/{checkpoint_id:path}/external_weights_urls")
def external_weights_urls(
    run_id: str, checkpoint_id: str, request: Request, org_id: OrgId, prims: Prims
) -> dict[str, Any]:
    base_url = str(request.base_url).rstrip("/")
    urls, expires = checkpoints.signed_urls(prims.runs, org_id, run_id, checkpoint_id, base_url)
    return {"urls": urls, "expires": datetime.fromtimestamp(expires, tz=UTC).isoformat()}


@router.put("/training_runs/{run_id}/checkpoints/{checkpoint_id:path}/ttl")
def set_checkpoint_ttl(run_id: str, checkpoint_id: str, body: w.CheckpointTtl, org_id: OrgId, prims: Prims) -> None:
    checkpoints.check_ttl(prims.runs, org_id, run_id, checkpoint_id, body.ttl_seconds)


@router.delete("/training_runs/{run_id}/checkpoints/{checkpoint_id:path}")
def delete_checkpoint(run_id: str, checkpoint_id: str, org_id: OrgId, prims: Prims) -> None:
    checkpoints.delete(prims.runs, org_id, run_id, checkpoint_id)


@router.get("/checkpoint_files/{rel:path}")
def checkpoint_file(rel: str, prims: Prims, expires: int = 0, signature: str = "") -> FileResponse:
    # No key: the signature is the credential (the SDK's CLI fetches these with a plain GET).
    return FileResponse(prims.runs.urls.open(rel, expires, signature))


# -- futures ------------------------------------------------------------------------------------
@router.post("/retrieve_future")
async def retrieve_future(body: w.RetrieveFuture, org_id: OrgId, prims: Prims) -> Response:
    done = await prims.retrieve(org_id, body.request_id)
    if done is None:
        return JSONResponse(w.try_again(body.request_id))
    kind, future = done
    if future.cancelled():
        return JSONResponse(w.failed("The training run ended before this call ran.", user_error=True))
    error = future.exception()
    if isinstance(error, DomainError):
        return JSONResponse(w.failed(error.message, user_error=True))
    if error is not None:  # the call failed in the worker: its future says so, the request did not
        return JSONResponse(w.failed(f"{type(error).__name__}: {error}", user_error=False))
    return _render(kind, future.result())


@router.post("/cancel_future")
def cancel_future(org_id: OrgId) -> dict[str, Any]:
    return {}  # sampling requests are short here; they run to their end


def _render(kind: str, result: Any) -> Response:
    if kind == "forward_backward":
        return Response(serving.encode_forward_backward(result), media_type=PROTOBUF)
    if kind == "sample":
        return Response(serving.encode_samples(result), media_type=PROTOBUF)
    if kind == "create_model":
        return JSONResponse({"type": "create_model", "model_id": result})
    if kind == "optim_step":
        return JSONResponse({"metrics": result})
    if kind == "save_weights":
        return JSONResponse({"type": "save_weights", "path": result})
    if kind == "save_weights_for_sampler":
        path, session = result
        return JSONResponse(
            {"type": "save_weights_for_sampler", "path": None if session else path, "sampling_session_id": session}
        )
    if kind == "save_weights_external":
        path, size = result
        return JSONResponse({"type": "save_weights_external", "path": path, "size_bytes": size})
    if kind == "create_custom_loss":
        return JSONResponse({"type": "create_custom_loss", "loss_id": result})
    if kind == "load_weights":
        return JSONResponse({"type": "load_weights", "path": result})
    raise AssertionError(kind)
