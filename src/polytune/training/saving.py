"""Writing a trained model as a folder that loads on its own for inference."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer


def save_model_dir(model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase,
                   out_dir: Path, *, state_dict: dict[str, Any] | None = None) -> Path:
    """The full model, or for a peft model its adapter folder, plus tokenizer and chat template.
    `state_dict`: the weights to write instead of the model's own (gathered from FSDP shards)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, **({"state_dict": state_dict} if state_dict is not None else {}))
    tokenizer.save_pretrained(out_dir)
    return out_dir


def save_trained(trainer: Trainer, out_dir: Path) -> Path | None:
    """The trainer's model as save_model_dir writes it, by rank 0 (None on the other ranks).

    Every rank must call this: under FSDP each holds a shard of every weight, and gathering
    them into whole tensors (accelerate's get_state_dict) is a collective."""
    state_dict = None
    if getattr(trainer, "is_fsdp_enabled", False):
        state_dict = trainer.accelerator.get_state_dict(trainer.model)
    if not trainer.is_world_process_zero():
        return None
    model = trainer.accelerator.unwrap_model(trainer.model)
    return save_model_dir(model, trainer.processing_class, out_dir, state_dict=state_dict)
