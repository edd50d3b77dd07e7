"""The grader engine's configuration from the server's settings: which model endpoint model
graders call, and the python sandbox with its limits. Here, below both, so the API's grader
service and a GRPO worker's reward build it the same way."""

from __future__ import annotations

from polytune.config import Settings

from .boundary import Sandbox
from .engine import GraderConfig
from .model_graders import ModelEndpoint
from .python_grader import SandboxLimits


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
        endpoint=ModelEndpoint(
            base_url=base,
            api_key=key or settings.grader_model_api_key,
            embeddings_model=settings.grader_embeddings_model,
        ),
        limits=SandboxLimits(
            cpu_seconds=settings.grader_python_cpu_seconds,
            timeout_seconds=settings.grader_python_timeout_seconds,
            memory_mb=settings.grader_python_memory_mb,
        ),
        sandbox=sandbox(settings),
    )
