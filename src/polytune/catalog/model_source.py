"""What adding a model to the catalog reads of it: its config and its tokenizer, never its weights.

An 8B model is 16 GB of shards; `polytune models add` must answer in a second, so the weights
are only listed (a local folder's single file, or the shards its index names), not opened. The
context window comes from the config (max_position_embeddings and its other names), so a model
trains at its own length by default rather than at a fixed 1024.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polytune.domain.errors import InvalidRequest

# The names configs give their context window, most common first (Llama/Qwen/Mistral, GPT-2,
# T5-style, ChatGLM, GPT-J, MPT).
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx", "max_seq_len")
# Tokenizers that do not know their model's length report a huge model_max_length (1e30).
_UNKNOWN_LENGTH = 1_000_000_000
# Without any of those, the catalog's former fixed default.
FALLBACK_CONTEXT = 1024
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class ModelInfo:
    """What `models add` learned of a model: its context window and where its weights are."""

    context_window: int
    # Weight files found (a local folder: names relative to it; a hub id: not listed).
    weight_files: tuple[str, ...]


def context_window(config: dict[str, Any]) -> int | None:
    """The model's context window from its config (a multimodal config's text part too)."""
    for part in (config, config.get("text_config") or {}, config.get("llm_config") or {}):
        for key in CONTEXT_KEYS:
            value = part.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def is_local(source: str | Path) -> bool:
    """A folder on this machine (absolute, relative or ~), rather than a hub id such as "org/model"."""
    text = str(source)
    return Path(text).expanduser().exists() or text.startswith(("/", ".", "~"))


def local_weights(folder: Path) -> tuple[str, ...]:
    """The weight files a transformers folder holds, by name only: a single file, or the shards
    a sharded index names (each must be there, but none is opened)."""
    for index_name in WEIGHT_INDEXES:
        index = folder / index_name
        if not index.is_file():
            continue
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise InvalidRequest(
                f"{index} is not a sharded-weights index (a JSON object with a weight_map): {e}", param="model"
            ) from e
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise InvalidRequest(
                f"{index_name} names shards that {folder} lacks: {', '.join(missing[:5])}", param="model"
            )
        return (index_name, *shards)
    found = tuple(name for name in WEIGHT_FILES if (folder / name).is_file())
    if not found:
        raise InvalidRequest(
            f"{folder} has no weights (one of {', '.join(WEIGHT_FILES + WEIGHT_INDEXES)}).", param="model"
        )
    return found


def _needs_remote_code(config: dict[str, Any]) -> bool:
    # auto_map names Python classes shipped with the model: loading it runs that code.
    return bool(config.get("auto_map"))


def inspect(source: str, *, revision: str | None = None, trust_remote_code: bool = False) -> ModelInfo:
    """Read a text model's config and tokenizer (a local folder, or a hub id at `revision`),
    refusing custom code unless the operator opted in. Raises InvalidRequest naming the problem."""
    local = is_local(source)
    if local and revision is not None:
        raise InvalidRequest("A local folder has no revisions; --revision is for hub ids.", param="revision")
    config = _read_config(source, revision)
    if _needs_remote_code(config) and not trust_remote_code:
        raise InvalidRequest(
            f"{source} ships its own model code (auto_map in config.json: "
            f"{', '.join(sorted(config['auto_map']))}); loading it runs that code. Pass --trust-remote-code "
            "if you trust it.",
            param="trust_remote_code",
        )
    tokenizer = _read_tokenizer(source, revision, trust_remote_code)
    window = context_window(config)
    if window is None:
        length = getattr(tokenizer, "model_max_length", None)
        window = length if isinstance(length, int) and 0 < length < _UNKNOWN_LENGTH else FALLBACK_CONTEXT
    return ModelInfo(context_window=window, weight_files=local_weights(Path(source)) if local else ())


def _read_config(source: str, revision: str | None) -> dict[str, Any]:
    """config.json as written (no model class is imported for it, so custom code never runs)."""
    try:
        if is_local(source):
            path = Path(source) / "config.json"
        else:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(source, "config.json", revision=revision))
        config = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise InvalidRequest(
            f"{source} has no config.json; expected a transformers model folder.", param="model"
        ) from e
    except (OSError, ValueError) as e:  # hub errors (offline, unknown repo or revision) are OSErrors
        raise InvalidRequest(f"The config of {source} cannot be read: {e}", param="model") from e
    if not isinstance(config, dict):
        raise InvalidRequest(f"{source}'s config.json is not a JSON object.", param="model")
    return config


def _read_tokenizer(source: str, revision: str | None, trust_remote_code: bool):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InvalidRequest(f"The tokenizer of {source} cannot be loaded: {e}", param="model") from e
