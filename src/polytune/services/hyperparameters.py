"""Replacing "auto" in a JobSpec with concrete values, once, when the job is queued."""

from __future__ import annotations

import math
import secrets

from polytune.domain.spec import DpoMethod, JobSpec, ReinforcementMethod
from polytune.catalog.models import CatalogEntry

# Batch-size bounds of the "auto" rule; the largest keeps a CPU step to seconds.
MIN_AUTO_BATCH = 1
MAX_AUTO_BATCH = 64
# Batch size at which the catalog's base learning rate was measured.
REFERENCE_BATCH = 8
DEFAULT_EPOCHS = 3
# Above this many examples seen in total, big datasets get fewer epochs (at least one).
MAX_EXAMPLES_SEEN = 25_000
# Token budgets of the "auto" rule (measured in the base model's tokens, see data/tokens.py):
# a batch holds about this many tokens at most, and a job trains on about this many in all.
MAX_AUTO_BATCH_TOKENS = 32_768
MAX_AUTO_TOKENS_SEEN = 20_000_000
DEFAULT_BETA = 0.1
# Reinforcement: completions sampled per validation prompt at each evaluation when eval_samples
# is "auto": as many as a training prompt gets at compute_multiplier 1 (recipes/grpo.py).
AUTO_EVAL_SAMPLES = 4


def resolve_auto(spec: JobSpec, *, n_examples: int, entry: CatalogEntry, n_tokens: int | None = None) -> JobSpec:
    """A copy of `spec` with every "auto" (and the seed) replaced by a concrete value.

    The rule, in the spirit of OpenAI's, for n training examples:

    - batch_size: the largest power of two not above n / 6, between 1 and 64; it grows with
      the dataset so an epoch stays around six or more steps. With the data's token count
      (n_tokens, after long examples were dropped or truncated), it is also lowered to the
      largest power of two whose batch of average examples holds at most 32,768 tokens.
    - n_epochs: 3, raised to ceil(entry.min_examples_seen / n) for small datasets so the
      model sees enough examples in total, lowered to 25,000 / n (at least 1) for big ones,
      and capped at entry.max_auto_epochs; with n_tokens, also lowered so the job trains
      on at most 20 million tokens (n_epochs x n_tokens), but never below one epoch.
    - learning_rate_multiplier: sqrt(batch_size / 8) between 0.5 and 1.0: a small batch gives
      noisy gradients, so it gets a smaller step (measured on polytune-tiny: batch 4 learns
      reliably at 2e-3 and erratically at 3e-3).
    - learning_rate: entry.base_learning_rate × multiplier, unless an absolute learning_rate
      was given (then the multiplier reported is the ratio of the two).
    - adapter kind: the entry's default; lr_scheduler: the entry's default.
    - warmup_ratio 0, weight_decay 0, max_grad_norm 1.0 and context_length (the entry's
      max_length) when left out: the values the trainer uses then (recipes/common.py), so a
      job reports every setting it trained with. `packing` stays unset when not sent: the
      recipe then picks padding-free batches where exact (training/cpu_path.py), and the
      dialects report it as false (examples are never concatenated).
    - preference.beta (dpo jobs): 0.1, trl's default and the value the DPO paper uses most;
      a dpo job that sent no preference settings gets them (beta 0.1, loss_type sigmoid).
    - reinforcement: n_epochs at most 3 (the small-dataset rule above is for memorising
      answers); reward.compute_multiplier 1.0 (4 generations per prompt, see recipes/grpo.py);
      reward.eval_samples 4 (completions per validation prompt at each evaluation).
    - seed: a random one, reported back so the run can be repeated.
    """
    if n_examples < 1:
        raise ValueError("resolve_auto needs at least one training example")
    hp = spec.hyperparameters
    batch_size = hp.batch_size if hp.batch_size != "auto" else auto_batch_size(n_examples, n_tokens)
    n_epochs = hp.n_epochs if hp.n_epochs != "auto" else auto_epochs(n_examples, entry, n_tokens)
    if spec.method.type == "reinforcement" and hp.n_epochs == "auto":
        # Each prompt is sampled num_generations times per epoch; the supervised rule's extra
        # epochs for small datasets (memorising answers) don't apply.
        n_epochs = min(n_epochs, DEFAULT_EPOCHS)
    if hp.max_steps:
        # The epochs the steps span (the trainer stops at max_steps, mid-epoch if need be).
        steps_per_epoch = math.ceil(math.ceil(n_examples / batch_size) / (hp.gradient_accumulation_steps or 1))
        n_epochs = math.ceil(hp.max_steps / steps_per_epoch)
    if hp.learning_rate is not None:
        learning_rate = hp.learning_rate
        multiplier = (
            hp.learning_rate_multiplier
            if hp.learning_rate_multiplier != "auto"
            else learning_rate / entry.base_learning_rate
        )
    else:
        multiplier = (
            hp.learning_rate_multiplier if hp.learning_rate_multiplier != "auto" else auto_lr_multiplier(batch_size)
        )
        learning_rate = entry.base_learning_rate * multiplier
    resolved_hp = hp.model_copy(
        update={
            "batch_size": batch_size,
            "n_epochs": n_epochs,
            "learning_rate_multiplier": multiplier,
            "learning_rate": learning_rate,
            "lr_scheduler": hp.lr_scheduler or entry.lr_scheduler,
            "warmup_ratio": hp.warmup_ratio if hp.warmup_ratio is not None else 0.0,
            "weight_decay": hp.weight_decay if hp.weight_decay is not None else 0.0,
            "max_grad_norm": hp.max_grad_norm if hp.max_grad_norm is not None else 1.0,
            "context_length": hp.context_length or entry.max_length,
        }
    )
    update: dict = {
        "hyperparameters": resolved_hp,
        "adapter": spec.adapter.model_copy(
            update={"kind": entry.adapter_default if spec.adapter.kind == "auto" else spec.adapter.kind}
        ),
        "seed": spec.seed if spec.seed is not None else secrets.randbelow(2**31),
    }
    method = spec.method
    if isinstance(method, ReinforcementMethod):
        r = method.reward
        update["method"] = method.model_copy(
            update={
                "reward": r.model_copy(
                    update={
                        "compute_multiplier": 1.0 if r.compute_multiplier == "auto" else r.compute_multiplier,
                        "eval_samples": AUTO_EVAL_SAMPLES if r.eval_samples == "auto" else r.eval_samples,
                    }
                )
            }
        )
    if isinstance(method, DpoMethod) and method.preference.beta == "auto":
        update["method"] = method.model_copy(
            update={"preference": method.preference.model_copy(update={"beta": DEFAULT_BETA})}
        )
    return spec.model_copy(update=update)


def auto_batch_size(n_examples: int, n_tokens: int | None = None) -> int:
    target = max(n_examples / 6, 1)
    if n_tokens:
        target = min(target, max(MAX_AUTO_BATCH_TOKENS / (n_tokens / n_examples), 1))
    return max(MIN_AUTO_BATCH, min(MAX_AUTO_BATCH, 2 ** math.floor(math.log2(target))))


def auto_epochs(n_examples: int, entry: CatalogEntry, n_tokens: int | None = None) -> int:
    n_epochs = DEFAULT_EPOCHS
    if n_epochs * n_examples < entry.min_examples_seen:
        n_epochs = math.ceil(entry.min_examples_seen / n_examples)
    elif n_epochs * n_examples > MAX_EXAMPLES_SEEN:
        n_epochs = max(1, MAX_EXAMPLES_SEEN // n_examples)
    n_epochs = min(n_epochs, entry.max_auto_epochs)
    if n_tokens:
        n_epochs = max(1, min(n_epochs, MAX_AUTO_TOKENS_SEEN // n_tokens))
    return n_epochs


def auto_lr_multiplier(batch_size: int) -> float:
    return min(1.0, max(0.5, math.sqrt(batch_size / REFERENCE_BATCH)))
