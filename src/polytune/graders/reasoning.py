"""The reasoning graders SeekrFlow brought, on the engine for every dialect (graders/models.py).

`format_check` is TRL's `think_format_reward` (reasoning in <think>…</think>, then the answer);
`math_accuracy` is TRL's `accuracy_reward`, which verifies the answer against the reference with
math-verify (a reference math-verify can't parse scores 0).
"""

from __future__ import annotations

from .models import FormatCheckGrader, MathAccuracyGrader


def format_check(grader: FormatCheckGrader, text: str) -> float:
    from trl.rewards import think_format_reward

    return float(think_format_reward([[{"role": "assistant", "content": text}]])[0])


def math_accuracy(grader: MathAccuracyGrader, text: str, reference: str) -> float:
    from trl.rewards import accuracy_reward

    reward = accuracy_reward([[{"role": "assistant", "content": text}]], [reference])[0]
    return float(reward or 0.0)
