"""score_model and label_model: ask a chat model, through any OpenAI-compatible
`/chat/completions` endpoint (POLYTUNE_GRADER_MODEL_BASE_URL; by default polytune's own).

The grader's `input` messages are rendered with the templates and sent as they are. The answer
is read as JSON `{"result": <number>}` (score) or `{"label": "<label>"}` (label) when it is
JSON, else the first number in it, or the label it names; an answer with neither is a
`model_grader_parse_error`, an endpoint that fails a `model_grader_server_error`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .models import LabelModelGrader, ModelMessage, ScoreModelGrader
from .result import GradeFailed
from .template import render

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class ModelEndpoint:
    base_url: str  # ends with /v1 (or the prefix the endpoint serves under)
    api_key: str | None = None
    timeout: float = 60.0
    embeddings_model: str | None = None  # for text_similarity's cosine

    def chat(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> tuple[str, int]:
        body = self._post(
            "/chat/completions", {"model": model, "messages": messages, **params}, "model_grader_server_error"
        )
        try:
            text = body["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise GradeFailed(
                "model_grader_server_error",
                "the endpoint's answer has no choices[0].message",
                detail_key="model_grader_server_error_details",
            ) from None
        return text, int((body.get("usage") or {}).get("total_tokens") or 0)

    def embed(self, texts: list[str]) -> list[list[float]]:
        body = self._post("/embeddings", {"model": self.embeddings_model, "input": texts}, "other_error")
        return [d["embedding"] for d in sorted(body["data"], key=lambda d: d["index"])]

    def _post(self, path: str, payload: dict[str, Any], flag: str) -> dict[str, Any]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        detail_key = "model_grader_server_error_details" if flag == "model_grader_server_error" else None
        try:
            r = httpx.post(self.base_url.rstrip("/") + path, json=payload, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as e:
            raise GradeFailed(flag, f"{self.base_url}{path}: {type(e).__name__}: {e}", detail_key=detail_key) from None
        if r.status_code != 200:
            raise GradeFailed(
                flag, f"{self.base_url}{path} answered {r.status_code}: {r.text[:300]}", detail_key=detail_key
            )
        return r.json()


def _messages(input: list[ModelMessage], context: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for m in input:
        parts = m.content if isinstance(m.content, list) else [m.content]
        texts = [p if isinstance(p, str) else (p.text or "") for p in parts]
        out.append(
            {"role": "system" if m.role == "developer" else m.role, "content": render("\n".join(texts), context)}
        )
    return out


def _params(grader: ScoreModelGrader) -> dict[str, Any]:
    sp = grader.sampling_params
    if sp is None:
        return {"temperature": 0.0}
    params = {"temperature": sp.temperature if sp.temperature is not None else 0.0}
    if sp.top_p is not None:
        params["top_p"] = sp.top_p
    if sp.seed is not None:
        params["seed"] = sp.seed
    if sp.max_completions_tokens is not None:
        params["max_tokens"] = sp.max_completions_tokens
    return params


def _json(text: str) -> Any:
    try:
        return json.loads(text.strip())
    except ValueError:
        return None


def score_model(grader: ScoreModelGrader, context: dict[str, Any], endpoint: ModelEndpoint) -> tuple[float, int]:
    text, tokens = endpoint.chat(grader.model, _messages(grader.input, context), _params(grader))
    data = _json(text)
    if isinstance(data, dict) and isinstance(data.get("result"), (int, float)):
        score = float(data["result"])
    elif (m := _NUMBER.search(text)) is not None:
        score = float(m.group())
    else:
        raise GradeFailed("model_grader_parse_error", f"no score in the grader model's answer: {text[:200]!r}")
    low, high = grader.range or (0.0, 1.0)
    if not low <= score <= high:
        raise GradeFailed("model_grader_parse_error", f"the score {score} is outside the range [{low}, {high}]")
    return score, tokens


def label_model(grader: LabelModelGrader, context: dict[str, Any], endpoint: ModelEndpoint) -> tuple[float, int]:
    text, tokens = endpoint.chat(grader.model, _messages(grader.input, context), {"temperature": 0.0})
    data = _json(text)
    label = data.get("label") if isinstance(data, dict) else None
    if label not in grader.labels:
        stripped = text.strip().strip(".\"'").strip()
        label = (
            stripped
            if stripped in grader.labels
            else next((lb for lb in grader.labels if re.search(rf"\b{re.escape(lb)}\b", text)), None)
        )
    if label is None:
        raise GradeFailed(
            "model_grader_parse_error",
            f"none of the labels {grader.labels} in the grader model's answer: {text[:200]!r}",
        )
    return float(label in grader.passing_labels), tokens
