"""Graders as a use case: check one, or run one on a sample (graders/validate and graders/run),
with this server's grader settings (model endpoint, python sandbox limits)."""

from __future__ import annotations

import time
from typing import Any

from polytune.config import Settings
from polytune.domain.errors import InvalidRequest
from polytune.graders import GraderConfig, GradeResult, Grading, ModelEndpoint, SandboxLimits, parse_grader


def grader_config(settings: Settings, *, own_base_url: str | None = None, api_key: str | None = None) -> GraderConfig:
    """The engine's configuration. `own_base_url`/`api_key`: this server as the request reached
    it, used when no other model endpoint is configured."""
    base = settings.grader_model_base_url or own_base_url or f"http://{settings.host}:{settings.port}/v1"
    key = settings.grader_model_api_key if settings.grader_model_base_url or not api_key else api_key
    return GraderConfig(
        endpoint=ModelEndpoint(base_url=base, api_key=key or settings.grader_model_api_key,
                               embeddings_model=settings.grader_embeddings_model),
        limits=SandboxLimits(cpu_seconds=settings.grader_python_cpu_seconds,
                             timeout_seconds=settings.grader_python_timeout_seconds,
                             memory_mb=settings.grader_python_memory_mb))


class GraderService:
    def __init__(self, settings: Settings, *, own_base_url: str | None = None, api_key: str | None = None):
        self.config = grader_config(settings, own_base_url=own_base_url, api_key=api_key)

    def validate(self, grader: Any, param: str = "grader") -> dict[str, Any]:
        """The grader as the server understood it; InvalidRequest names what is wrong."""
        return parse_grader(grader, param, self.config).model_dump(mode="json", exclude_none=True)

    def run(self, grader: Any, model_sample: str, item: Any) -> tuple[Any, GradeResult, float]:
        """(parsed grader, result, seconds it took)."""
        parsed = parse_grader(grader, "grader", self.config)
        if item is None:
            item = {}
        if not isinstance(item, dict):
            raise InvalidRequest("item must be an object (the dataset row the templates read as item.*).",
                                 param="item")
        started = time.perf_counter()
        result = Grading(self.config).grade(parsed, model_sample, item)
        return parsed, result, time.perf_counter() - started
