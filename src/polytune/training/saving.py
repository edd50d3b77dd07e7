"""Writing a trained model as a folder that loads on its own for inference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer


def save_model_dir(
    model: PreTrainedModel | PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: Path,
    *,
    state_dict: dict[str, Any] | None = None,
) -> Path:
    """The full model, or for a peft model its adapter folder, plus tokenizer and chat template.
    `state_dict`: the weights to write instead of the model's own (gathered from FSDP shards)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state_dict, own = in_own_dtype(model, state_dict)
    model.save_pretrained(out_dir, **({"state_dict": state_dict} if state_dict is not None else {}))
    if own is not None:
        # save_pretrained writes the dtype of the model in memory; config.json must say what is on disk.
        config_file = out_dir / "config.json"
        config = json.loads(config_file.read_text())
        config["dtype"] = own
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tokenizer.save_pretrained(out_dir)
    return out_dir


def own_dtype(model) -> str | None:
    """The dtype of the base model's own config.json (what it was published in), or None."""
    from polytune.training.precision import saved_dtype

    folder = Path(getattr(model.config, "name_or_path", "") or "")
    try:
        return saved_dtype(json.loads((folder / "config.json").read_text()))
    except (OSError, ValueError):
        return None


def in_own_dtype(model, state_dict: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """A full model trained with fp32 master weights is written in the model's own dtype (a bf16
    model stays bf16 on disk, half the size). Adapters (peft) are small and stay as trained."""
    if hasattr(model, "peft_config"):
        return state_dict, None
    import torch

    target = own_dtype(model)
    if target is None or getattr(model, "dtype", None) == getattr(torch, target):
        return state_dict, None
    dtype = getattr(torch, target)
    weights = state_dict if state_dict is not None else model.state_dict()
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in weights.items()}, target


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
