"""A fine-tuned model's weights in the forms other tools load: the folder as saved (a peft
adapter, diffusers LoRA weights or a full model), merged full weights (peft's
`merge_and_unload`) and one tar stream of a folder. GGUF is gguf_export.py's.

Everything here is blocking and heavy (torch); the export service runs it once per model and
format and keeps the result in storage."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import BinaryIO


def merge_adapter(base_dir: Path | str, adapter_dir: Path, out_dir: Path) -> Path:
    """The base model with the LoRA adapter folded into its weights (peft's merge_and_unload),
    saved as safetensors with the adapter's tokenizer and chat template: a plain transformers
    folder that AutoModelForCausalLM loads with no peft."""
    import torch
    from peft import PeftModel

    from polytune.lazy_imports import from_transformers

    auto_model, auto_tokenizer = from_transformers("AutoModelForCausalLM", "AutoTokenizer")
    # Merged in float32 (exact on CPU, as the adapter was trained), written in the base's own
    # dtype: a bf16 base gives a bf16 merged model, the size it was published at.
    base = auto_model.from_pretrained(base_dir, dtype=torch.float32)
    own = _config_dtype(Path(base_dir))
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    if own is not None and own != "float32":
        merged = merged.to(getattr(torch, own))
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir, safe_serialization=True)
    tokenizer_from = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base_dir
    auto_tokenizer.from_pretrained(tokenizer_from).save_pretrained(out_dir)
    return out_dir


def _config_dtype(folder: Path) -> str | None:
    import json

    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    dtype = config.get("dtype") or config.get("torch_dtype")
    return dtype if isinstance(dtype, str) else None


def write_tar(folder: Path, out: BinaryIO) -> None:
    """The folder's files as an uncompressed tar (weights do not compress; the size is then
    known up front and a download resumes at any byte), names relative to the folder."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
