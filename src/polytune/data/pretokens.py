"""Counting byte-level BPE tokens without building an encoding: a count per pre-token, cached.

A GPT-2-style byte-level BPE tokenizer (the `tokenizers` pipeline: added tokens split out, no
normalizer, the ByteLevel pre-tokenizer's regex, then BPE on each pre-token separately) gives a
text as many tokens as: one per added token, plus, for each piece between them, the sum over its
pre-tokens of the BPE length of that pre-token. Text repeats its words, so a dict of pre-token ->
BPE length answers almost every pre-token without running BPE, and counting becomes one regex
pass and dict lookups in C: several times faster than the backend's encode, which builds a full
Encoding (ids, offsets, words) for each text only for us to take its length.

Exact only where we are sure of the pre-tokenizer's classes, so:
- only texts that are ASCII (there, the ByteLevel regex's `\\p{L}`, `\\p{N}` and `\\s` are the
  explicit classes below; its `\\s` is tab, newline, vertical tab, form feed, return and space,
  checked against the backend at start); other texts go to the backend's batch encode;
- only a tokenizer whose saved pipeline is exactly that (ByteLevel pre-tokenizer with its own
  regex and no prefix space, no normalizer, BPE without dropout, added tokens that strip
  nothing, no truncation or padding): `for_tokenizer` returns None otherwise;
- the BPE length of a pre-token is the backend's own model run on the backend's own byte
  mapping of it, and a probe text is counted both ways at start; any difference, no fast path.
tests/data/test_pretokens.py compares it with the backend on varied text.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SPACE = "\t\n\x0b\x0c\r "
# The ByteLevel pre-tokenizer's regex (tokenizers' byte_level.rs), restricted to ASCII text.
_PRETOKEN = re.compile(
    rf"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^{_SPACE}A-Za-z0-9]+"
    rf"|[{_SPACE}]+(?![^{_SPACE}])|[{_SPACE}]+"
)
# Bounded: a file with very many distinct words starts the cache over rather than grow past this.
_MAX_CACHED = 500_000
_PROBE = (
    "Hello, world! It's 2026: don't   stop\n\n  now\t\t(x_y) 'S 're've'm'll'd 12345 a1b2 ...  \r\n"
    + "".join(chr(c) for c in range(128))
    + " end  "
)


class _Lengths(dict[str, int]):
    """pre-token -> its BPE length, computed on a miss by the backend's model."""

    def __init__(self, model: Any, byte_map: dict[int, str]):
        super().__init__()
        self._model = model
        self._map = byte_map

    def __missing__(self, pretoken: str) -> int:
        if len(self) >= _MAX_CACHED:
            self.clear()
        n = self[pretoken] = len(self._model.tokenize(pretoken.translate(self._map)))
        return n


class PretokenCounter:
    """Token counts of ASCII texts for one byte-level BPE backend (see the module's docstring)."""

    def __init__(self, backend: Any, added: list[str], n_post_special: int):
        byte_map = {c: backend.pre_tokenizer.pre_tokenize_str(chr(c))[0][0] for c in range(128)}
        self._lengths = _Lengths(backend.model, byte_map)
        # Leftmost-longest, as the backend matches added tokens: longer alternatives first.
        self._added = (
            re.compile("|".join(re.escape(t) for t in sorted(added, key=len, reverse=True))) if added else None
        )
        self._post = n_post_special

    def count(self, text: str, special: bool) -> int:
        """The token count of an ASCII text (special: with the post-processor's tokens)."""
        get, findall = self._lengths.__getitem__, _PRETOKEN.findall
        pieces = self._added.split(text) if self._added is not None else [text]
        n = len(pieces) - 1 + sum([sum(map(get, findall(piece))) for piece in pieces])
        return n + self._post if special else n


def for_tokenizer(backend: Any) -> PretokenCounter | None:
    """A PretokenCounter for this `tokenizers.Tokenizer`, or None where it would not be exact."""
    try:
        config = json.loads(backend.to_str())
    except Exception:  # noqa: BLE001 - a backend that cannot describe itself gets no fast path
        return None
    pre, model = config.get("pre_tokenizer") or {}, config.get("model") or {}
    if (
        config.get("normalizer") is not None
        or config.get("truncation") is not None
        or config.get("padding") is not None
        or pre != {**pre, "type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
        or model.get("type") != "BPE"
        or model.get("dropout") is not None
        or any(t.get("lstrip") or t.get("rstrip") or t.get("single_word") for t in config.get("added_tokens") or [])
    ):
        return None
    post = backend.post_processor
    added = [t["content"] for t in config.get("added_tokens") or []]
    try:
        counter = PretokenCounter(backend, added, post.num_special_tokens_to_add(False) if post is not None else 0)
        probes = [_PROBE, _PROBE.replace(" ", "".join(added)), "".join(added) + _PROBE + "".join(reversed(added))]
        for special in (False, True):
            expected = [len(e) for e in backend.encode_batch(probes, add_special_tokens=special)]
            if [counter.count(p, special) for p in probes] != expected:
                return None
    except Exception:  # noqa: BLE001 - anything unexpected in the backend: count with it instead
        return None
    return counter
