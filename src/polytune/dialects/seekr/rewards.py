"""SeekrFlow's reward components on polytune's grader engine (graders/; its `format_check` and
`math_accuracy` graders are graders/reasoning.py).

Mapping: SeekrFlow's `reward_components` {format_reward_weight, graders: [{type, weight, …}]}
become one weighted `multi` grader. Each Seekr grader compares the completion
(`{{sample.output_text}}`) with the row's `reference_answer` field (`{{item.reference_answer}}`);
`format_reward_weight` adds a format_check term. A grader without a weight shares equally what
the given weights and the format weight leave of 1.

| Seekr grader | engine grader |
|---|---|
| format_check | format_check |
| math_accuracy | math_accuracy |
| string_check equals / not_equals / contains / case_insensitive_contains | string_check eq / ne / like / ilike |
| text_similarity bleu / rouge | text_similarity bleu / rouge_l |
| llm (seed, top_p, temperature, max_completion_tokens) | score_model, 0–1, judging the completion against the reference |
"""

from __future__ import annotations

from typing import Any

OUTPUT = "{{sample.output_text}}"
REFERENCE = "{{item.reference_answer}}"
STRING_OPS = {"equals": "eq", "not_equals": "ne", "contains": "like", "case_insensitive_contains": "ilike"}
SIMILARITY_OPS = {"bleu": "bleu", "rouge": "rouge_l"}
# The model SeekrFlow's `llm` grader asks (served by polytune's own chat endpoint unless
# POLYTUNE_GRADER_MODEL_BASE_URL points elsewhere).
DEFAULT_JUDGE_MODEL = "polytune-tiny"
JUDGE_PROMPT = (
    "You grade an answer against a reference answer. Reply with only a number from 0 to 1: "
    "1 when the answer is correct and complete, 0 when it is wrong."
)


def from_reward_components(components: dict[str, Any], *, judge_model: str) -> dict[str, Any]:
    """The engine's multi grader (as a dict) for SeekrFlow's reward_components."""
    graders: dict[str, dict[str, Any]] = {}
    weights: dict[str, float | None] = {}
    format_weight = float(components.get("format_reward_weight") or 0.0)
    if format_weight:
        graders["format"] = {"type": "format_check", "name": "format", "input": OUTPUT}
        weights["format"] = format_weight
    for i, g in enumerate(components.get("graders") or []):
        kind = g["type"]
        name = f"{kind}_{i}"
        graders[name] = _one(kind, name, g, judge_model)
        weights[name] = g.get("weight")
    given = sum(w for w in weights.values() if w is not None)
    unweighted = [n for n, w in weights.items() if w is None]
    share = max(0.0, 1.0 - given) / len(unweighted) if unweighted else 0.0
    terms = [f"{weights[n] if weights[n] is not None else share!r} * {n}" for n in graders]
    return {"type": "multi", "name": "reward_components", "graders": graders, "calculate_output": " + ".join(terms)}


def _one(kind: str, name: str, g: dict[str, Any], judge_model: str) -> dict[str, Any]:
    if kind == "format_check":
        return {"type": "format_check", "name": name, "input": OUTPUT}
    if kind == "math_accuracy":
        return {"type": "math_accuracy", "name": name, "input": OUTPUT, "reference": REFERENCE}
    if kind == "string_check":
        return {
            "type": "string_check",
            "name": name,
            "input": OUTPUT,
            "reference": REFERENCE,
            "operation": STRING_OPS[g["operation"]],
        }
    if kind == "text_similarity":
        return {
            "type": "text_similarity",
            "name": name,
            "input": OUTPUT,
            "reference": REFERENCE,
            "evaluation_metric": SIMILARITY_OPS[g["operation"]],
        }
    if kind == "llm":
        params = {
            "temperature": g.get("temperature", 0.0),
            "max_completions_tokens": g.get("max_completion_tokens", 512),
        }
        params.update({k: g[k] for k in ("seed", "top_p") if g.get(k) is not None})
        return {
            "type": "score_model",
            "name": name,
            "model": judge_model,
            "range": [0.0, 1.0],
            "sampling_params": params,
            "input": [
                {"role": "system", "content": JUDGE_PROMPT},
                {"role": "user", "content": f"Reference answer: {REFERENCE}\n\nAnswer: {OUTPUT}"},
            ],
        }
    raise ValueError(f"unknown SeekrFlow grader type {kind!r}")
