"""The compute path a text job gets on CPU (training/cpu_path.py): bf16 autocast only where the
CPU multiplies bf16 in hardware and the model is large enough; padding-free batches by
default where they are exact, with the same loss as padded batches."""

from __future__ import annotations

import pytest
import torch

from polytune.training.cpu_path import (
    BF16_CPU_MIN_PARAMS,
    choose_bf16,
    choose_cpu_path,
    choose_padding_free,
    count_parameters,
    cpu_flags,
)
from polytune.training.recipes.sft import build_sft_trainer
from tests.training.support import resolved_spec

AMX = frozenset({"avx512f", "amx_bf16", "amx_tile"})
AVX512_BF16 = frozenset({"avx512f", "avx512_bf16"})
PLAIN_AVX2 = frozenset({"avx2", "fma"})


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16 amx_tile\nbugs\t\t: none\n")
    assert cpu_flags(str(info)) == {"fpu", "avx2", "avx512_bf16", "amx_tile"}
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_parameters_are_counted_from_the_safetensors_headers(tiny):
    from transformers import AutoModelForCausalLM

    _, model_path = tiny
    model = AutoModelForCausalLM.from_pretrained(model_path)
    assert count_parameters(model_path) == sum(p.numel() for p in model.parameters())
    assert count_parameters("org/hub-model") is None


@pytest.mark.parametrize(
    ("params", "flags", "setting", "bf16"),
    [
        (29_000_000, AMX, "auto", True),
        (29_000_000, AVX512_BF16, "auto", True),
        (29_000_000, PLAIN_AVX2, "auto", False),  # no bf16 matrix instructions: emulated bf16 is slow
        (950_000, AMX, "auto", False),  # polytune-tiny: measured faster in fp32
        (BF16_CPU_MIN_PARAMS - 1, AMX, "auto", False),
        (BF16_CPU_MIN_PARAMS, AMX, "auto", True),
        (None, AMX, "auto", False),  # size unknown: the safe side
        (29_000_000, AMX, "fp32", False),
        (950_000, PLAIN_AVX2, "bf16", True),
    ],
)
def test_bf16_rule(params, flags, setting, bf16):
    chosen, reason = choose_bf16(params, flags, setting)
    assert chosen is bf16
    assert reason.startswith("bf16" if bf16 else "fp32")


@pytest.mark.parametrize(
    ("long_examples", "packing", "padding_free"),
    [("drop", None, True), ("truncate", None, False), ("drop", False, False), ("drop", True, False)],
)
def test_padding_free_rule(long_examples, packing, padding_free):
    assert choose_padding_free(long_examples=long_examples, packing=packing)[0] is padding_free


def test_tiny_model_trains_in_fp32_with_padding_free_batches(tiny, tmp_path):
    entry, model_path = tiny
    path = choose_cpu_path(model_path, long_examples="drop", packing=None, flags=AMX)
    assert not path.bf16 and path.padding_free
    trainer = build_sft_trainer(
        resolved_spec(n_epochs=1, batch_size=4), entry, model_path, _mixed_rows(), None, tmp_path, []
    )
    assert trainer.args.bf16 is False and trainer.args.padding_free is True
    packed = build_sft_trainer(
        resolved_spec(n_epochs=1, batch_size=4, packing=True),
        entry,
        model_path,
        _mixed_rows(),
        None,
        tmp_path / "packed",
        [],
    )
    assert packed.args.packing is True and packed.args.padding_free is False


def test_a_job_that_sends_no_packing_trains_padding_free_after_resolving(tiny, tmp_path):
    """The default as a job gets it: through resolve_auto, which once turned "not sent" into an
    explicit `packing: false` and so trained every default job on padded batches."""
    from polytune.domain.spec import JobSpec
    from polytune.services.hyperparameters import resolve_auto

    entry, model_path = tiny
    sent = JobSpec(model=entry.name, training_files=["file-x"])
    spec = resolve_auto(sent, n_examples=8, entry=entry)
    trainer = build_sft_trainer(spec, entry, model_path, _mixed_rows(), None, tmp_path, [])
    assert trainer.args.padding_free is True
    off = resolve_auto(
        sent.model_copy(update={"hyperparameters": sent.hyperparameters.model_copy(update={"packing": False})}),
        n_examples=8,
        entry=entry,
    )
    assert (
        build_sft_trainer(off, entry, model_path, _mixed_rows(), None, tmp_path / "off", []).args.padding_free is False
    )


def _mixed_rows() -> list[dict]:
    """Conversations of very different lengths, so a padded batch is mostly padding."""
    return [
        {
            "messages": [
                {"role": "user", "content": f"Question {i}: " + "tell me more " * (1 + 7 * (i % 4))},
                {"role": "assistant", "content": "An answer " + "and more " * (2 + 9 * (i % 3))},
            ]
        }
        for i in range(8)
    ]


def test_padding_free_batch_has_the_loss_of_the_padded_batch(tiny, tmp_path):
    entry, model_path = tiny
    rows = _mixed_rows()
    losses, tokens = {}, {}
    for name, packing in (("padding_free", None), ("padded", False)):
        trainer = build_sft_trainer(
            resolved_spec(n_epochs=1, batch_size=8, packing=packing), entry, model_path, rows, None, tmp_path / name, []
        )
        batch = next(iter(trainer.get_train_dataloader()))
        tokens[name] = batch["input_ids"].numel()
        with torch.no_grad():
            losses[name] = trainer.model(**batch).loss.item()
    assert tokens["padding_free"] < 0.8 * tokens["padded"]  # the padding is gone...
    assert losses["padding_free"] == pytest.approx(losses["padded"], rel=1e-4)  # ...and nothing else changed
