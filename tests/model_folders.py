"""A transformers model folder as `polytune models add` takes it, without real weights: a config,
polytune-tiny's tokenizer, and a sharded-weights index whose shards are garbage (adding a model
reads its config and tokenizer only: catalog/model_source.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from polytune.catalog.tiny import ensure_tiny

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")
SHARDS = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")


def shaped_model_folder(
    folder: Path,
    config: dict[str, Any],
    *,
    tokenizer_from: Path | None = None,
    garbage: bytes = b"not safetensors at all",
) -> Path:
    """`folder` with `config` as config.json, a tokenizer (polytune-tiny's unless `tokenizer_from`)
    and two garbage shards named by model.safetensors.index.json."""
    folder.mkdir(parents=True, exist_ok=True)
    source = tokenizer_from or ensure_tiny(folder.parent / ".tiny-for-tokenizer")
    (folder / "config.json").write_text(json.dumps(config))
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, folder)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps(
            {
                "metadata": {"total_size": 16_000_000_000},
                "weight_map": {"model.embed_tokens.weight": SHARDS[0], "lm_head.weight": SHARDS[1]},
            }
        )
    )
    for shard in SHARDS:
        (folder / shard).write_bytes(garbage)
    return folder


def diverged_copy(base_dir: Path, folder: Path) -> Path:
    """A copy of a model folder whose every floating-point weight is NaN, as a diverged training
    leaves one (serving it must be a 400 naming the model)."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(base_dir, folder)
    weights = load_file(folder / "model.safetensors")
    weights = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in weights.items()}
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder
