"""The text side of the tiny Qwen-family pipelines (Z-Image, Qwen-Image, FLUX.2 [klein]): a
Qwen2-style byte-level BPE tokenizer with a hand-written vocabulary (every byte, and
polytune-tiny-diffusion's words merged into whole tokens; the space before a word stays a
token of its own), Qwen's chat markers and a minimal chat template, so the
pipelines' `apply_chat_template` calls work offline; and random tiny Qwen3 text models."""

from __future__ import annotations

from polytune.training.tiny_diffusion import _WORDS

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def build_qwen_tokenizer(model_max_length: int):
    from tokenizers import pre_tokenizers
    from transformers import Qwen2Tokenizer

    vocab: dict[str, int] = {}
    for token in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(token, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in _WORDS:  # merged left to right: r+e, re+d -> "red"
        left = word[0]
        for piece in word[1:]:
            if (left, piece) not in merges:
                merges.append((left, piece))
            left += piece
            vocab.setdefault(left, len(vocab))
    for token in SPECIAL:
        vocab.setdefault(token, len(vocab))
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length,
                               additional_special_tokens=list(SPECIAL[1:]))
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def qwen3_config(tokenizer, hidden_size: int = 32, layers: int = 2):
    from transformers import Qwen3Config

    return Qwen3Config(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                       num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                       head_dim=hidden_size // 4, max_position_embeddings=512, tie_word_embeddings=False,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
