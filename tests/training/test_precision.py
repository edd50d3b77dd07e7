"""The dtype decision (training/precision.py) with faked device capabilities, and weights saved
in the model's own dtype."""

from __future__ import annotations

import json

import pytest

from polytune.training.precision import Precision, choose, saved_dtype


def test_cpu_trains_in_fp32_as_always():
    for adapter in ("full", "lora"):
        assert choose(cuda=False, bf16_supported=False, adapter=adapter) == Precision(
            load_dtype="float32", bf16=False, fp16=False, reference_dtype="float32"
        )
    with pytest.raises(ValueError, match="CUDA"):
        choose(cuda=False, bf16_supported=False, adapter="lora", quantization="nf4")


def test_bf16_accelerators():
    full = choose(cuda=True, bf16_supported=True, adapter="full")
    # fp32 master weights under bf16 autocast; the DPO reference only runs forward: bf16.
    assert (full.load_dtype, full.bf16, full.fp16, full.reference_dtype) == ("float32", True, False, "bfloat16")
    lora = choose(cuda=True, bf16_supported=True, adapter="lora")
    assert (lora.load_dtype, lora.compute_dtype, lora.quantize_4bit) == ("bfloat16", "bfloat16", False)
    qlora = choose(cuda=True, bf16_supported=True, adapter="lora", quantization="nf4")
    assert qlora.quantize_4bit and qlora.compute_dtype == "bfloat16"
    assert qlora.describe() == "weights loaded in 4-bit NF4, compute in bfloat16"


def test_accelerators_without_bf16_use_fp16_with_loss_scaling():
    full = choose(cuda=True, bf16_supported=False, adapter="full")
    assert (full.load_dtype, full.bf16, full.fp16, full.reference_dtype) == ("float32", False, True, "float16")
    lora = choose(cuda=True, bf16_supported=False, adapter="lora")
    assert lora.load_dtype == "float16" and lora.fp16 and "loss scaling" in lora.describe()


def test_the_models_own_dtype_comes_from_its_config():
    assert saved_dtype({"torch_dtype": "bfloat16"}) == "bfloat16"
    assert saved_dtype({"dtype": "float16", "torch_dtype": "float32"}) == "float16"
    assert saved_dtype({}) is None and saved_dtype({"dtype": "int8"}) is None


def test_a_full_model_trained_in_fp32_is_saved_in_its_own_dtype(tmp_path, tiny):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    from polytune.data.tokens import load_tokenizer
    from polytune.training.saving import save_model_dir

    _, tiny_path = tiny
    base = tmp_path / "bf16-base"
    AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16).save_pretrained(base)
    assert json.loads((base / "config.json").read_text())["dtype"] == "bfloat16"
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)  # fp32 master weights
    out = save_model_dir(model, load_tokenizer(tiny_path, None), tmp_path / "out")
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}  # noqa: SIM118 (not a dict)
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert model.dtype == torch.float32  # the model in memory is left as it trains
    # polytune-tiny is an fp32 model: written as it is.
    tiny_model = AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32)
    out2 = save_model_dir(tiny_model, load_tokenizer(tiny_path, None), tmp_path / "out2")
    with safe_open(str(out2 / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}  # noqa: SIM118 (not a dict)
