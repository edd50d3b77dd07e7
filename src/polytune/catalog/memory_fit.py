"""Refuse, when it is created, a job that cannot fit the accelerators the executor can ever give.

The estimate is catalog/memory.py's, from the model's config.json alone. When the job does not
fit, the error names the first change that would make it fit, in this order: gradient
checkpointing (if the job turned it off), LoRA (for a full fine-tune), QLoRA (for LoRA), more
accelerators (FSDP), a shorter context; and says what each of them would need.

CPU-only executors refuse nothing here: host memory is shared with everything else on the
machine and backed by swap, so a figure against it would refuse jobs that run (slowly). The
planner's estimate for an accelerator is what it guards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import IMAGE_METHODS, JobSpec
from polytune.catalog import memory
from polytune.catalog.memory import ModelDims, Shape, gib, job_shape, read_config  # noqa: F401

# The domain parameter each remedy changes (dialects map them to their own field names).
PARAM_LORA = "hyperparameters.lora"
PARAM_QLORA = "hyperparameters.quantization"
PARAM_CHECKPOINTING = "hyperparameters.gradient_checkpointing"
PARAM_CONTEXT = "hyperparameters.context_length"
PARAM_ACCEL = "resources.n_accel"


@dataclass(frozen=True)
class Capacity:
    """What the executor can ever give one job: devices on one node, one device's memory."""

    devices: int
    device_memory: int | None
    fsdp_setting: str = "auto"


def check_quantization(spec: JobSpec, *, adapter_default: str, accelerators: bool) -> None:
    """QLoRA (quantization nf4) is refused where it cannot run: it quantises with bitsandbytes'
    CUDA kernels, so it needs an accelerator and bitsandbytes installed."""
    if not spec.adapter.quantization:
        return
    kind = spec.adapter.kind if spec.adapter.kind != "auto" else adapter_default
    if spec.method.type in IMAGE_METHODS or kind != "lora":
        raise InvalidRequest(
            "quantization nf4 (QLoRA) trains a LoRA on a 4-bit base model; it applies to text "
            "LoRA jobs only (set lora on, or leave quantization out).",
            param=PARAM_QLORA,
        )
    if not accelerators:
        raise InvalidRequest(
            "quantization nf4 (QLoRA) needs a CUDA accelerator (bitsandbytes' 4-bit kernels); "
            "this server's executor has none. Train a plain LoRA (leave quantization out), or "
            "run polytune with accelerators (docs/scaling.md).",
            param=PARAM_QLORA,
            code="unsupported_hardware",
        )
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise InvalidRequest(
            "quantization nf4 (QLoRA) needs the bitsandbytes package, which this server does "
            "not have: pip install 'polytune[qlora]'.",
            param=PARAM_QLORA,
            code="unsupported_hardware",
        )


def check_fit(
    spec: JobSpec,
    config: dict[str, Any] | None,
    *,
    adapter_default: str,
    max_length: int,
    devices: int,
    device_memory: int | None,
    fsdp_setting: str = "auto",
) -> Shape | None:
    """The shape the job trains with (DDP/FSDP chosen); InvalidRequest when nothing of the
    job's own choices fits. None when there is nothing to check (CPU, image, unknown model)."""
    if spec.method.type in IMAGE_METHODS or not device_memory or not devices:
        return None
    dims = ModelDims.from_config(config or {})
    if dims is None:
        return None
    asked = job_shape(spec, adapter_default=adapter_default, max_length=max_length)
    shape = memory.best_sharding(dims, asked, device_memory, fsdp_setting=fsdp_setting)
    if memory.fits(dims, shape, device_memory):
        return shape
    need = memory.estimate(dims, shape)
    remedies = _remedies(dims, asked, devices, device_memory, fsdp_setting)
    per = f"{shape.devices} accelerator(s) with {shape.context_length} tokens of context" + (
        ", FSDP" if shape.fsdp else ""
    )
    message = (
        f"The job does not fit: {spec.model} ({dims.n_params / 1e9:.2f}B parameters, "
        f"{_label(shape)}) needs ~{need.describe()} per device on {per}; one device has "
        f"{gib(device_memory)}, of which {gib(memory.usable(device_memory))} is usable."
    )
    if remedies:
        message += " What would fit: " + "; ".join(text for _, text in remedies) + "."
        param = remedies[0][0]
    else:
        message += (
            f" Nothing fits on this server's {devices} accelerator(s) of {gib(device_memory)}, not even "
            "QLoRA on all of them with a 256-token context; choose a smaller model."
        )
        param = "model"
    raise InvalidRequest(message, param=param, code="insufficient_memory")


def _label(shape: Shape) -> str:
    name = {"full": "full fine-tune", "lora": f"LoRA r{shape.lora_r}", "qlora": f"QLoRA r{shape.lora_r}"}
    return name[shape.adapter] + (" DPO" if shape.method == "dpo" else "")


def _try(dims: ModelDims, shape: Shape, device_memory: int, fsdp_setting: str) -> memory.Estimate | None:
    shape = memory.best_sharding(dims, shape, device_memory, fsdp_setting=fsdp_setting)
    est = memory.estimate(dims, shape)
    return est if est.total <= memory.usable(device_memory) else None


def _remedies(
    dims: ModelDims, asked: Shape, devices: int, device_memory: int, fsdp_setting: str
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not asked.gradient_checkpointing and (
        est := _try(dims, replace(asked, gradient_checkpointing=True), device_memory, fsdp_setting)
    ):
        out.append((PARAM_CHECKPOINTING, f"gradient_checkpointing on (~{gib(est.total)})"))
    if asked.adapter == "full" and (est := _try(dims, replace(asked, adapter="lora"), device_memory, fsdp_setting)):
        out.append((PARAM_LORA, f"LoRA instead of a full fine-tune (~{gib(est.total)})"))
    if asked.adapter != "qlora" and (est := _try(dims, replace(asked, adapter="qlora"), device_memory, fsdp_setting)):
        out.append((PARAM_QLORA, f"QLoRA, a LoRA on a 4-bit NF4 base (quantization nf4, ~{gib(est.total)})"))
    if fsdp_setting != "never":
        for n in range(asked.devices + 1, devices + 1):
            if est := _try(dims, replace(asked, devices=n), device_memory, fsdp_setting):
                text = f"{n} accelerators with FSDP (~{gib(est.total)} each; this server has {devices})"
                out.append((PARAM_ACCEL, text))
                break
    context = asked.context_length // 2
    while context >= 256:
        if est := _try(dims, replace(asked, context_length=context), device_memory, fsdp_setting):
            out.append((PARAM_CONTEXT, f"context_length {context} or less (~{gib(est.total)})"))
            break
        context //= 2
    return out
