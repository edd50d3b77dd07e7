"""Counting from cached pre-token lengths gives the backend's own counts, and is used only where
it is exact."""

from __future__ import annotations

import random
import zlib

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
    monkeypatch.setattr(pretokens, "_MAX_WORDS", 50)
    counter = for_tokenizer(tokenizer._tokenizer)
    texts = _texts(300, seed=7)
    assert [counter.count(t, False) for t in texts] == [
        len(e) for e in tokenizer._tokenizer.encode_batch(texts, add_special_tokens=False)
    ]
    assert max(len(counter._lengths), len(counter._middle), len(counter._head), len(counter._tail)) <= 50


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


class _Weights(dict):
    """A made-up length per pre-token, so that two different pre-token splits of a text (say
    "\\n " + "x" against "\\n" + " x") almost surely sum differently, whatever the vocabulary
    happens to merge: the splits themselves are compared, not only the tiny model's counts."""

    def __missing__(self, pretoken: str) -> int:
        n = self[pretoken] = 1 + zlib.crc32(pretoken.encode()) % 100_003
        return n


def _weighted(counter):
    counter._lengths = _Weights()
    counter._middle = pretokens._Words(counter._lengths)
    counter._head = pretokens._Edge(counter._middle, "", checked=True)
    counter._tail = pretokens._Edge(counter._middle, " ", checked=False)
    counter._plans = {}
    return counter


def _scanned(counter, text: str) -> int:
    """The weighted count, pre-token by pre-token over the whole text."""
    pieces = counter._added.split(text)
    return len(pieces) - 1 + sum(counter._lengths[p] for piece in pieces for p in pretokens._PRETOKEN.findall(piece))


@pytest.mark.parametrize("seed", [11, 12])
def test_splitting_at_spaces_keeps_every_pre_token(tokenizer, seed):
    counter = _weighted(for_tokenizer(tokenizer._tokenizer))
    texts = _texts(3000, seed) + ["a\n \nb", "a\n b", "x  y", " x", "x ", "x\t y", "'s 's", "<|im_end|> x <|im_end|>"]
    assert [counter.count(t, False) for t in texts] == [_scanned(counter, t) for t in texts]


@pytest.mark.parametrize(
    "pieces",
    [
        ("<|im_start|>system\n", "<|im_end|>\n<|im_start|>user\n", "<|im_end|>\n"),
        ("<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"),  # ends in a content
        ("", "<|im_end|>", "<|im_end|>"),
        ("<|im_start|>user\n\n", "<|im_end|>"),  # "\n\n": counted whole
        ("<|im_start|>user: ", "<|im_end|>"),  # a space before the content: counted whole
        ("<|im_start|>user\n", "\n<|im_end|>"),  # text after the content: counted whole
    ],
)
def test_contents_counted_alone_keep_every_pre_token(tokenizer, pieces):
    counter = _weighted(for_tokenizer(tokenizer._tokenizer))
    texts = iter(_texts(3000, seed=len(pieces[0])))
    for _ in range(1000):
        contents = [next(texts) for _ in pieces[1:]]
        joined = pieces[0] + "".join(c + p for c, p in zip(contents, pieces[1:]))
        n = counter.count_spliced(pieces, contents)
        assert n is None or n == _scanned(counter, joined)
    whole = "\n\n" in pieces[0] or " " in pieces[0] or pieces[1].startswith("\n")
    assert (counter._plans[pieces] is None) == whole


def test_no_content_is_counted_alone_where_an_added_token_could_span_the_join(tokenizer):
    from tokenizers import AddedToken, Tokenizer

    chatml = ("<|im_start|>user\n", "<|im_end|>\n")
    for token in ("d<|im_end", "\nx"):  # spans content + "<|im_end|>", or "user\n" + content
        backend = Tokenizer.from_str(tokenizer._tokenizer.to_str())
        backend.add_tokens([AddedToken(token, normalized=False)])
        counter = for_tokenizer(backend)
        assert counter is not None and counter.count_spliced(chatml, ["word"]) is None
    assert for_tokenizer(tokenizer._tokenizer).count_spliced(chatml, ["word"]) is not None


@pytest.mark.parametrize("seed", [21, 22])
def test_contents_counted_all_at_once_keep_every_pre_token(tokenizer, seed):
    """The usual row (ASCII contents with spaces, no added token) is counted in one sum over
    all its contents' words, with each content's first and last word corrected: contents that
    start or end with whitespace, spaces, empty words or one word must come out as scanned."""
    counter = _weighted(for_tokenizer(tokenizer._tokenizer))
    pieces = ("<|im_start|>system\n", "<|im_end|>\n<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n", "")
    words = [p for p in _PIECES if "<|" not in p and "|>" not in p and not set(p) & set(pretokens._SPACE)] * 20
    words += ["\n", "\n\n", " "]  # now and then a whitespace word, which the sum marks _UNSAFE
    starts = ["", "x", "'s", "42", ".", "\x00"] * 5 + [" ", "\n", "\t "]
    ends = ["", " ", "  ", "\n", " \n", "\n ", "\t ", ".", "x", "'s"]
    rng = random.Random(seed)
    at_once = 0
    for _ in range(2000):
        contents = [
            rng.choice(starts) + " ".join(rng.choices(words, k=rng.randint(0, 12))) + rng.choice(ends) for _ in range(3)
        ]
        joined = pieces[0] + "".join(c + p for c, p in zip(contents, pieces[1:]))
        n = counter.count_spliced(pieces, contents)
        assert n is None or n == _scanned(counter, joined), contents
        plan = counter._plans[pieces]
        part = counter._contents(contents, plan.clean_starts, counter._added)
        if part is not None and part >= 0:
            at_once += 1
            assert plan.fixed + part == n
    assert at_once > 200  # the path under test was taken (the rest: one by one, or the whole text)
