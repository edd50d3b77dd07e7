"""Generated tokens to text, piece by piece, cut at the first stop string.

Decoding one token at a time is wrong for byte-level and sentencepiece tokenizers (a character
can span tokens; a leading space depends on the token before), so each step decodes a short
window of recent tokens and hands out only what the window adds. Text that could be the start
of a stop string is held back until it is known not to be one, so a stream never shows what a
stop string then takes back.
"""

from __future__ import annotations

from typing import Any

# Prompt tokens kept as context for decoding the first generated tokens.
_CONTEXT = 5


class IncrementalText:
    def __init__(self, tokenizer: Any, stop: tuple[str, ...] = (), prompt_ids: list[int] = ()):
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self._hold = max((len(s) for s in self.stop), default=1) - 1
        context = list(prompt_ids)[-_CONTEXT:]
        self._ids = context
        self._prefix = 0  # the window starts here
        self._read = len(context)  # tokens up to here are already in `text`
        self.text = ""
        self._sent = 0  # characters of `text` handed out
        self.stopped = False

    def add(self, token_id: int) -> str:
        """Append a token; the text now safe to show (possibly "")."""
        if self.stopped:
            return ""
        self._ids.append(token_id)
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        # An incomplete character decodes as U+FFFD: wait for the token that completes it.
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.text += after[len(before) :]
            self._prefix, self._read = self._read, len(self._ids)
        return self._release(final=False)

    def finish(self) -> str:
        """The rest of the text, once no more tokens come."""
        if self.stopped:
            return ""
        return self._release(final=True)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _release(self, final: bool) -> str:
        if self.stop:
            # A stop string ending before `_sent - _hold` would have been found earlier.
            start = max(0, self._sent - self._hold)
            hits = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
            if hits:
                end = min(hits)
                self.text, self.stopped = self.text[:end], True
                return self._hand_out(end)
        return self._hand_out(len(self.text) if final else len(self.text) - self._hold)

    def _hand_out(self, end: int) -> str:
        if end <= self._sent:
            return ""
        out = self.text[self._sent : end]
        self._sent = end
        return out
