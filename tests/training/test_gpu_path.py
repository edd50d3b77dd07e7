"""The accelerator's compute path (training/gpu_path.py), chosen from faked capabilities: no GPU
here, so the rule is what is tested; bench/gpu_check.py measures it on a device."""

from __future__ import annotations

import json

import pytest

from polytune.training import gpu_path
from polytune.training.recipes.common import accelerator_path, training_args
from tests.training.support import resolved_spec


def _choose(**overrides):
    args = dict(
        method="supervised",
        model_type="llama",
        half_precision=True,
        liger_installed=True,
        flash_installed=True,
        checkpointing_asked=None,
        micro_batch_without=8,
        per_device_batch=8,
        context_length=1024,
    )
    return gpu_path.choose(**{**args, **overrides})


def test_a_supervised_llama_with_everything_installed_takes_the_fast_path():
    path = _choose()
    assert (path.liger, path.attn_implementation, path.gradient_checkpointing) == (True, "flash_attention_2", False)
    assert "Liger" in path.reason and "FlashAttention 2" in path.reason


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"method": "dpo"}, "dpo"),
        ({"method": "reinforcement"}, "reinforcement"),
        ({"model_type": "gpt2"}, "gpt2"),
        ({"liger_installed": False}, "`gpu` extra"),
        ({"liger_setting": "off"}, "POLYTUNE_LIGER=off"),
    ],
)
def test_liger_only_for_supervised_jobs_of_patched_models_when_installed(overrides, why):
    path = _choose(**overrides)
    assert not path.liger and why in path.reason


def test_flash_attention_needs_the_package_and_half_precision():
    assert _choose(flash_installed=False).attn_implementation == "sdpa"
    assert _choose(half_precision=False).attn_implementation == "sdpa"


@pytest.mark.parametrize(
    ("without", "per_device", "context", "checkpointing"),
    [
        (8, 8, 1024, False),  # the whole per-device batch fits without it
        (4, 16, 1024, False),  # 4 x 1024 tokens: enough to keep the device busy
        (3, 16, 1024, True),  # 3 x 1024 is not: checkpointing buys larger micro-batches
        (1, 16, 4096, False),  # one 4096-token sequence is enough
        (2, 2, 256, False),  # a small batch that fits whole
        (0, 8, 1024, True),  # not even one sequence fits without it
    ],
)
def test_checkpointing_only_where_memory_needs_it(without, per_device, context, checkpointing):
    path = _choose(micro_batch_without=without, per_device_batch=per_device, context_length=context)
    assert path.gradient_checkpointing is checkpointing


def test_the_jobs_own_checkpointing_setting_wins():
    assert _choose(checkpointing_asked=True).gradient_checkpointing is True
    assert _choose(checkpointing_asked=False, micro_batch_without=0).gradient_checkpointing is False


def _llama_8b(folder):
    folder.mkdir()
    config = {
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    ("gib", "checkpointing"),
    [(80, False), (24, True)],  # an H100's 80 GiB fits LoRA micro-batches of 4 x 1024 without it
)
def test_the_memory_plan_decides_checkpointing_for_an_8b_lora(tiny, tmp_path, monkeypatch, gib, checkpointing):
    import polytune.training.sharding as sharding
    from polytune.config import Settings
    from polytune.training.precision import choose

    entry, _ = tiny
    model = _llama_8b(tmp_path / "llama-8b")
    monkeypatch.setattr(sharding, "device_memory", lambda: gib * 2**30)
    spec = resolved_spec(n_epochs=1, batch_size=8, kind="lora", context_length=1024)
    precision = choose(cuda=True, bf16_supported=True, adapter="lora")
    path = accelerator_path(spec, entry, model, Settings(), precision, fsdp=False)
    assert path.gradient_checkpointing is checkpointing
    assert path.attn_implementation in ("sdpa", "flash_attention_2")


def test_a_cpu_job_uses_neither_liger_nor_checkpointing(tiny, tmp_path):
    from polytune.config import Settings

    entry, model_path = tiny
    args = training_args(
        resolved_spec(n_epochs=1), entry, tmp_path, has_eval=False, model_path=model_path, settings=Settings()
    )
    assert args["use_liger_kernel"] is False and args["activation_checkpointing"] is False
