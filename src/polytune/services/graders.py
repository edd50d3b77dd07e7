"""Graders as a use case: check one, or run one on a sample (graders/validate and graders/run),
with this server's grader settings (model endpoint, python sandbox and its limits)."""

from __future__ import annotations

import time
from typing import Any

from polytune.config import Settings
from polytune.domain.errors import InvalidRequest
from polytune.graders import GradeResult, Grading, parse_grader
from polytune.graders.settings import grader_config


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
            raise InvalidRequest("item must be an object (the dataset row the templates read as item.*).", param="item")
        started = time.perf_counter()
        result = Grading(self.config).grade(parsed, model_sample, item)
        return parsed, result, time.perf_counter() - started
