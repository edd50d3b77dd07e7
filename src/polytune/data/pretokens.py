"""Counting byte-level BPE tokens without building an encoding: a count per pre-token, cached.

A GPT-2-style byte-level BPE tokenizer (the `tokenizers` pipeline: added tokens split out, no
normalizer, the ByteLevel pre-tokenizer's regex, then BPE on each pre-token separately) gives a
text as many tokens as: one per added token, plus, for each piece between them, the sum over its
pre-tokens of the BPE length of that pre-token. Text repeats its words, so dicts answer almost
every lookup without running BPE, at three levels:
- pre-token -> BPE length (`_Lengths`);
- word -> tokens: a piece split at its single spaces is its words' pre-tokens end to end
  (`PretokenCounter._piece` says why), and `str.split` plus one dict lookup per word runs
  several times faster than the regex scan; a piece where a space has whitespace beside it is
  scanned with the regex instead;
- a chat template's fixed pieces are counted once per conversation shape, and each message
  content alone, where no pre-token or added token can span a join (`PretokenCounter._plan`):
  no rendered text is built at all. The usual row's contents are counted in one sum over all
  their words (`PretokenCounter._contents`), each content's two end words corrected.
Several times faster than the backend's encode, which builds a full Encoding (ids, offsets,
words) for each text only for us to take its length.

Exact only where we are sure of the pre-tokenizer's classes, so:
- only texts that are ASCII (there, the ByteLevel regex's `\\p{L}`, `\\p{N}` and `\\s` are the
  explicit classes below; its `\\s` is tab, newline, vertical tab, form feed, return and space,
  checked against the backend at start); other texts go to the backend's batch encode;
- only a tokenizer whose saved pipeline is exactly that (ByteLevel pre-tokenizer with its own
  regex and no prefix space, no normalizer, BPE without dropout, added tokens that strip
  nothing, no truncation or padding): `for_tokenizer` returns None otherwise;
- the BPE length of a pre-token is the backend's own model run on the backend's own byte
  mapping of it, and a probe text is counted both ways at start; any difference, no fast path.
tests/data/test_pretokens.py compares it with the backend on varied text, and the word and
content splits with the regex scan of the whole text (with made-up lengths per pre-token, so
that any pre-token the split would cut or join differently shows).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_SPACE = "\t\n\x0b\x0c\r "
_BREAKS = "\t\n\x0b\x0c\r"  # whitespace other than the space
# The ByteLevel pre-tokenizer's regex (tokenizers' byte_level.rs), restricted to ASCII text.
_PRETOKEN = re.compile(
    rf"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^{_SPACE}A-Za-z0-9]+"
    rf"|[{_SPACE}]+(?![^{_SPACE}])|[{_SPACE}]+"
)
# Bounded: a file with very many distinct words starts a cache over rather than grow past this
# (about 60 MB for the pre-tokens, 25 MB for each of the three word caches, at most).
_MAX_CACHED = 500_000
_MAX_WORDS = 200_000
# A word marked so: any sum it enters is negative (counts are far below 2**40).
_UNSAFE = -(2**40)
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


def _word_count(lengths: _Lengths, prefix: str, checked: bool, word: str) -> int:
    """The token count of prefix + word, where the word lies between two spaces or between a
    space and the piece's end (see PretokenCounter._piece); _UNSAFE for a word that is followed
    by a space (checked: True) and is empty or ends in whitespace."""
    if checked and (not word or word[-1] in _SPACE) and (prefix or word):
        return _UNSAFE
    return sum(map(lengths.__getitem__, _PRETOKEN.findall(prefix + word)))


class _Words(dict[str, int]):
    """word -> _word_count of " " + word (a word between two spaces), cached."""

    def __init__(self, lengths: _Lengths):
        super().__init__()
        self._lengths = lengths

    def __missing__(self, word: str) -> int:
        if len(self) >= _MAX_WORDS:
            self.clear()
        n = self[word] = _word_count(self._lengths, " ", True, word)
        return n


class _Edge(dict[str, int]):
    """word -> what it counts as a piece's first word (prefix "", followed by a space) or last
    word (prefix " ", followed by nothing) minus what it counts as a middle word: a sum that
    takes every word as a middle word is then corrected at the piece's two ends."""

    def __init__(self, middle: _Words, prefix: str, checked: bool):
        super().__init__()
        self._middle = middle
        self._prefix = prefix
        self._checked = checked

    def __missing__(self, word: str) -> int:
        if len(self) >= _MAX_WORDS:
            self.clear()
        edge = _word_count(self._middle._lengths, self._prefix, self._checked, word)
        n = self[word] = edge - self._middle[word]
        return n


class PretokenCounter:
    """Token counts of ASCII texts for one byte-level BPE backend (see the module's docstring)."""

    def __init__(self, backend: Any, added: list[str], n_post_special: int):
        byte_map = {c: backend.pre_tokenizer.pre_tokenize_str(chr(c))[0][0] for c in range(128)}
        self._lengths = _Lengths(backend.model, byte_map)
        # each word between two spaces; the corrections for a piece's first and last word
        self._middle = _Words(self._lengths)
        self._head = _Edge(self._middle, "", checked=True)
        self._tail = _Edge(self._middle, " ", checked=False)
        # Leftmost-longest, as the backend matches added tokens: longer alternatives first.
        self._added = (
            re.compile("|".join(re.escape(t) for t in sorted(added, key=len, reverse=True))) if added else None
        )
        self._tokens = added
        self._post = n_post_special
        # a chat template's pieces -> what counting its contents alone takes (None: it cannot)
        self._plans: dict[tuple[str, ...], _Plan | None] = {}

    def count(self, text: str, special: bool) -> int:
        """The token count of an ASCII text (special: with the post-processor's tokens)."""
        pieces = self._added.split(text) if self._added is not None else [text]
        n = len(pieces) - 1 + sum(map(self._piece, pieces))
        return n + self._post if special else n

    def _piece(self, piece: str) -> int:
        """The token count of a text between added tokens (or the text's ends).

        Split at its spaces, it is counted from cached words. Each space starts a pre-token
        where the character before it is not whitespace: that character's pre-token cannot
        take in the space (only the whitespace alternatives span a space, and a space only
        leads ` ?\\p{L}+`, ` ?\\p{N}+` and ` ?[^\\s\\p{L}\\p{N}]+`), every character is in some
        pre-token, and the regex neither looks behind nor past the next space from there (its
        one look-ahead follows whitespace). The piece's pre-tokens are then those of its first
        word followed by those of " " + each next word. A word followed by a space that is empty
        (a second space) or ends in whitespace is _UNSAFE, the sum goes negative, and the piece
        is scanned whole instead.
        """
        words = piece.split(" ")
        if len(words) > 1:
            n = sum(map(self._middle.__getitem__, words)) + self._head[words[0]] + self._tail[words[-1]]
            if n >= 0:
                return n
        return sum(map(self._lengths.__getitem__, _PRETOKEN.findall(piece)))

    def count_spliced(self, pieces: tuple[str, ...], contents: list[str]) -> int | None:
        """The token count of pieces[0] + contents[0] + pieces[1] + ... + pieces[-1] (a chat
        template's render, no special tokens added), with the pieces counted once; None where
        counting each content alone is not exact (count the joined text then)."""
        plan = self._plans.get(pieces, _NO_PLAN)
        if plan is _NO_PLAN:
            plan = self._plans[pieces] = self._plan(pieces)
        added = self._added
        if plan is None or added is None:  # (a plan is only made where there are added tokens)
            return None
        n = self._contents(contents, plan.clean_starts, added)
        if n is None or n < 0:
            n = self._contents_one_by_one(contents, plan.clean_starts, added)
        return n if n is None else plan.fixed + n

    def _contents(self, contents: list[str], clean_starts: tuple[bool, ...], added: re.Pattern[str]) -> int | None:
        """The usual case, all contents at once: ASCII, no added token, each with a space.
        Joined with spaces and split, the words are each content's words end to end, so one
        sum over them counts every word as a middle word; each content's first and last word
        is then corrected (_Edge). Negative where a word is _UNSAFE; None where this does not
        apply (then each content is counted alone)."""
        text = " ".join(contents)
        if not text.isascii() or added.search(text) is not None:
            return None
        n = sum(map(self._middle.__getitem__, text.split(" ")))
        head, tail = self._head, self._tail
        for content, clean_start in zip(contents, clean_starts):
            start = content.find(" ")
            if start < 0 or (clean_start and content[0] in _SPACE):
                return None  # one word (scanned alone), or a start that needs the whole text
            n += head[content[:start]] + tail[content[content.rfind(" ") + 1 :]]
        return n

    def _contents_one_by_one(
        self, contents: list[str], clean_starts: tuple[bool, ...], added: re.Pattern[str]
    ) -> int | None:
        n = 0
        has_added, piece = added.search, self._piece
        for content, clean_start in zip(contents, clean_starts):
            if not content.isascii() or (clean_start and content and content[0] in _SPACE):
                return None
            n += piece(content) if has_added(content) is None else self.count(content, False)
        return n

    def _plan(self, pieces: tuple[str, ...]) -> _Plan | None:
        """Where the render's tokens are its pieces' plus its contents', each counted alone.

        That holds at each join of a piece and a content that no added token can span and where
        a pre-token ends in both texts counted alone: the piece after a content starts with an
        added token (the text it ends is cut there before pre-tokenizing: the content's end
        looks the same alone) or is the text's empty end; the piece before one ends with an
        added token, or with one whitespace character other than the space after a
        non-whitespace one, such as ChatML's "user\\n", when the content starts with
        non-whitespace: that "\\n" is a pre-token alone and followed by a content (the regex
        falls back from `\\s+(?!\\S)` to `\\s+`), and the content's pre-tokens start afresh.
        """
        if self._added is None or not all(p.isascii() for p in pieces):
            return None
        clean_starts = []
        for j, (before, after) in enumerate(zip(pieces, pieces[1:])):
            if after:
                if self._added.match(after) is None or any(after[0] in t[1:] for t in self._tokens):
                    return None
            elif j + 2 != len(pieces):
                return None  # two contents side by side
            if not before:
                if j:
                    return None
                clean_starts.append(False)  # the text's start
                continue
            if any(before[-1] in t[:-1] for t in self._tokens):
                return None
            tail = self._added.split(before)[-1]
            if tail and not (tail[-1] in _BREAKS and (len(tail) == 1 or tail[-2] not in _SPACE)):
                return None
            clean_starts.append(bool(tail))
        return _Plan(sum(self.count(p, False) for p in pieces), tuple(clean_starts))


@dataclass(frozen=True)
class _Plan:
    fixed: int  # the tokens of the pieces
    clean_starts: tuple[bool, ...]  # for each content: must it start with non-whitespace?


_NO_PLAN = _Plan(-1, ())  # (not planned yet)


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
