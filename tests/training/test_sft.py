from __future__ import annotations

import dataclasses

import pytest
from transformers import AutoTokenizer

from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import IMAGE_METHODS, TRAINABLE_METHODS
from polytune.training.fit import fit_images, fit_text
from polytune.training.recipes import get_recipe
from polytune.training.recipes.sft import build_sft_trainer, split_trained_turns, template_masks_by_weight
from tests.training.support import resolved_spec

WEIGHTED = [
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "One?"},
            {"role": "assistant", "content": "Skipped.", "weight": 0},
            {"role": "user", "content": "Two?"},
            {"role": "assistant", "content": "Kept."},
        ]
    }
]


def _train_losses(trainer) -> list[float]:
    return [log["loss"] for log in trainer.state.log_history if "loss" in log]


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_training_a_few_steps_lowers_the_loss(tiny, demo_rows, tmp_path, kind):
    entry, model_path = tiny
    spec = resolved_spec(n_epochs=5, batch_size=4, learning_rate=2e-3, kind=kind)
    trainer = build_sft_trainer(spec, entry, model_path, demo_rows[:8], None, tmp_path, [])
    trainer.train()
    losses = _train_losses(trainer)
    assert len(losses) == 10
    assert sum(losses[-3:]) / 3 < 0.8 * losses[0]
    if kind == "lora":
        trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
        assert any("lora_" in n for n in trainable)
        # Random-init embeddings must learn too (tied to the output layer).
        assert any("embed_tokens" in n for n in trainable)
        assert not any("mlp" in n and "lora_" not in n for n in trainable)


def _trained_text(trainer) -> str:
    labels = trainer.train_dataset[0]["labels"]
    return trainer.processing_class.decode([t for t in labels if t != -100])


def test_weight_zero_turns_are_not_trained(tiny, tmp_path):
    entry, model_path = tiny
    trainer = build_sft_trainer(resolved_spec(n_epochs=1), entry, model_path, WEIGHTED, None, tmp_path, [])
    assert trainer.args.assistant_only_loss
    assert _trained_text(trainer) == "Kept.<|im_end|>"


def test_template_without_markers_trains_each_weighted_turn_as_a_completion(tiny, tmp_path):
    entry, model_path = tiny
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    plain = tokenizer.chat_template.replace("{%- generation -%}", "").replace("{%- endgeneration -%}", "")
    plain_entry = dataclasses.replace(entry, chat_template=plain)
    trainer = build_sft_trainer(resolved_spec(n_epochs=1), plain_entry, model_path, WEIGHTED, None, tmp_path, [])
    assert not trainer.args.assistant_only_loss
    assert len(trainer.train_dataset) == 1
    assert _trained_text(trainer).startswith("Kept.<|im_end|>")
    assert "Skipped" not in _trained_text(trainer)


def test_template_probe(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny[1])
    assert template_masks_by_weight(tokenizer)
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert not template_masks_by_weight(tokenizer)


def test_split_trained_turns():
    rows = [
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
                {"role": "assistant", "content": "d", "weight": 0},
                {"role": "user", "content": "e"},
                {"role": "assistant", "content": "f", "weight": 1},
            ]
        }
    ]
    split = split_trained_turns(rows)
    assert [r["completion"][0]["content"] for r in split] == ["b", "f"]
    assert [len(r["prompt"]) for r in split] == [1, 5]
    assert all("weight" not in m for r in split for m in r["prompt"] + r["completion"])


def test_prompt_completion_rows_train_on_the_completion(tiny, tmp_path):
    entry, model_path = tiny
    rows = [{"prompt": "The capital of Zorbia is", "completion": " Quillon."}]
    trainer = build_sft_trainer(resolved_spec(n_epochs=1), entry, model_path, rows, None, tmp_path, [])
    assert _trained_text(trainer) == " Quillon.<|im_end|>"


def test_unresolved_specs_are_refused(tiny, tmp_path):
    entry, model_path = tiny
    spec = resolved_spec(n_epochs=1).model_copy(update={"seed": None})
    with pytest.raises(ValueError, match="seed"):
        build_sft_trainer(spec, entry, model_path, WEIGHTED, None, tmp_path, [])


def test_recipe_registry():
    assert get_recipe("supervised").build_trainer is build_sft_trainer
    # every trainable method has one; the image methods train through the image loop, no trl trainer
    assert all(get_recipe(m).method == m for m in TRAINABLE_METHODS)
    assert get_recipe("supervised").fit is fit_text
    assert all(get_recipe(m).fit is fit_images and get_recipe(m).build_trainer is None for m in IMAGE_METHODS)
    with pytest.raises(InvalidRequest) as caught:
        get_recipe("continued_pretraining")
    assert caught.value.param == "method"
