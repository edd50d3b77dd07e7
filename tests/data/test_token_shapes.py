"""Fast token counting (templates rendered once per conversation shape, data/chat_render.py)
gives exactly the counts of rendering every conversation with its template and tokenizing it
with transformers, on the example data and on templates it must not splice."""

from __future__ import annotations

import json
import random
from importlib import resources

import pytest

from polytune.data.chat_render import ShapeRenderer
from polytune.data.tokens import TokenCounter, load_tokenizer

WORDS = "alpha beta  gamma\tdelta\n epsilon, zeta! <|im_end|> {{ x }} ümlaut 中文".split(" ")


def reference_lengths(tokenizer, rows: list[dict]) -> list[int]:
    """The straightforward count: each conversation rendered, then tokenized by __call__."""
    texts = [tokenizer.apply_chat_template(r["messages"], tools=r.get("tools"), tokenize=False) for r in rows]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def example_rows() -> list[dict]:
    text = resources.files("polytune.examples").joinpath("qa.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def varied_rows(n: int = 120) -> list[dict]:
    """Contents with edge whitespace, markup, template syntax and non-ASCII; several shapes."""
    rng = random.Random(3)
    rows = []
    for i in range(n):

        def text() -> str:
            return (
                (" " * rng.randint(0, 2))
                + " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12)))
                + ("\n" * rng.randint(0, 2))
            )

        messages = [{"role": "user", "content": text()}, {"role": "assistant", "content": text()}]
        if i % 3 == 0:
            messages.insert(0, {"role": "system", "content": text()})
        if i % 4 == 0:
            messages += [{"role": "user", "content": text()}, {"role": "assistant", "content": text(), "weight": 0}]
        rows.append({"messages": messages})
    return rows


@pytest.mark.parametrize("rows", [example_rows(), varied_rows()], ids=["examples", "varied"])
def test_counts_equal_rendering_every_conversation(tiny_path, rows):
    tokenizer = load_tokenizer(tiny_path)
    counter = TokenCounter(tokenizer)
    assert counter.renderer.enabled  # polytune-tiny's template copies contents verbatim: spliced
    assert [sum(n) for n in counter.lengths(rows)] == reference_lengths(tokenizer, rows)
    shapes = counter.renderer._pieces
    assert 0 < len(shapes) <= 4 and all(p is not None for p in shapes.values())  # one render per shape


TRIMMING = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n{% endfor %}"
BRANCHING = (
    "{% for m in messages %}{% if 'zeta' in m.content %}[Z]{% endif %}<|im_start|>{{ m['role'] }}\n"
    "{{ m['content'] }}<|im_end|>\n{% endfor %}"
)
LENGTH = "{% for m in messages %}{{ m['role'] }}{{ m['content']|length }}:{{ m['content'] }}\n{% endfor %}"


@pytest.mark.parametrize("template", [TRIMMING, BRANCHING, LENGTH], ids=["trim", "branch", "length"])
def test_templates_that_look_at_contents_are_rendered_in_full(tiny_path, template):
    tokenizer = load_tokenizer(tiny_path, template)
    counter = TokenCounter(tokenizer)
    assert not counter.renderer.enabled
    rows = varied_rows(40)
    assert [sum(n) for n in counter.lengths(rows)] == reference_lengths(tokenizer, rows)


def test_a_shape_whose_markers_do_not_come_through_is_rendered_in_full(tiny_path):
    # The content is written twice (no filter the source check would see): the marker is not
    # found exactly once, so that shape is never spliced.
    twice = "{% for m in messages %}{% set c = m['content'] %}{{ c }}|{{ c }}\n{% endfor %}"
    tokenizer = load_tokenizer(tiny_path, twice)
    renderer = ShapeRenderer(tokenizer)
    rows = varied_rows(10)
    assert [renderer.render(r["messages"], r) for r in rows] == [
        tokenizer.apply_chat_template(r["messages"], tokenize=False) for r in rows
    ]
    assert all(p is None for p in renderer._pieces.values())
