"""A transformers folder as one GGUF file for llama.cpp and Ollama, written with the `gguf`
package (llama.cpp's own Python writer, its tensor-name map, special-vocab reader and
quantizers), following llama.cpp's `convert_hf_to_gguf.py` for the architectures it knows.

What llama.cpp needs beyond the tensors is the architecture's hyperparameters and the
tokenizer, including which pre-tokenizer regex it splits text with: llama.cpp names those
(`tokenizer.ggml.pre`) and has no way to take an arbitrary one. So a model converts only when
its architecture and its pre-tokenizer are both among those listed here; anything else is
refused with the reason (`unsupported`), never written half right."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# transformers architecture -> gguf architecture. Llama's layout (HF's rotary halves, q/k
# permuted into llama.cpp's interleaved order exactly as convert_hf_to_gguf's LlamaModel does).
ARCHITECTURES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama"}

# Pre-tokenizers llama.cpp knows, as tokenizer.json spells them.
_LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def unsupported(model_dir: Path) -> str | None:
    """Why this folder cannot become a GGUF file, or None when it can."""
    config = _json(model_dir / "config.json")
    archs = config.get("architectures") or []
    arch = next((a for a in archs if a in ARCHITECTURES), None)
    if arch is None:
        return (
            f"the architecture {', '.join(archs) or 'unknown'} has no GGUF conversion here "
            f"(supported: {', '.join(sorted(ARCHITECTURES))})"
        )
    if config.get("rope_scaling"):
        return "models with rope_scaling have no GGUF conversion here"
    if _pre_tokenizer(model_dir) is None:
        return (
            "its tokenizer's pre-tokenizer is not one llama.cpp names (GPT-2 byte-level or Llama 3), "
            "so llama.cpp would split text differently from the model"
        )
    return None


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _pre_tokenizer(model_dir: Path) -> str | None:
    """llama.cpp's name (`tokenizer.ggml.pre`) for the folder's pre-tokenizer, or None."""
    tokenizer = _json(model_dir / "tokenizer.json")
    if (tokenizer.get("model") or {}).get("type") != "BPE":
        return None
    pre = tokenizer.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space"):
        return "gpt-2"
    steps = pre.get("pretokenizers") or []
    if (
        pre.get("type") == "Sequence"
        and len(steps) == 2
        and steps[0].get("type") == "Split"
        and (steps[0].get("pattern") or {}).get("Regex") == _LLAMA3_REGEX
        and steps[1].get("type") == "ByteLevel"
        and not steps[1].get("use_regex", True)
    ):
        return "llama-bpe"
    return None


def _permute(weights, n_head: int, n_head_kv: int | None):
    """convert_hf_to_gguf's LlamaModel.permute: HF's rotary layout to llama.cpp's."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def write_gguf(model_dir: Path, out_path: Path, name: str) -> Path:
    """Convert the (full, merged) transformers folder `model_dir` to `out_path`. Floating point
    weights keep their precision (F32, F16 or BF16; 1-D tensors in F32, as llama.cpp's
    converter writes them); quantize afterwards with llama.cpp's `llama-quantize`."""
    reason = unsupported(model_dir)
    if reason is not None:
        raise ValueError(reason)
    import gguf
    import numpy as np
    import torch
    from safetensors import safe_open

    config = _json(model_dir / "config.json")
    n_head, n_layers = config["num_attention_heads"], config["num_hidden_layers"]
    n_head_kv = config.get("num_key_value_heads") or n_head
    head_dim = config.get("head_dim") or config["hidden_size"] // n_head
    writer = gguf.GGUFWriter(
        out_path, ARCHITECTURES[next(a for a in config["architectures"] if a in ARCHITECTURES)], use_temp_file=True
    )
    ftype, qtype = _file_type(config, gguf)
    writer.add_name(name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_freq_base(config.get("rope_theta", 10000.0))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])
    writer.add_rope_dimension_count(head_dim)
    writer.add_file_type(ftype)
    _add_vocab(writer, model_dir, config["vocab_size"], gguf)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ValueError("the model has no safetensors weights")
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                if key.endswith("rotary_emb.inv_freq"):
                    continue
                if key == "lm_head.weight" and config.get("tie_word_embeddings"):
                    continue  # llama.cpp uses token_embd when there is no output tensor
                data = f.get_tensor(key).to(torch.float32)
                if key.endswith("self_attn.q_proj.weight"):
                    data = _permute(data, n_head, n_head)
                elif key.endswith("self_attn.k_proj.weight"):
                    data = _permute(data, n_head, n_head_kv)
                new = names.get_name(key, try_suffixes=(".weight", ".bias"))
                if new is None:
                    raise ValueError(f"the tensor {key} has no GGUF name")
                array = data.numpy()
                if array.ndim <= 1 or qtype == gguf.GGMLQuantizationType.F32:
                    writer.add_tensor(new, array.astype(np.float32))
                elif qtype == gguf.GGMLQuantizationType.F16:
                    writer.add_tensor(new, array.astype(np.float16))
                else:
                    writer.add_tensor(new, gguf.quants.quantize(array, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path


def _file_type(config: dict[str, Any], gguf) -> tuple[int, Any]:
    dtype = config.get("dtype") or config.get("torch_dtype") or "float32"
    if dtype == "bfloat16":
        return gguf.LlamaFileType.MOSTLY_BF16, gguf.GGMLQuantizationType.BF16
    if dtype == "float16":
        return gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16
    return gguf.LlamaFileType.ALL_F32, gguf.GGMLQuantizationType.F32


def _add_vocab(writer, model_dir: Path, vocab_size: int, gguf) -> None:
    """convert_hf_to_gguf's `_set_vocab_gpt2`: every id's token and type, the merges, the
    special tokens and the chat template (Ollama and llama.cpp's server render chats with it)."""
    from polytune.lazy_imports import from_transformers

    (auto_tokenizer,) = from_transformers("AutoTokenizer")
    tokenizer = auto_tokenizer.from_pretrained(model_dir)
    reverse = {i: token for token, i in tokenizer.get_vocab().items()}
    added = tokenizer.get_added_vocab()
    decoder = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        token = reverse.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        if token in added:
            types.append(gguf.TokenType.CONTROL if decoder[i].special else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(token)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(model_dir))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=vocab_size).add_to_gguf(writer)
