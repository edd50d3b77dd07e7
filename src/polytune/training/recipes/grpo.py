"""Reinforcement fine-tuning: a thin builder of trl's GRPOTrainer whose reward is the job's
grader, run by polytune's grader engine (polytune.graders) on every completion.

How the job's settings reach GRPOConfig (docs/graders.md has the table):

- batch_size: prompts per optimizer step; each step trains on batch_size × num_generations
  completions (per_device_train_batch_size), generated together (one generation per step);
- compute_multiplier → num_generations = round(BASE_GENERATIONS × compute_multiplier), at least
  2: completions sampled per prompt, the group GRPO compares to compute each advantage;
- n_epochs, learning_rate (learning_rate_multiplier × the model's base rate), lr_scheduler:
  as for supervised jobs;
- eval_interval → eval_steps (else one evaluation per epoch) on every prompt of the validation
  file; eval_samples → num_generations_eval, the completions sampled for each validation prompt
  at each evaluation (OpenAI: "number of evaluation samples to generate per training step"),
  whose rewards the evaluation averages;
- reasoning_effort → max_completion_length, the tokens a completion may use
  (COMPLETION_TOKENS: low 64, medium/default 128, high 256), unless the job sets
  max_completion_tokens (a polytune extension of the hyperparameters);
- beta = BETA: a small KL penalty against the starting model (the reference: the
  adapter-disabled base for LoRA, as TRL does), so KL is measured and reported.

Metrics (logged by TRL, reported through the ReporterCallback): reward (mean), reward_std,
reward_min, reward_max, each sub-grader's mean (sub_reward/<name>), the share of completions
whose grading failed (grader_errors), completion length, and KL.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from polytune.config import Settings
from polytune.domain.spec import JobSpec, ReinforcementMethod
from polytune.training.distributed import per_device_batch
from polytune.catalog.models import CatalogEntry
from polytune.training.recipes.common import quiet, require_resolved, trainer_inputs, training_args, worker_settings

if TYPE_CHECKING:
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    from polytune.graders import Grading

Rows = list[dict[str, Any]]
BASE_GENERATIONS = 4
COMPLETION_TOKENS = {"low": 64, "medium": 128, "default": 128, "high": 256}
BETA = 0.04
# Validation prompts generated for together at an evaluation (each with its eval_samples).
EVAL_PROMPTS_PER_BATCH = 8
# Columns TRL passes to reward functions that are not the dataset row's own fields.
_TRL_KWARGS = ("trainer_state", "log_extra", "log_metric", "completion_ids", "environments")


def num_generations(compute_multiplier: float) -> int:
    return max(2, round(BASE_GENERATIONS * compute_multiplier))


def grader_reward(grader: Any, grading: Grading):
    """A TRL reward function: the grader's reward for each completion, its row as the item."""

    def reward(prompts: list, completions: list, log_metric=None, **columns: Any) -> list[float]:
        rows = [{k: v[i] for k, v in columns.items() if k not in _TRL_KWARGS} for i in range(len(completions))]
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        items = [{**row, "messages": prompt} if isinstance(prompt, list) else row for row, prompt in zip(rows, prompts)]
        results = grading.grade_batch(grader, list(zip(texts, items)))
        rewards = [r.reward for r in results]
        if log_metric is not None:
            log_metric("reward_min", min(rewards))
            log_metric("reward_max", max(rewards))
            log_metric("grader_errors", sum(r.failed for r in results) / len(results))
            for name in {n for r in results for n in r.sub_rewards}:
                values = [r.sub_rewards[name] for r in results if name in r.sub_rewards]
                log_metric(f"sub_reward/{name}", sum(values) / len(values))
        return rewards

    reward.__name__ = grader.name  # TRL logs rewards/<name>/mean under it
    return reward


def build_grpo_trainer(
    spec: JobSpec,
    entry: CatalogEntry,
    model_path: Path | str,
    train_rows: Rows,
    val_rows: Rows | None,
    output_dir: Path,
    callbacks: list[TrainerCallback],
    *,
    settings: Settings | None = None,
) -> GRPOTrainer:
    from trl import GRPOConfig, GRPOTrainer

    from polytune.graders import Grading, parse_grader
    from polytune.graders.settings import grader_config

    require_resolved(spec)
    settings = worker_settings(settings)
    if not isinstance(spec.method, ReinforcementMethod):
        raise ValueError(f"the reinforcement recipe got a {spec.method.type} job")
    # Its reward has a grader: the spec was refused at creation otherwise (domain/spec.py).
    hp, reward = spec.hyperparameters, spec.method.reward
    config = grader_config(settings)
    grader = parse_grader(reward.graders[0], "method.reinforcement.grader", config)
    generations = num_generations(float(reward.compute_multiplier))
    eval_samples = reward.eval_samples if isinstance(reward.eval_samples, int) else generations
    args = GRPOConfig(
        **{
            **training_args(spec, entry, output_dir, has_eval=bool(val_rows), model_path=model_path, settings=settings),
            # A step's batch is batch_size prompts (split across workers) times their generations.
            "per_device_train_batch_size": per_device_batch(hp.batch_size) * generations,
            # Whole groups of a prompt's eval samples per batch (TRL requires a multiple).
            "per_device_eval_batch_size": eval_samples * max(1, min(len(val_rows or []), EVAL_PROMPTS_PER_BATCH)),
            "num_generations": generations,
            "num_generations_eval": eval_samples,
            "max_completion_length": reward.max_completion_tokens
            or COMPLETION_TOKENS.get(reward.reasoning_effort, 128),
            "beta": BETA,
        }
    )
    return quiet(
        GRPOTrainer(
            args=args,
            reward_funcs=[grader_reward(grader, Grading(config))],
            **trainer_inputs(spec, entry, model_path, train_rows, val_rows, callbacks),
        )
    )
