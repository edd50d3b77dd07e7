"""Preference fine-tuning: a thin builder of trl's DPOTrainer from a resolved JobSpec.

- Rows arrive in trl's own preference form (data/preference.py converts OpenAI's and
  SeekrFlow's shapes): conversational `{"prompt", "chosen", "rejected"}` messages, or the
  same keys as plain strings.
- The reference model is trl's: for LoRA the policy with its adapter disabled (the base
  model), for a full fine-tune a second, frozen copy of the model loaded from the same path.
- Loss types: sigmoid, hinge and ipo are trl's; kto_pair, which trl dropped, is added on top
  of trl's trainer in kto_pair.py. docs/methods.md gives every formula.
- trl logs loss, rewards/chosen, rewards/rejected, rewards/accuracies and rewards/margins on
  every step; the reporter callback turns them into the job's metrics events.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from polytune.data.convert import trl_dataset
from polytune.data.tokens import load_tokenizer
from polytune.domain.spec import JobSpec
from polytune.training.models import CatalogEntry
from polytune.training.recipes.sft import _require_resolved, lora_config

if TYPE_CHECKING:
    from transformers import TrainerCallback
    from trl import DPOTrainer

Rows = list[dict[str, Any]]


def build_dpo_trainer(spec: JobSpec, entry: CatalogEntry, model_path: Path | str, train_rows: Rows,
                      val_rows: Rows | None, output_dir: Path,
                      callbacks: list[TrainerCallback]) -> DPOTrainer:
    import torch
    from transformers import AutoModelForCausalLM, PrinterCallback
    from trl import DPOConfig, DPOTrainer

    from polytune.training.recipes.kto_pair import KtoPairDPOTrainer

    _require_resolved(spec)
    preference = spec.preference
    if preference is None or preference.beta == "auto":
        raise ValueError("the job spec has no resolved preference settings (run resolve_auto first)")
    hp = spec.hyperparameters
    tokenizer = load_tokenizer(model_path, entry.chat_template)
    cuda = torch.cuda.is_available()
    config = DPOConfig(
        output_dir=str(output_dir),
        beta=preference.beta,
        loss_type=[preference.loss_type],
        num_train_epochs=hp.n_epochs,
        max_steps=hp.max_steps or -1,
        per_device_train_batch_size=hp.batch_size,
        per_device_eval_batch_size=hp.batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation_steps or 1,
        learning_rate=hp.learning_rate,
        lr_scheduler_type=hp.lr_scheduler or entry.lr_scheduler,
        warmup_steps=hp.warmup_ratio or 0.0,  # a float below 1 is a ratio of all steps
        weight_decay=hp.weight_decay or 0.0,
        max_grad_norm=hp.max_grad_norm if hp.max_grad_norm is not None else 1.0,
        # Validation measured prompt + chosen and prompt + rejected against this length and
        # applied the job's long-example policy; trl truncates what is left ("truncate").
        max_length=hp.context_length or entry.max_length,
        # As in sft.py: on CPU fp32 is faster than bf16 autocast for small models, and gradient
        # checkpointing costs speed that only a GPU's memory limit pays back.
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        activation_checkpointing=hp.gradient_checkpointing if hp.gradient_checkpointing is not None else cuda,
        seed=spec.seed,
        data_seed=spec.seed,
        logging_steps=1,
        report_to=[],
        save_strategy="no",  # checkpoints are the reporter callback's job
        eval_strategy=("steps" if hp.eval_interval else "epoch") if val_rows else "no",
        eval_steps=hp.eval_interval,
        include_num_input_tokens_seen="non_padding",
        dataloader_pin_memory=cuda,
        disable_tqdm=True,
    )
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    trainer_class = KtoPairDPOTrainer if preference.loss_type == "kto_pair" else DPOTrainer
    trainer = trainer_class(
        model=model,
        # None: trl loads a frozen copy from the same path for a full fine-tune, and uses the
        # adapter-disabled policy for LoRA.
        ref_model=None,
        args=config,
        train_dataset=trl_dataset(train_rows),
        eval_dataset=trl_dataset(val_rows) if val_rows else None,
        processing_class=tokenizer,
        peft_config=lora_config(spec, entry) if spec.adapter.kind == "lora" else None,
        callbacks=callbacks,
    )
    # With tqdm off the Trainer prints every log line to stdout; the reporter has them.
    trainer.remove_callback(PrinterCallback)
    return trainer
