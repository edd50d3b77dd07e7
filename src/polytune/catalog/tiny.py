"""polytune-tiny: the built-in base model, built offline, identically in every process.

A byte-level BPE tokenizer trained on generated text (tiny_corpus.py) and a random-init
Llama with a fixed seed. It is small enough to train on two CPU cores in seconds, so the
whole service works, end to end, with no network and no downloads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from polytune.catalog.builds import ensure_built, source_version

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

TINY_NAME = "polytune-tiny"
# Bump to force a rebuild; builder_version() also changes with the source of this file and
# tiny_corpus.py, so a code change never runs against a stale model folder.
BUILD_VERSION = "1"

_SEED = 1234
_VOCAB_SIZE = 4096
_CORPUS_LINES = 20_000
BOS_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS = [BOS_TOKEN, IM_START, IM_END, PAD_TOKEN]

# ChatML. Written with whitespace control on every tag and newlines as expressions because
# transformers renders with trim_blocks, which would eat a literal newline after a tag.
# The assistant's content and its <|im_end|> sit inside {% generation %} so that
# return_assistant_tokens_mask (and trl's assistant_only_loss) trains the answer and the stop
# token; an assistant message with weight 0 is rendered outside it, i.e. not trained.
CHAT_TEMPLATE = r"""
{%- for message in messages -%}
    {%- set content = message['content'] -%}
    {%- if content is none -%}
        {%- set content = '' -%}
    {%- elif content is not string -%}
        {%- set parts = namespace(text='') -%}
        {%- for part in content -%}
            {%- if part['type'] == 'text' -%}
                {%- set parts.text = parts.text + part['text'] -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set content = parts.text -%}
    {%- endif -%}
    {{- '<|im_start|>' + message['role'] + '\n' -}}
    {%- if message['role'] == 'assistant' and message.get('weight') != 0 -%}
        {%- generation -%}
            {{- content + '<|im_end|>' -}}
        {%- endgeneration -%}
    {%- else -%}
        {{- content + '<|im_end|>' -}}
    {%- endif -%}
    {{- '\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
{%- endif -%}
""".strip()


def builder_version() -> str:
    """BUILD_VERSION and a hash of this file and its corpus (builds.source_version)."""
    return source_version(BUILD_VERSION, __file__, "tiny_corpus.py")


def ensure_tiny(cache_dir: Path) -> Path:
    """The polytune-tiny folder under `cache_dir`: copied from the machine's shared build cache
    (builds.py), where it is built on first use. Folders appear whole (built or copied aside,
    then renamed into place); when processes race, one rename wins.
    """
    return ensure_built(Path(cache_dir), TINY_NAME, builder_version(), build_tiny)


def build_tiny(out_dir: Path) -> None:
    """Write the tokenizer and the random-init model to `out_dir` (which must exist)."""
    tokenizer = build_tokenizer()
    model = build_model(tokenizer)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    # Written last: its presence means the folder is complete.


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with ChatML special tokens and the ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from polytune.catalog.tiny_corpus import corpus_lines

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        # Every byte gets an id, so any text (any language, emoji) can be tokenized.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus_lines(_SEED, _CORPUS_LINES), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS_TOKEN,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        extra_special_tokens=[IM_START],
        model_max_length=2048,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_model(tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    """A small random-init Llama whose weights depend only on `_SEED`."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(_SEED)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    return model
