"""Preference fine-tuning: a thin builder of trl's DPOTrainer from a resolved JobSpec.

- Rows arrive in trl's own preference form (data/preference.py converts OpenAI's and
  SeekrFlow's shapes): conversational `{"prompt", "chosen", "rejected"}` messages, or the
  same keys as plain strings.
- The reference model: for LoRA the policy with its adapter disabled (the base model, or the
  starting checkpoint's adapter as trl keeps it), for a full fine-tune a second, frozen copy
  of the starting model (common.py:load_reference).
- Loss types: sigmoid, hinge and ipo are trl's; kto_pair, which trl dropped, is added on top
  of trl's trainer in kto_pair.py. docs/methods.md gives every formula.
- trl logs loss, rewards/chosen, rewards/rejected, rewards/accuracies and rewards/margins on
  every step; the reporter callback turns them into the job's metrics events.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from polytune.config import Settings
from polytune.domain.spec import DpoMethod, JobSpec
from polytune.catalog.models import CatalogEntry
from polytune.training.recipes.common import (
    load_reference,
    quiet,
    require_resolved,
    trainer_inputs,
    training_args,
    worker_settings,
)

if TYPE_CHECKING:
    from transformers import TrainerCallback
    from trl import DPOTrainer

Rows = list[dict[str, Any]]


def build_dpo_trainer(
    spec: JobSpec,
    entry: CatalogEntry,
    model_path: Path | str,
    train_rows: Rows,
    val_rows: Rows | None,
    output_dir: Path,
    callbacks: list[TrainerCallback],
    *,
    settings: Settings | None = None,
) -> DPOTrainer:
    from trl import DPOConfig, DPOTrainer

    from polytune.training.recipes.kto_pair import KtoPairDPOTrainer

    require_resolved(spec)
    settings = worker_settings(settings)
    if not isinstance(spec.method, DpoMethod):
        raise ValueError(f"the dpo recipe got a {spec.method.type} job")
    preference = spec.method.preference
    if preference.beta == "auto":
        raise ValueError("the job spec has no resolved preference settings (run resolve_auto first)")
    hp = spec.hyperparameters
    config = DPOConfig(
        **training_args(spec, entry, output_dir, has_eval=bool(val_rows), model_path=model_path, settings=settings),
        beta=preference.beta,
        loss_type=[preference.loss_type],
        # Validation measured prompt + chosen and prompt + rejected against this length and
        # applied the job's long-example policy; trl truncates what is left ("truncate").
        max_length=hp.context_length or entry.max_length,
    )
    trainer_class = KtoPairDPOTrainer if preference.loss_type == "kto_pair" else DPOTrainer
    # The reference: load_reference says which, per adapter kind, precision and starting point.
    inputs = trainer_inputs(spec, entry, model_path, train_rows, val_rows, callbacks)
    reference = load_reference(spec, model_path, inputs["model"], **entry.load_options)
    return quiet(trainer_class(args=config, ref_model=reference, **inputs))
