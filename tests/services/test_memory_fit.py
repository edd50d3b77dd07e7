"""What the memory planner refuses at creation, and which change it names first."""

from __future__ import annotations

import pytest

from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import AdapterSpec, Hyperparameters, JobSpec, Resources
from polytune.catalog.memory_fit import check_fit, check_quantization
from polytune.catalog.memory import GiB
from tests.training.test_memory import LLAMA_8B, LLAMA_70B


def _spec(kind="full", method="supervised", n_accel=1, context=None, quantization=None, checkpointing=None):
    return JobSpec(
        model="m",
        method=method,
        training_files=["f"],
        resources=Resources(n_accel=n_accel),
        adapter=AdapterSpec(kind=kind, quantization=quantization),
        hyperparameters=Hyperparameters(context_length=context, gradient_checkpointing=checkpointing),
    )


def _refused(spec, config, devices=8, memory=80 * GiB, **kw) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as e:
        check_fit(spec, config, adapter_default="lora", max_length=4096, devices=devices, device_memory=memory, **kw)
    assert e.value.code == "insufficient_memory"
    return e.value


def test_70b_full_fine_tune_on_8x80gb_is_refused_naming_lora_then_qlora():
    err = _refused(_spec(n_accel=8), LLAMA_70B)
    assert err.param == "hyperparameters.lora"
    assert "70.55B parameters" in err.message and "LoRA instead of a full fine-tune" in err.message


def test_70b_lora_on_one_device_names_qlora_or_more_accelerators():
    err = _refused(_spec(kind="lora"), LLAMA_70B)
    assert err.param == "hyperparameters.quantization"
    assert "QLoRA" in err.message and "accelerators with FSDP" in err.message
    # The same LoRA across 4 devices fits with FSDP, which the planner picks.
    shape = check_fit(
        _spec(kind="lora", n_accel=4),
        LLAMA_70B,
        adapter_default="lora",
        max_length=4096,
        devices=8,
        device_memory=80 * GiB,
    )
    assert shape.fsdp and shape.devices == 4
    # ... unless FSDP is turned off on this server: then the remedy is QLoRA, not more devices.
    err = _refused(_spec(kind="lora", n_accel=4), LLAMA_70B, fsdp_setting="never")
    assert err.param == "hyperparameters.quantization" and "FSDP" not in err.message.split("What would fit")[1]


def test_checkpointing_off_is_the_first_thing_named_when_turning_it_on_fits():
    err = _refused(_spec(kind="lora", context=16384, checkpointing=False), LLAMA_8B, devices=1)
    assert err.param == "hyperparameters.gradient_checkpointing"


def test_nothing_fits_names_the_model():
    err = _refused(_spec(kind="lora"), LLAMA_70B, devices=1, memory=16 * GiB)
    assert err.param == "model" and "choose a smaller model" in err.message


def test_nothing_is_checked_on_cpu_or_for_unknown_configs():
    assert check_fit(_spec(), LLAMA_70B, adapter_default="lora", max_length=4096, devices=0, device_memory=None) is None
    assert (
        check_fit(
            _spec(),
            {"model_type": "mystery"},
            adapter_default="lora",
            max_length=4096,
            devices=1,
            device_memory=80 * GiB,
        )
        is None
    )


def test_qlora_needs_an_accelerator_lora_and_bitsandbytes():
    check_quantization(_spec(kind="lora"), adapter_default="lora", accelerators=False)  # no QLoRA asked
    with pytest.raises(InvalidRequest, match="needs a CUDA accelerator") as e:
        check_quantization(_spec(kind="lora", quantization="nf4"), adapter_default="lora", accelerators=False)
    assert e.value.param == "hyperparameters.quantization"
    with pytest.raises(InvalidRequest, match="LoRA jobs only"):
        check_quantization(_spec(kind="full", quantization="nf4"), adapter_default="lora", accelerators=True)
    # bitsandbytes is not installed here (a CUDA package): refused on a machine with accelerators too.
    with pytest.raises(InvalidRequest, match="bitsandbytes"):
        check_quantization(_spec(kind="auto", quantization="nf4"), adapter_default="lora", accelerators=True)
