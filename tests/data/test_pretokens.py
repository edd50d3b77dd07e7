"""Counting from cached pre-token lengths gives the backend's own counts, and is used only where
it is exact."""

from __future__ import annotations

import random

import pytest

from polytune.data import pretokens
from polytune.data.pretokens import for_tokenizer
from polytune.data.tokens import TokenCounter, load_tokenizer

_PIECES = [
    " ",
    "  ",
    "\n",
    "\n\n",
    "\t",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1c",
    "'s",
    "'S",
    "'ll",
    "'d",
    "don't",
    "x",
    "word",
    "Word",
    " the",
    "42",
    "3.14",
    "_",
    "__init__",
    "!?",
    "...",
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|im_",
    "|>",
    "{{",
    "}}",
    "\x00",
    "\x7f",
    "a1b2",
]


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        parts = rng.choices(_PIECES, k=rng.randint(0, 40))
        parts += [chr(rng.randrange(128)) for _ in range(rng.randint(0, 6))]
        rng.shuffle(parts)
        texts.append("".join(parts))
    return texts


@pytest.fixture(scope="module")
def tokenizer(tiny_path):
    return load_tokenizer(tiny_path)


def test_the_tiny_tokenizer_gets_the_fast_path(tokenizer):
    assert for_tokenizer(tokenizer._tokenizer) is not None
    assert TokenCounter(tokenizer)._pretokens is not None


@pytest.mark.parametrize("special", [False, True])
def test_counts_equal_the_backends_on_varied_ascii_text(tokenizer, special):
    backend = tokenizer._tokenizer
    counter = for_tokenizer(backend)
    texts = _texts(2000, seed=int(special))
    assert [counter.count(t, special) for t in texts] == [
        len(e) for e in backend.encode_batch(texts, add_special_tokens=special)
    ]


def test_non_ascii_texts_are_counted_by_the_backend(tokenizer):
    texts = ["naïve café\u00a0x", "日本語 text", "plain ascii", "\u2028line\u3000sep", "emoji 🙂 's"]
    expected = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    assert TokenCounter(tokenizer)._count(texts, False) == expected


def test_the_cache_stays_bounded(tokenizer, monkeypatch):
    monkeypatch.setattr(pretokens, "_MAX_CACHED", 50)
    counter = for_tokenizer(tokenizer._tokenizer)
    texts = _texts(300, seed=7)
    assert [counter.count(t, False) for t in texts] == [
        len(e) for e in tokenizer._tokenizer.encode_batch(texts, add_special_tokens=False)
    ]
    assert len(counter._lengths) <= 50


def test_other_pipelines_get_no_fast_path(tokenizer):
    from tokenizers import Tokenizer, normalizers, pre_tokenizers

    with_normalizer = Tokenizer.from_str(tokenizer._tokenizer.to_str())
    with_normalizer.normalizer = normalizers.Lowercase()
    assert for_tokenizer(with_normalizer) is None
    whitespace = Tokenizer.from_str(tokenizer._tokenizer.to_str())
    whitespace.pre_tokenizer = pre_tokenizers.Whitespace()
    assert for_tokenizer(whitespace) is None
    prefix_space = Tokenizer.from_str(tokenizer._tokenizer.to_str())
    prefix_space.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    assert for_tokenizer(prefix_space) is None
