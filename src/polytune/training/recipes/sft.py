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

from polytune.config import Settings
from polytune.data.tokens import load_tokenizer
from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import JobSpec
from polytune.catalog.models import CatalogEntry
from polytune.training.cpu_path import choose_padding_free
from polytune.training.recipes.common import quiet, require_resolved, trainer_inputs, training_args, worker_settings

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, TrainerCallback
    from trl import SFTTrainer

Rows = list[dict[str, Any]]


def build_sft_trainer(
    spec: JobSpec,
    entry: CatalogEntry,
    model_path: Path | str,
    train_rows: Rows,
    val_rows: Rows | None,
    output_dir: Path,
    callbacks: list[TrainerCallback],
    *,
    settings: Settings | None = None,
) -> SFTTrainer:
    from trl import SFTConfig, SFTTrainer

    require_resolved(spec)
    settings = worker_settings(settings)
    hp = spec.hyperparameters
    # The tokenizer and template validation counted tokens with (data/tokens.py).
    tokenizer = load_tokenizer(model_path, entry.chat_template, **entry.load_options)
    is_chat = "messages" in train_rows[0]
    assistant_only = False
    if is_chat:
        if not tokenizer.chat_template:
            raise InvalidRequest(
                f"The model '{entry.name}' has no chat template, so it cannot train on "
                "chat data; give it one in the model catalog.",
                param="model",
            )
        assistant_only = template_masks_by_weight(tokenizer)
        if not assistant_only:
            train_rows = split_trained_turns(train_rows)
            val_rows = split_trained_turns(val_rows) if val_rows else val_rows

    # Padding-free batches by default where they are exact (cpu_path.py); the job's `packing`
    # switch (True or False) overrides it. trl enforces no max_length in that mode, and needs
    # none: validation already dropped every example longer than the context.
    padding_free, _ = choose_padding_free(long_examples=hp.long_examples, packing=hp.packing)
    config = SFTConfig(
        **training_args(spec, entry, output_dir, has_eval=bool(val_rows), model_path=model_path, settings=settings),
        max_length=None if padding_free else hp.context_length or entry.max_length,
        padding_free=padding_free,
        packing=bool(hp.packing),
        assistant_only_loss=assistant_only,
        completion_only_loss=not is_chat or not assistant_only,
    )
    return quiet(
        SFTTrainer(
            args=config, **trainer_inputs(spec, entry, model_path, train_rows, val_rows, callbacks, tokenizer=tokenizer)
        )
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
        out = tokenizer.apply_chat_template(probe, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
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
