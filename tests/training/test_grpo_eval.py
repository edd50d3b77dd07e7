"""Reinforcement's eval_samples means what OpenAI documents: the completions sampled for each
validation prompt at an evaluation, not a cut of the validation file to its first N prompts."""

from __future__ import annotations

from polytune.data.reinforcement import reinforcement_to_trl
from polytune.domain.spec import ReinforcementMethod, RewardSpec
from polytune.training.recipes.grpo import build_grpo_trainer
from tests.training.support import resolved_spec

GRADER = {
    "type": "string_check",
    "name": "answer",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "like",
}


def _rows(n: int) -> list[dict]:
    return [
        reinforcement_to_trl({"messages": [{"role": "user", "content": f"Question {i}: the number?"}], "answer": "7"})
        for i in range(n)
    ]


def test_eval_samples_is_completions_per_validation_prompt(tiny, tmp_path):
    entry, model_path = tiny
    spec = resolved_spec(n_epochs=1, batch_size=2, n_checkpoints=0).model_copy(
        update={
            "method": ReinforcementMethod(
                reward=RewardSpec(graders=[GRADER], compute_multiplier=1.0, eval_samples=3, max_completion_tokens=4)
            )
        }
    )
    trainer = build_grpo_trainer(spec, entry, model_path, _rows(4), _rows(5), tmp_path, [])
    assert trainer.args.num_generations_eval == 3 and trainer.args.num_generations == 4
    assert len(trainer.eval_dataset) == 5  # every validation prompt, none dropped
    assert trainer.args.per_device_eval_batch_size % 3 == 0
    graded: list[str] = []
    reward = trainer.reward_funcs[0]

    def counting(prompts, completions, **kw):
        graded.extend(p[-1]["content"] for p in prompts)
        return reward(prompts, completions, **kw)

    trainer.reward_funcs[0] = counting
    assert "eval_reward" in trainer.evaluate()
    # Each of the 5 validation prompts was sampled (and graded) 3 times.
    assert sorted(graded) == sorted(r["prompt"][-1]["content"] for r in _rows(5) for _ in range(3))
