"""Token accounting counts what the trainer trains on, and the long-example policy says what
it did."""

from __future__ import annotations

import pytest

from polytune.data.convert import trl_dataset
from polytune.data.problems import DatasetError
from polytune.data.tokens import TokenCounter, check_and_measure, load_tokenizer, measure, measure_file
from polytune.data.validate import validate_file
from tests.data.catalogue import CHAT, OPENAI_PREF, RL, jsonl

CHATS = [
    {
        "messages": [
            {"role": "user", "content": f"Question {i} " + "word " * i},
            {"role": "assistant", "content": f"Answer {i}", "weight": i % 2},
            {"role": "user", "content": "And?"},
            {"role": "assistant", "content": "Done."},
        ]
    }
    for i in range(6)
]
COMPLETIONS = [{"prompt": f"Say {i}:", "completion": f" {i} " * i} for i in range(1, 7)]
TEXTS = [{"text": "Plain text, " * i} for i in range(1, 7)]


@pytest.fixture(scope="module")
def counter(tiny_path):
    return TokenCounter(load_tokenizer(tiny_path))


@pytest.mark.parametrize("rows", [CHATS, COMPLETIONS, TEXTS], ids=["chat", "prompt_completion", "text"])
def test_counts_equal_the_trainers_input_ids(tmp_path, tiny_path, counter, rows):
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        report_to=[],
        max_length=None,
        assistant_only_loss="messages" in rows[0],
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32),
        args=config,
        train_dataset=trl_dataset(rows),
        processing_class=counter.tokenizer,
    )
    trained = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    assert [sum(n) for n in counter.lengths(rows)] == trained


def test_preference_and_reinforcement_rows_count_their_sequences(counter):
    tok = counter.tokenizer
    pref = {
        "prompt": [{"role": "user", "content": "Q?"}],
        "chosen": [{"role": "assistant", "content": "Yes."}],
        "rejected": [{"role": "assistant", "content": "No, never."}],
    }
    chosen = len(tok.apply_chat_template(pref["prompt"] + pref["chosen"], tokenize=True, return_dict=True)["input_ids"])
    rejected = len(
        tok.apply_chat_template(pref["prompt"] + pref["rejected"], tokenize=True, return_dict=True)["input_ids"]
    )
    assert counter.lengths([pref]) == [[chosen, rejected]]
    prompt = {"prompt": [{"role": "user", "content": "Q?"}], "reference_answer": "A"}
    with_generation = tok.apply_chat_template(
        prompt["prompt"], tokenize=True, return_dict=True, add_generation_prompt=True
    )["input_ids"]
    assert counter.lengths([prompt]) == [[len(with_generation)]]


def test_drop_and_truncate_policies(counter):
    rows = list(enumerate(TEXTS, start=1))
    lengths = [sum(n) for n in counter.lengths(TEXTS)]
    limit = lengths[3]  # rows 5 and 6 are longer
    kept: list = []
    dropped = measure(rows, counter, context_length=limit, long_examples="drop", keep=kept)
    assert (dropped.n_examples, dropped.n_dropped, dropped.dropped_lines) == (4, 2, [5, 6])
    assert dropped.tokens == sum(lengths[:4]) and kept == TEXTS[:4] and dropped.longest == lengths[-1]
    message = dropped.policy_message("training")
    assert message.startswith(
        f"Dropped 2 training examples longer than the context length of {limit} tokens: lines 5, 6."
    )
    truncated = measure(rows, counter, context_length=limit, long_examples="truncate")
    assert (truncated.n_examples, truncated.n_truncated, truncated.truncated_lines) == (6, 2, [5, 6])
    assert truncated.tokens == sum(lengths[:4]) + 2 * limit
    assert truncated.policy_message("training").startswith("Truncated 2 training examples")
    assert measure(rows, counter, context_length=10_000).policy_message("training") is None


def test_a_template_that_refuses_a_row_names_the_line(tmp_path, tiny_path):
    from polytune.data.problems import DatasetError

    strict = load_tokenizer(
        tiny_path,
        chat_template=(
            "{% for m in messages %}{% if m['role'] == 'developer' %}{{ raise_exception('no developer role') }}"
            "{% endif %}{{ m['content'] }}{% endfor %}"
        ),
    )
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(CHAT, {"messages": [{"role": "developer", "content": "Be brief."}, *CHAT["messages"][1:]]}))
    with pytest.raises(
        DatasetError, match="line 2: the model's chat template cannot render this example .*no developer"
    ):
        measure_file(path, TokenCounter(strict), method="supervised", context_length=100)


@pytest.mark.parametrize(
    ("rows", "method"),
    [(CHATS, "supervised"), (COMPLETIONS, "supervised"), ([OPENAI_PREF] * 3, "dpo"), ([RL] * 3, "reinforcement")],
    ids=["chat", "prompt_completion", "preference", "reinforcement"],
)
def test_one_read_checks_and_counts_as_the_two_passes_do(tmp_path, counter, rows, method):
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(*rows))
    summary, report = check_and_measure(path, counter, method=method, context_length=40, long_examples="drop")
    assert summary == validate_file(path, method=method)
    assert report == measure_file(path, counter, method=method, context_length=40, long_examples="drop")
    assert report.tokens > 0


def test_one_read_reports_the_files_problems_before_a_template_refusal(tmp_path, tiny_path):
    strict = TokenCounter(
        load_tokenizer(
            tiny_path,
            chat_template=(
                "{% for m in messages %}{% if m['role'] == 'developer' %}{{ raise_exception('no developer role') }}"
                "{% endif %}{{ m['content'] }}{% endfor %}"
            ),
        )
    )
    developer = {"messages": [{"role": "developer", "content": "Be brief."}, *CHAT["messages"][1:]]}
    path = tmp_path / "data.jsonl"
    # Line 2 the template refuses; line 100 (past the first batch counted) is a broken row: the
    # file's problem is what the user sees, found by checking on after the count stopped.
    path.write_bytes(jsonl(CHAT, developer, *[CHAT] * 97, {"messages": [{"role": "user"}]}))
    with pytest.raises(DatasetError, match="line 100") as caught:
        check_and_measure(path, strict, method="supervised", context_length=100)
    assert "chat template" not in caught.value.message
    # Without the broken row, the refusal, by line.
    path.write_bytes(jsonl(CHAT, developer, CHAT))
    with pytest.raises(DatasetError, match="line 2: the model's chat template cannot render this example"):
        check_and_measure(path, strict, method="supervised", context_length=100)
    # A file of another method's format: the first row says so.
    path.write_bytes(jsonl(OPENAI_PREF, OPENAI_PREF))
    with pytest.raises(DatasetError, match="line 1 is .* but a supervised job needs"):
        check_and_measure(path, strict, method="supervised", context_length=100)
