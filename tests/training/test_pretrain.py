"""Continued pre-training (SeekrFlow's pre_train): raw text becomes `{"text"}` documents, and the
supervised recipe trains them as language modelling — the loss on every token, packed into
full-length sequences."""

from __future__ import annotations

import pytest

from polytune.domain.errors import InvalidRequest
from polytune.services.pretrain import documents
from polytune.training.recipes.sft import build_sft_trainer
from tests.training.support import resolved_spec

TEXT = "\n\n".join(f"Paragraph {i}: the quick brown fox jumps over the lazy dog {i} times." for i in range(40))


def test_plain_text_splits_into_paragraphs_and_jsonl_takes_text_rows():
    assert documents(b"one\nstill one\n\n  \ntwo\n", "notes.txt", "training_file") == ["one\nstill one", "two"]
    assert documents(b'{"text": "a"}\n\n{"text": "b"}\n', "docs.jsonl", "training_file") == ["a", "b"]
    for data, name in ((b'{"messages": []}\n', "chat.jsonl"), (b"\xff\xfe\xfa", "bad.txt")):
        with pytest.raises(InvalidRequest) as e:
            documents(data, name, "training_file")
        assert e.value.param == "training_file" and name in e.value.message


def test_text_rows_train_every_token_packed(tiny, tmp_path):
    entry, model_path = tiny
    spec = resolved_spec(n_epochs=1, batch_size=2, packing=True, context_length=64, n_checkpoints=0)
    rows = [{"text": doc} for doc in documents(TEXT.encode(), "book.txt", "training_file")]
    trainer = build_sft_trainer(spec, entry, model_path, rows, None, tmp_path, [])
    dataset = trainer.train_dataset
    # Packed: 40 short documents share fewer sequences of at most 64 tokens (TRL's best-fit
    # packing keeps each document whole), every sequence holding several.
    assert len(dataset) < len(rows) and max(len(x) for x in dataset["input_ids"]) <= 64
    assert all(len(n) >= 2 for n in dataset["seq_lengths"])
    # No completion or assistant mask: nothing is left out of the loss.
    assert not {"completion_mask", "assistant_masks"} & set(dataset.column_names)
    batch = trainer.data_collator([dataset[0], dataset[1]])
    # Every token is a target but each document's first (nothing of it precedes it: packed
    # documents don't predict across their boundary).
    n_documents = len(dataset[0]["seq_lengths"]) + len(dataset[1]["seq_lengths"])
    assert (batch["labels"] != -100).sum() == batch["input_ids"].numel() - n_documents
