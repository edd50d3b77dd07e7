"""Supervised fine-tuning: a thin builder of trl's SFTTrainer from a resolved JobSpec.

What the loss covers:

- chat data, when the chat template marks assistant turns with `{% generation %}` and
  leaves out assistant messages with `weight` 0 (polytune-tiny's does): trl's
  `assistant_only_loss`, so every assistant turn with weight 1 is trained, nothing else;
- chat data with any other template (most hub models: no markers, or markers that ignore
  `weight`): each trained assistant turn becomes its own prompt/completion example, the
  conversation before it as the prompt, so exactly the same turns are trained, using the
  model's own template unchanged (at the cost of re-reading the context once per turn);
- prompt/completion data: the completion only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from polytune.data.convert import trl_dataset
from polytune.data.tokens import load_tokenizer
from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import JobSpec
from polytune.training.models import CatalogEntry

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import PreTrainedTokenizerBase, TrainerCallback
    from trl import SFTTrainer

Rows = list[dict[str, Any]]


def build_sft_trainer(spec: JobSpec, entry: CatalogEntry, model_path: Path | str, train_rows: Rows,
                      val_rows: Rows | None, output_dir: Path,
                      callbacks: list[TrainerCallback]) -> SFTTrainer:
    import torch
    from transformers import AutoModelForCausalLM, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    _require_resolved(spec)
    hp = spec.hyperparameters
    # The tokenizer and template validation counted tokens with (data/tokens.py).
    tokenizer = load_tokenizer(model_path, entry.chat_template)
    is_chat = "messages" in train_rows[0]
    assistant_only = False
    if is_chat:
        if not tokenizer.chat_template:
            raise InvalidRequest(f"The model '{entry.name}' has no chat template, so it cannot train on "
                                 "chat data; give it one in the model catalog.", param="model")
        assistant_only = template_masks_by_weight(tokenizer)
        if not assistant_only:
            train_rows = split_trained_turns(train_rows)
            val_rows = split_trained_turns(val_rows) if val_rows else val_rows

    cuda = torch.cuda.is_available()
    config = SFTConfig(
        output_dir=str(output_dir),
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
        max_length=hp.context_length or entry.max_length,
        packing=bool(hp.packing),
        assistant_only_loss=assistant_only,
        completion_only_loss=not is_chat or not assistant_only,
        # Measured on CPU: bf16 autocast is slower than fp32 for small models, and gradient
        # checkpointing costs ~20-30% of the speed; on a GPU memory is the tighter limit.
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
    trainer = SFTTrainer(
        model=model,
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


def lora_config(spec: JobSpec, entry: CatalogEntry) -> LoraConfig:
    from peft import LoraConfig

    lora = spec.adapter.lora
    # Embeddings are tied to the output layer in small models; peft's trainable_token_indices
    # crashes inside trl then, while modules_to_save with ensure_weight_tying works.
    train_embeddings = entry.lora_train_embeddings
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        bias=lora.bias,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
        modules_to_save=["embed_tokens"] if train_embeddings else None,
        ensure_weight_tying=train_embeddings,
    )


def template_masks_by_weight(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True when the chat template's generation markers cover assistant turns with weight 1
    and leave out those with weight 0 (found by rendering a probe conversation)."""
    probe = [
        {"role": "user", "content": "alpha"},
        {"role": "assistant", "content": "bravo"},
        {"role": "user", "content": "charlie"},
        {"role": "assistant", "content": "delta", "weight": 0},
    ]
    try:
        out = tokenizer.apply_chat_template(probe, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
    except Exception:  # noqa: BLE001 - any template failure means "cannot mask"
        return False
    trained = tokenizer.decode([i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m])
    return "bravo" in trained and "delta" not in trained


def split_trained_turns(rows: Rows) -> Rows:
    """One conversational prompt/completion row per assistant message with weight 1."""
    split = []
    for row in rows:
        messages = [{k: v for k, v in m.items() if k != "weight"} for m in row["messages"]]
        for i, message in enumerate(row["messages"]):
            if message["role"] == "assistant" and message.get("weight") != 0:
                split.append({"prompt": messages[:i], "completion": [messages[i]]})
    return split


def _require_resolved(spec: JobSpec) -> None:
    hp = spec.hyperparameters
    unresolved = [name for name in ("n_epochs", "batch_size", "learning_rate_multiplier")
                  if getattr(hp, name) == "auto"]
    if hp.learning_rate is None:
        unresolved.append("learning_rate")
    if spec.adapter.kind == "auto":
        unresolved.append("adapter.kind")
    if spec.seed is None:
        unresolved.append("seed")
    if unresolved:
        raise ValueError(f"the job spec still has unresolved values: {', '.join(unresolved)} "
                         "(run resolve_auto first)")
