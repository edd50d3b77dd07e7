"""The text side of the tiny Qwen-family pipelines (Z-Image, Qwen-Image): a
Qwen2-style byte-level BPE tokenizer with a hand-written vocabulary (every byte, and the
known words merged into whole tokens, with their leading space), Qwen's chat markers and a minimal chat template, so the
pipelines' `apply_chat_template` calls work offline; and random tiny Qwen3 text models."""

from __future__ import annotations

from polytune.catalog.tiny_diffusion import _WORDS

# The words of polytune-tiny-diffusion's vocabulary, and those of the Qwen chat markers and of
# Qwen-Image's prompt template: with them whole, the template's system part is 34 tokens, the
# count QwenImagePipeline drops from the front of the encoded prompt, as with Qwen's tokenizer.
WORDS = tuple(
    dict.fromkeys(
        (
            *_WORDS,
            "system",
            "user",
            "assistant",
            "Describe",
            "by",
            "detailing",
            "color",
            "shape",
            "size",
            "texture",
            "quantity",
            "text",
            "spatial",
            "relationships",
            "objects",
        )
    )
)

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def build_qwen_tokenizer(model_max_length: int):
    from transformers import Qwen2Tokenizer

    vocab, merges = byte_level_bpe(WORDS)
    for token in SPECIAL:
        vocab.setdefault(token, len(vocab))
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=merges, model_max_length=model_max_length, additional_special_tokens=list(SPECIAL[1:])
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def byte_level_bpe(words) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE vocabulary and merges (Qwen's and Mistral's tokenizers are of this kind):
    every byte, and each of `words` as one token, with and without its leading space."""
    from tokenizers import pre_tokenizers

    vocab: dict[str, int] = {}
    for token in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(token, len(vocab))
    merges: list[tuple[str, str]] = []
    # Each word after a space ("Ġ" in byte-level BPE: the pre-tokenizer keeps the space on the
    # word, " red" is one token in Qwen's vocabulary) and at the start of a text becomes one
    # token: the pieces the merges so far leave of it are merged left to right by new merges.
    for spelled in [*("Ġ" + w for w in words), *words]:
        pieces = _bpe(list(spelled), merges)
        while len(pieces) > 1:
            merges.append((pieces[0], pieces[1]))
            vocab.setdefault(pieces[0] + pieces[1], len(vocab))
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
    return vocab, merges


def _bpe(symbols: list[str], merges: list[tuple[str, str]]) -> list[str]:
    """What byte-level BPE makes of one pre-token: the best-ranked adjacent pair merged, again."""
    rank = {pair: i for i, pair in enumerate(merges)}
    while len(symbols) > 1:
        best = min(range(len(symbols) - 1), key=lambda i: rank.get((symbols[i], symbols[i + 1]), len(rank)))
        if (symbols[best], symbols[best + 1]) not in rank:
            break
        symbols = [*symbols[:best], symbols[best] + symbols[best + 1], *symbols[best + 2 :]]
    return symbols


def qwen3_config(tokenizer, hidden_size: int = 32, layers: int = 2):
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden_size // 4,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
