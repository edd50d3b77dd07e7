"""The text side of the tiny FLUX.2 pipeline: a hand-written byte-level BPE tokenizer (the kind
Mistral's tekken tokenizer is) with Mistral's control tokens and a minimal Mistral-3 chat
template; and a random tiny
`Mistral3ForConditionalGeneration` (Mistral text model, one-block Pixtral vision tower that text
prompts never use).

The vocabulary knows polytune-tiny-diffusion's words and the words of FLUX.2's system message
whole (the pipeline puts that message before every prompt), so message and prompt fit in a
short `max_sequence_length` as they fit in 512 tokens with Mistral's real tokenizer.

FLUX.2-dev's own `tokenizer` is a `PixtralProcessor` (the tokenizer and Pixtral's image
processor), which transformers 5 only builds with torchvision installed; polytune does not
depend on torchvision, so the tiny pipeline's `tokenizer` is the bare tokenizer. The pipeline
calls only `apply_chat_template` on it, with the same arguments a processor takes."""

from __future__ import annotations

import re

from polytune.catalog.tiny_diffusion import _WORDS

# Mistral's control tokens (the tekken tokenizer's names), and Pixtral's image markers, which
# the processor looks up by name.
BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
CONTROL = (
    UNK,
    BOS,
    EOS,
    PAD,
    "[INST]",
    "[/INST]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[IMG]",
    "[IMG_BREAK]",
    "[IMG_END]",
)

# Mistral-3's layout of a conversation, text parts only (FLUX.2 sends the system message and the
# prompt as lists of {"type": "text"} parts).
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% set text = namespace(v='') %}"
    "{% if m['content'] is string %}{% set text.v = m['content'] %}{% else %}"
    "{% for part in m['content'] %}{% if part['type'] == 'text' %}{% set text.v = text.v + part['text'] %}"
    "{% endif %}{% endfor %}{% endif %}"
    "{% if m['role'] == 'system' %}[SYSTEM_PROMPT]{{ text.v }}[/SYSTEM_PROMPT]"
    "{% elif m['role'] == 'user' %}[INST]{{ text.v }}[/INST]"
    "{% else %}{{ text.v }}{{ eos_token }}{% endif %}{% endfor %}"
)


def vocabulary_words() -> tuple[str, ...]:
    from diffusers.pipelines.flux2.system_messages import SYSTEM_MESSAGE

    return tuple(dict.fromkeys((*_WORDS, *re.findall(r"[A-Za-z]+", SYSTEM_MESSAGE))))


def build_mistral_tokenizer(model_max_length: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from tests.tiny_builders.tiny_qwen_text import byte_level_bpe

    vocab, merges = byte_level_bpe(vocabulary_words())
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=model_max_length,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=list(CONTROL[4:]),
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_mistral3(tokenizer, hidden_size: int = 16, layers: int = 30):
    """A random Mistral3ForConditionalGeneration. 30 layers: FLUX.2 stacks the hidden states of
    layers 10, 20 and 30 (its `text_encoder_out_layers`) as the prompt."""
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    config = Mistral3Config(
        text_config={
            "model_type": "mistral",
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": layers,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": hidden_size // 2,
            "max_position_embeddings": 1024,
            "sliding_window": None,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={
            "model_type": "pixtral",
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "head_dim": 8,
            "patch_size": 8,
            "image_size": 64,
        },  # never run: prompts are text
        image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"),
        spatial_merge_size=1,
        tie_word_embeddings=False,
    )
    return Mistral3ForConditionalGeneration(config).eval()
