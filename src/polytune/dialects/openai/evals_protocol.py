"""OpenAI Evals API wire models: what `client.evals` and `client.evals.runs` send. The nested
objects (data source config, testing criteria, a run's data source) are checked field by field
in services/evals.py and services/eval_data.py, whose errors name the param."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .protocol import Wire


class CreateEvalRequest(Wire):
    data_source_config: Any = None
    testing_criteria: Any = None
    name: str | None = Field(None, max_length=512)
    metadata: Any = None


class UpdateEvalRequest(Wire):
    name: str | None = Field(None, max_length=512)
    metadata: Any = None


class CreateRunRequest(Wire):
    data_source: Any = None
    name: str | None = Field(None, max_length=512)
    metadata: Any = None
