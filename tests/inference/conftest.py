"""Fixtures for the inference tests: polytune-tiny, and LoRA adapters made without training."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.conftest import catalog, tiny, tiny_diffusion  # noqa: F401 - fixtures shared with the training tests


def make_adapter(base_dir: Path, out_dir: Path, seed: int) -> Path:
    """A LoRA adapter shaped like polytune-tiny's fine-tunes (adapters on every linear layer, the
    tied embeddings trained alongside), with random weights so it answers unlike the base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules="all-linear",
        init_lora_weights=False,
        modules_to_save=["embed_tokens"],
        ensure_weight_tying=True,
        task_type="CAUSAL_LM",
    )
    peft = get_peft_model(model, config)
    with torch.no_grad():
        embeddings = peft.get_input_embeddings().modules_to_save["default"].weight
        embeddings.add_(torch.randn_like(embeddings) * 0.5)
    peft.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def adapters(tiny, tmp_path_factory) -> list[Path]:
    _, base_dir = tiny
    root = tmp_path_factory.mktemp("adapters")
    return [make_adapter(base_dir, root / f"adapter-{i}", seed=i) for i in range(3)]
