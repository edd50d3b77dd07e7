"""Streaming text from tokens with polytune-tiny's byte-level tokenizer: pieces add up to the
whole decode, characters split across tokens never show half-made, and stop strings are cut
without ever having been shown."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from polytune.inference.detokenize import IncrementalText

TEXT = "Grüße from Zorbia — 温泉 and 🦜 parrots, 42 of them."


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return AutoTokenizer.from_pretrained(tiny[1])


def _stream(tokenizer, ids, stop=()):
    text = IncrementalText(tokenizer, stop, prompt_ids=tokenizer("Question:")["input_ids"])
    pieces = [text.add(i) for i in ids]
    pieces.append(text.finish())
    return pieces, text


def test_pieces_add_up_to_the_whole_text(tokenizer):
    ids = tokenizer(TEXT)["input_ids"]
    pieces, text = _stream(tokenizer, ids)
    assert "".join(pieces) == tokenizer.decode(ids) == TEXT
    assert not any("\ufffd" in p for p in pieces)
    # The byte-level tokenizer splits the emoji and the CJK characters over several tokens:
    # those tokens show nothing until the character is complete.
    assert "" in pieces[:-1]


@pytest.mark.parametrize("stop", [" parrots", "rots,", "🦜", "温"])
def test_a_stop_string_cuts_the_text_and_is_never_shown(tokenizer, stop):
    ids = tokenizer(TEXT)["input_ids"]
    pieces, text = _stream(tokenizer, ids, stop=(stop, "never there"))
    assert text.stopped
    assert "".join(pieces) == TEXT[: TEXT.index(stop)]
    # Whatever was shown before the cut was a prefix of the final text.
    shown = ""
    for piece in pieces:
        shown += piece
        assert TEXT[: TEXT.index(stop)].startswith(shown)


def test_no_stop_string_holds_back_nothing_at_the_end(tokenizer):
    ids = tokenizer("blue sky")["input_ids"]
    pieces, text = _stream(tokenizer, ids, stop=("a long stop string",))
    assert not text.stopped and "".join(pieces) == "blue sky"
    assert pieces[-1]  # held back until finish(): it could have started the stop string
