"""Chat templates rendered once per conversation shape, for counting tokens fast.

Rendering a Jinja chat template costs more than tokenizing its output. Most conversations in a
file share a shape (the same roles in the same order, the same extra keys such as `weight`),
and most templates copy each message's content verbatim between fixed pieces of text. For such
a template, one render of a shape with marker contents splits it into those fixed pieces, and
every conversation of that shape is its pieces joined with its own contents: the same string
the template would render.

A shape is spliced only when that is provably the same here:
- the template's source never inspects or transforms a content (`content | trim`,
  `content.split(...)`, `'x' in content`, ...): otherwise its output could depend on the
  text, not only on its shape;
- two renders with different markers (with spaces and newlines around them, which a
  trimming filter would eat) give the same fixed pieces, each marker exactly once, in order;
- the first conversation of each shape is also rendered in full and must match.
Anything else (tools, non-text contents, a template that fails any check) is rendered in full.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# A template that looks at a content's text (a filter, a method, a membership test) may render
# differently for different texts of the same shape.
_INSPECTS_CONTENT = re.compile(
    r"content['\"]?\]?\s*(\||\.\s*\w+\s*\(|\[)"  # content | filter, content.method(...), content[...]
    r"|\bin\s+[\w.]*\[?['\"]?content"  # 'x' in message.content / message['content']
    r"|(==|!=)\s*[\w.]*\[?['\"]?content\b"  # == message['content']
    r"|content['\"]?\]?\s*(==|!=|>|<)"  # content == ...
    # a test other than a type test (for a text content, `is string`/`is none` are fixed)
    r"|content['\"]?\]?\s*is\s+(?!(not\s+)?(none|string|defined|undefined|mapping|sequence|iterable)\b)"
)
# `for part in content` iterates (a list of parts); only membership tests count as inspecting.
_FOR_IN = re.compile(r"\bfor\s+[\w\s,]+?\s+in\b")
_MARKERS = (" \n\x1e{}\x1f\n ", "\t\x1d<{}>\x1d  ")


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


class ShapeRenderer:
    """Renders chat rows as the tokenizer's chat template does, splicing where that is exact."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.tokenizer = tokenizer
        template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
        self.enabled = bool(template) and not _INSPECTS_CONTENT.search(_FOR_IN.sub("for", template))
        # shape -> the fixed pieces around the contents, or None (render that shape in full)
        self._pieces: dict[tuple[Any, ...], tuple[str, ...] | None] = {}

    def render(self, messages: list[dict[str, Any]], row: dict[str, Any], generation_prompt: bool = False) -> str:
        pieces = self.pieces(messages, row, generation_prompt)
        if pieces is None:
            return self.render_full(messages, row, generation_prompt)
        return join(pieces, messages)

    def render_full(self, messages: list[dict[str, Any]], row: dict[str, Any], generation_prompt: bool = False) -> str:
        """The template's own render (with the row's tools)."""
        return self.tokenizer.apply_chat_template(
            messages, tools=row.get("tools"), tokenize=False, add_generation_prompt=generation_prompt
        )

    def pieces(
        self, messages: list[dict[str, Any]], row: dict[str, Any], generation_prompt: bool = False
    ) -> tuple[str, ...] | None:
        """The fixed pieces around this conversation's contents (checked on the first
        conversation of its shape), or None where it must be rendered in full."""
        key = None if row.get("tools") or not self.enabled else _shape(messages, generation_prompt)
        if key is None:
            return None
        if key not in self._pieces:
            pieces = self._split(messages, generation_prompt)
            exact = pieces is not None and join(pieces, messages) == _render(
                self.tokenizer, messages, generation_prompt
            )
            self._pieces[key] = pieces if exact else None
        return self._pieces[key]

    def _split(self, messages: list[dict[str, Any]], generation_prompt: bool) -> tuple[str, ...] | None:
        """The fixed pieces of this shape's render, or None when the markers do not come
        through verbatim, once each and in order, or the two renders disagree."""
        splits = []
        for marker in _MARKERS:
            names = [marker.format(i) for i in range(len(messages))]
            try:
                text = _render(
                    self.tokenizer, [{**m, "content": n} for m, n in zip(messages, names)], generation_prompt
                )
            except Exception:  # noqa: BLE001 - a template that refuses markers renders each row in full
                return None
            if any(text.count(n) != 1 for n in names):
                return None
            pieces, rest = [], text
            for name in names:
                before, rest = rest.split(name, 1)
                pieces.append(before)
            splits.append((*pieces, rest))
        return splits[0] if splits[0] == splits[1] else None


def _shape(messages: list[dict[str, Any]], generation_prompt: bool) -> tuple[Any, ...] | None:
    """What a render depends on besides the contents, or None when a content is not text.
    A message {"role", "content"} (the usual one) is keyed by its role alone, a str, never equal
    to the bytes the other messages get."""
    key: list[Any] = [generation_prompt]
    for m in messages:
        if type(m.get("content")) is not str:
            return None
        if len(m) == 2 and "role" in m:
            key.append(m["role"])
        else:
            key.append(orjson.dumps({k: v for k, v in m.items() if k != "content"}, option=orjson.OPT_SORT_KEYS))
    return tuple(key)


def join(pieces: tuple[str, ...], messages: list[dict[str, Any]]) -> str:
    out = [pieces[0]]
    for message, piece in zip(messages, pieces[1:]):
        out.append(message["content"])
        out.append(piece)
    return "".join(out)
