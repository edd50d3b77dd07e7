"""The grader engine: check a grader once (`parse_grader`, a 400 naming the field), then grade
samples with it (`Grading.grade` for one, `grade_batch` for a training step's completions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from polytune.domain.errors import InvalidRequest

from .boundary import Sandbox, require
from .formula import FormulaError, evaluate, parse_formula
from .model_graders import ModelEndpoint, label_model, score_model
from .models import (
    GRADER_TYPES,
    FormatCheckGrader,
    Grader,
    LabelModelGrader,
    MathAccuracyGrader,
    ModelMessage,
    MultiGrader,
    PythonGrader,
    ScoreModelGrader,
    StringCheckGrader,
    TextSimilarityGrader,
)
from .python_grader import SandboxLimits, check_source, run_python
from .result import GradeFailed, GradeResult, failure
from .reasoning import format_check, math_accuracy
from .string_check import string_check
from .template import TemplateVariableError, check_template, render, sample_namespace
from .text_similarity import similarity

_ADAPTER: TypeAdapter = TypeAdapter(Grader)


@dataclass(frozen=True)
class GraderConfig:
    # The chat endpoint score_model / label_model call (and /embeddings for cosine); None: no
    # model graders on this server.
    endpoint: ModelEndpoint | None = None
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    sandbox: Sandbox = field(default_factory=Sandbox)

    @property
    def cosine(self) -> bool:
        return self.endpoint is not None and bool(self.endpoint.embeddings_model)


# -- checking ---------------------------------------------------------------------------------
def parse_grader(obj: Any, param: str = "grader", config: GraderConfig | None = None) -> Grader:
    """The grader as its model, or InvalidRequest whose param names the offending field."""
    config = config or GraderConfig()
    if not isinstance(obj, dict):
        raise InvalidRequest(f"{param} must be an object with a 'type'.", param=param, code="invalid_grader")
    if obj.get("type") not in GRADER_TYPES:
        raise InvalidRequest(
            f"{param}.type {obj.get('type')!r} is not a grader type; expected one of {list(GRADER_TYPES)}.",
            param=f"{param}.type",
            code="invalid_grader",
        )
    try:
        grader = _ADAPTER.validate_python(obj)
    except ValidationError as e:
        err = e.errors()[0]
        # The union's tag (the grader type) is in the location; it names no field.
        loc = [p for p in err["loc"] if p not in GRADER_TYPES and not str(p).startswith(("str", "list[", "function"))]
        where = ".".join([param, *(str(p) for p in loc)])
        what = {"missing": "is required", "extra_forbidden": "is not a field of this grader"}.get(
            err["type"], err["msg"]
        )
        raise InvalidRequest(f"{where}: {what}.", param=where, code="invalid_grader") from None
    _check(grader, param, config)
    return grader


def _check(g: Any, param: str, config: GraderConfig) -> None:
    if isinstance(g, (StringCheckGrader, TextSimilarityGrader, MathAccuracyGrader)):
        check_template(g.input, f"{param}.input")
        check_template(g.reference, f"{param}.reference")
    if isinstance(g, FormatCheckGrader):
        check_template(g.input, f"{param}.input")
    if isinstance(g, TextSimilarityGrader) and g.evaluation_metric == "cosine" and not config.cosine:
        raise InvalidRequest(
            f"{param}.evaluation_metric 'cosine' needs an embedding model, and this server has "
            "none configured (POLYTUNE_GRADER_EMBEDDINGS_MODEL); use another metric.",
            param=f"{param}.evaluation_metric",
            code="invalid_grader",
        )
    if isinstance(g, PythonGrader):
        check_source(g, param)
        require(config.sandbox, param)
    if isinstance(g, (ScoreModelGrader, LabelModelGrader)):
        for i, m in enumerate(g.input):
            check_template(_message_text(m), f"{param}.input[{i}].content")
    if isinstance(g, ScoreModelGrader) and g.range is not None and (len(g.range) != 2 or g.range[0] >= g.range[1]):
        raise InvalidRequest(
            f"{param}.range must be two numbers [low, high] with low < high.",
            param=f"{param}.range",
            code="invalid_grader",
        )
    if isinstance(g, LabelModelGrader) and not set(g.passing_labels) <= set(g.labels):
        raise InvalidRequest(
            f"{param}.passing_labels must be a subset of labels {g.labels}.",
            param=f"{param}.passing_labels",
            code="invalid_grader",
        )
    if isinstance(g, MultiGrader):
        named = g.named()
        for key, sub in named.items():
            _check(sub, f"{param}.graders" + (f".{key}" if isinstance(g.graders, dict) else ""), config)
        try:
            parse_formula(g.calculate_output, named)
        except FormulaError as e:
            raise InvalidRequest(
                f"{param}.calculate_output: {e}.", param=f"{param}.calculate_output", code="invalid_grader"
            ) from None


def _message_text(m: ModelMessage) -> str:
    parts = m.content if isinstance(m.content, list) else [m.content]
    return "\n".join(p if isinstance(p, str) else (p.text or "") for p in parts)


# -- grading ----------------------------------------------------------------------------------
class Grading:
    def __init__(self, config: GraderConfig):
        self.config = config

    def grade(self, grader: Grader, output_text: str, item: dict[str, Any]) -> GradeResult:
        return self.grade_batch(grader, [(output_text, item)])[0]

    def grade_batch(self, grader: Grader, samples: list[tuple[str, dict[str, Any]]]) -> list[GradeResult]:
        if not isinstance(grader, MultiGrader):
            return [self._leaf_result(grader.name, out) for out in self._leaf(grader, samples)]
        named = grader.named()
        tree = parse_formula(grader.calculate_output, named)
        per_grader = {name: self._leaf(sub, samples) for name, sub in named.items()}
        results = []
        for i in range(len(samples)):
            subs, tokens, failed = {}, 0, None
            for name, outs in per_grader.items():
                value, used = outs[i]
                tokens += used
                if isinstance(value, GradeFailed):
                    failed = failed or value
                else:
                    subs[name] = value
            if failed is not None:
                result = failure(failed)
                result.sub_rewards = subs
            else:
                try:
                    result = GradeResult(reward=evaluate(tree, subs), sub_rewards=subs)
                except (FormulaError, ArithmeticError, ValueError) as e:
                    result = failure(
                        GradeFailed(
                            "formula_parse_error",
                            f"calculate_output: {type(e).__name__}: {e}",
                            detail_key="other_error_details",
                        )
                    )
                    result.sub_rewards = subs
            result.token_usage = tokens
            results.append(result)
        return results

    @staticmethod
    def _leaf_result(name: str, out: tuple[float | GradeFailed, int]) -> GradeResult:
        value, tokens = out
        result = failure(value) if isinstance(value, GradeFailed) else GradeResult(reward=value)
        result.sub_rewards = {} if isinstance(value, GradeFailed) else {name: value}
        result.token_usage = tokens
        return result

    def _leaf(self, g: Any, samples: list[tuple[str, dict[str, Any]]]) -> list[tuple[float | GradeFailed, int]]:
        contexts = [{"item": item, "sample": sample_namespace(text)} for text, item in samples]
        if isinstance(g, PythonGrader):
            return [
                (r, 0)
                for r in run_python(
                    g, [(c["sample"], c["item"]) for c in contexts], self.config.limits, self.config.sandbox
                )
            ]
        out = []
        for context in contexts:
            try:
                out.append(self._one(g, context))
            except GradeFailed as e:
                out.append((e, 0))
            except TemplateVariableError as e:
                out.append((GradeFailed("invalid_variable_error", str(e), detail_key="other_error_details"), 0))
            except Exception as e:  # noqa: BLE001 - a metric library's failure is this sample's error
                out.append((GradeFailed("other_error", f"{type(e).__name__}: {e}"), 0))
        return out

    def _one(self, g: Any, context: dict[str, Any]) -> tuple[float, int]:
        endpoint = self.config.endpoint
        if isinstance(g, StringCheckGrader):
            return string_check(g, render(g.input, context), render(g.reference, context)), 0
        if isinstance(g, TextSimilarityGrader):
            embed = endpoint.embed if endpoint is not None and endpoint.embeddings_model else None
            return similarity(g, render(g.input, context), render(g.reference, context), embed), 0
        if isinstance(g, FormatCheckGrader):
            return format_check(g, render(g.input, context)), 0
        if isinstance(g, MathAccuracyGrader):
            return math_accuracy(g, render(g.input, context), render(g.reference, context)), 0
        if endpoint is None:
            raise GradeFailed(
                "model_grader_server_error",
                "no grader model endpoint is configured on this server",
                detail_key="model_grader_server_error_details",
            )
        if isinstance(g, ScoreModelGrader):
            return score_model(g, context, endpoint)
        return label_model(g, context, endpoint)
