"""OpenAI serving routes: chat completions, completions (both with server-sent events) and
model deletion. Thin: parse, prepare in a worker thread, run, render. Mounted at /v1 and
reusable under any prefix (TrueFoundry's /api/llm speaks the same shapes)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from polytune.dialects.common.body import json_body
from polytune.dialects.common.deps import Inference, OrgId
from polytune.dialects.common.openapi_doc import json_request
from polytune.domain.errors import DomainError
from polytune.domain.inference import ChoiceDelta, Usage

from . import serving_translate as tr
from .errors import TYPE
from .serving_protocol import ChatCompletionRequest, CompletionRequest

router = APIRouter()


# -- helpers ----------------------------------------------------------------------------------
async def _collect(deltas: AsyncIterator[ChoiceDelta | Usage]) -> tuple[list[ChoiceDelta], Usage]:
    """A whole response from the deltas: each choice's text and logprobs joined."""
    choices: dict[int, ChoiceDelta] = {}
    usage = Usage(0, 0)
    async with contextlib.aclosing(deltas):
        async for item in deltas:
            if isinstance(item, Usage):
                usage = item
                continue
            whole = choices.setdefault(
                item.index, ChoiceDelta(item.index, "", [] if item.logprobs is not None else None)
            )
            whole.text += item.text
            if item.logprobs is not None:
                whole.logprobs.extend(item.logprobs)
            whole.finish_reason = item.finish_reason or whole.finish_reason
    return [choices[i] for i in sorted(choices)], usage


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def _sse(
    deltas: AsyncIterator[ChoiceDelta | Usage], render: Callable[[ChoiceDelta | Usage], dict[str, Any] | None]
) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        try:
            async with contextlib.aclosing(deltas):
                async for item in deltas:
                    chunk = render(item)
                    if chunk is not None:
                        yield _event(chunk)
        except DomainError as e:  # after the headers went out: an error event, as OpenAI sends
            yield _event(
                {
                    "error": {
                        "message": e.message,
                        "type": TYPE.get(e.kind, "invalid_request_error"),
                        "param": e.param,
                        "code": e.code,
                    }
                }
            )
            return
        except Exception:  # noqa: BLE001 - logged; the client gets an error event, not a cut stream
            import logging

            logging.getLogger("polytune.api").exception("streaming failed")
            yield _event(
                {
                    "error": {
                        "message": "The server had an error while generating.",
                        "type": "server_error",
                        "param": None,
                        "code": "server_error",
                    }
                }
            )
            return
        yield b"data: [DONE]\n\n"

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


async def _respond(stream: bool | None, deltas: AsyncIterator[ChoiceDelta | Usage], renderer):
    if stream:
        return _sse(deltas, renderer.chunk)
    return renderer.whole(*await _collect(deltas))


def _include_usage(req: ChatCompletionRequest | CompletionRequest) -> bool:
    return bool(req.stream_options and req.stream_options.include_usage)


# -- routes -----------------------------------------------------------------------------------
@router.post("/chat/completions", openapi_extra=json_request(ChatCompletionRequest))
async def chat_completions(request: Request, org: OrgId, inference: Inference):
    req = await json_body(request, ChatCompletionRequest)
    messages, params = tr.chat_request(req)
    prepared = await run_in_threadpool(inference.prepare_chat, org, req.model, messages, params)
    return await _respond(req.stream, inference.run(prepared), tr.ChatRenderer(req.model, _include_usage(req)))


@router.post("/completions", openapi_extra=json_request(CompletionRequest))
async def completions(request: Request, org: OrgId, inference: Inference):
    req = await json_body(request, CompletionRequest)
    prompts, params = tr.completion_request(req)
    prepared = await run_in_threadpool(inference.prepare_completion, org, req.model, prompts, params)
    return await _respond(req.stream, inference.run(prepared), tr.CompletionRenderer(req.model, _include_usage(req)))


@router.delete("/models/{model_id:path}")
def delete_model(model_id: str, org: OrgId, inference: Inference) -> dict[str, Any]:
    inference.delete_model(org, model_id)
    return {"id": model_id, "object": "model", "deleted": True}
