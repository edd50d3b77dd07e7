"""string_check: compare the rendered input with the rendered reference.

eq / ne: exact (in)equality; like: the input contains the reference; ilike: the same,
ignoring case (OpenAI's definitions). Reward 1 or 0.
"""

from __future__ import annotations

from .models import StringCheckGrader


def string_check(grader: StringCheckGrader, text: str, reference: str) -> float:
    op = grader.operation
    if op == "eq":
        return float(text == reference)
    if op == "ne":
        return float(text != reference)
    if op == "like":
        return float(reference in text)
    return float(reference.casefold() in text.casefold())
