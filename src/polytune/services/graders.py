"""Graders as a use case: check one, or run one on a sample (graders/validate and graders/run),
with this server's grader settings (model endpoint, python sandbox and its limits)."""

from __future__ import annotations

import time
from typing import Any

from polytune.config import Settings
from polytune.domain.errors import InvalidRequest
from polytune.graders import (GraderConfig, GradeResult, Grading, ModelEndpoint, Sandbox, SandboxLimits,
                              parse_grader)


def internal_base_url(settings: Settings) -> str:
    """This server's own API as the server reaches it: configured, or its listening address
    (a wildcard address becomes loopback). Never derived from a request, whose Host header the
    caller chooses."""
    if settings.internal_base_url:
        return settings.internal_base_url.rstrip("/")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}/v1"


def sandbox(settings: Settings) -> Sandbox:
    packages = tuple(p.strip() for p in settings.grader_python_packages.split(",") if p.strip())
    return Sandbox(bwrap=settings.grader_bwrap_path, packages=packages)


def grader_config(settings: Settings, *, api_key: str | None = None) -> GraderConfig:
    """The engine's configuration. `api_key`: the caller's, sent to this server's own API when
    no other model endpoint is configured."""
    base = settings.grader_model_base_url or internal_base_url(settings)
    key = settings.grader_model_api_key if settings.grader_model_base_url or not api_key else api_key
    return GraderConfig(
        endpoint=ModelEndpoint(base_url=base, api_key=key or settings.grader_model_api_key,
                               embeddings_model=settings.grader_embeddings_model),
        limits=SandboxLimits(cpu_seconds=settings.grader_python_cpu_seconds,
                             timeout_seconds=settings.grader_python_timeout_seconds,
                             memory_mb=settings.grader_python_memory_mb),
        sandbox=sandbox(settings))


class GraderService:
    def __init__(self, settings: Settings, *, api_key: str | None = None):
        self.config = grader_config(settings, api_key=api_key)

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
