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


def ascii_rows(n: int, seed: int) -> list[dict]:
    """Conversations whose ASCII contents start and end in every way a join could go wrong:
    whitespace of each kind, a second space, added tokens and their fragments, contractions,
    empty contents."""
    from tests.data.test_pretokens import _texts

    texts = iter(_texts(5 * n, seed))
    rows = []
    for i in range(n):
        messages = [{"role": "user", "content": next(texts)}, {"role": "assistant", "content": next(texts)}]
        if i % 2:
            messages.insert(0, {"role": "system", "content": next(texts)})
        if i % 3 == 0:
            messages.append({"role": "user", "content": next(texts)})  # a reinforcement-style prompt
        rows.append({"messages": messages})
    return rows


@pytest.mark.parametrize("generation_prompt", [False, True])
def test_contents_counted_alone_give_the_rendered_count(tiny_path, generation_prompt):
    tokenizer = load_tokenizer(tiny_path)
    counter = TokenCounter(tokenizer)
    rows = ascii_rows(600, seed=int(generation_prompt))
    if generation_prompt:
        got = [counter.lengths([{"prompt": r["messages"]}])[0][0] for r in rows]
        texts = [tokenizer.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=True) for r in rows]
        assert got == [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    else:
        assert [sum(n) for n in counter.lengths(rows)] == reference_lengths(tokenizer, rows)
    plans = counter._pretokens._plans
    # ChatML's joins ("user\n" + content + "<|im_end|>") are clean: each shape counted from its pieces
    assert plans and all(plan is not None for plan in plans.values())


# The content after "\n\n" (Llama 3), after a space, or before plain text: a pre-token may span
# the join, so the rendered text is counted whole (and the counts stay equal).
DOUBLE_NEWLINE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n\n{{ m['content'] }}<|im_end|>{% endfor %}"
AFTER_SPACE = "{% for m in messages %}<|im_start|>{{ m['role'] }}: {{ m['content'] }}<|im_end|>{% endfor %}"
BEFORE_TEXT = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}\n{% endfor %}"
SIDE_BY_SIDE = "{% for m in messages %}{{ m['content'] }}{% endfor %}<|im_end|>"


@pytest.mark.parametrize(
    "template", [DOUBLE_NEWLINE, AFTER_SPACE, BEFORE_TEXT, SIDE_BY_SIDE], ids=["nn", "space", "text", "side"]
)
def test_joins_a_pre_token_may_span_are_counted_whole(tiny_path, template):
    tokenizer = load_tokenizer(tiny_path, template)
    counter = TokenCounter(tokenizer)
    assert counter.renderer.enabled
    rows = ascii_rows(200, seed=5)
    assert [sum(n) for n in counter.lengths(rows)] == reference_lengths(tokenizer, rows)
    plans = counter._pretokens._plans
    assert plans and all(plan is None for plan in plans.values())
