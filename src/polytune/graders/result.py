"""What grading one sample gives: the reward, each sub-grader's reward, and what went wrong.

The error flags are OpenAI's (GraderRunResponse.metadata.errors); a grader that fails gives
reward 0 with its flag set and a detail, so one broken sample never stops a training step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR_FLAGS = (
    "formula_parse_error",
    "invalid_variable_error",
    "model_grader_parse_error",
    "model_grader_refusal_error",
    "model_grader_server_error",
    "other_error",
    "python_grader_runtime_error",
    "python_grader_server_error",
    "sample_parse_error",
    "truncated_observation_error",
    "unresponsive_reward_error",
)


class GradeFailed(Exception):
    """A grader could not score a sample; `flag` is one of ERROR_FLAGS."""

    def __init__(self, flag: str, detail: str, *, detail_key: str | None = None):
        super().__init__(detail)
        self.flag, self.detail, self.detail_key = flag, detail, detail_key


@dataclass
class GradeResult:
    reward: float
    sub_rewards: dict[str, float] = field(default_factory=dict)
    errors: dict[str, Any] = field(default_factory=dict)  # flag -> True, *_details -> text
    token_usage: int = 0
    sampled_model_name: str | None = None

    @property
    def failed(self) -> bool:
        return any(self.errors.get(f) for f in ERROR_FLAGS)

    def error_flags(self) -> dict[str, Any]:
        """Every flag (False unless set) plus any details: the SDK's MetadataErrors."""
        return {
            **{f: bool(self.errors.get(f)) for f in ERROR_FLAGS},
            **{k: v for k, v in self.errors.items() if k not in ERROR_FLAGS},
        }


def failure(e: GradeFailed) -> GradeResult:
    errors: dict[str, Any] = {e.flag: True}
    errors[e.detail_key or f"{e.flag}_details"] = e.detail
    return GradeResult(reward=0.0, errors=errors)
