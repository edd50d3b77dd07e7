"""Graders: score a model's sample against a dataset item, for graders run/validate and as the
reward of reinforcement (GRPO) training. See docs/graders.md."""

from .boundary import Sandbox
from .engine import GraderConfig, Grading, parse_grader
from .model_graders import ModelEndpoint
from .python_grader import SandboxLimits
from .result import ERROR_FLAGS, GradeResult

__all__ = [
    "ERROR_FLAGS",
    "GradeResult",
    "GraderConfig",
    "Grading",
    "ModelEndpoint",
    "Sandbox",
    "SandboxLimits",
    "parse_grader",
]
