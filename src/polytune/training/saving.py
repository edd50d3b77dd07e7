"""Writing a trained model as a folder that loads on its own for inference."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def save_model_dir(model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase,
                   out_dir: Path) -> Path:
    """The full model, or for a peft model its adapter folder, plus tokenizer and chat template."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
