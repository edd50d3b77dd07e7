"""Which dtypes a text job loads, trains and saves in: one pure decision, from the device's
capabilities and the adapter, so it is tested with faked capabilities and used by every recipe.

- CPU: fp32 throughout (measured on this project's CPUs: bf16 autocast is slower for small
  models, and fp32 is what every CPU test has always run).
- An accelerator with bf16 (Ampere and later): bf16 compute. A full fine-tune keeps fp32
  master weights and AdamW state and runs its forward and backward in bf16 under autocast: AdamW
  updates applied to bf16 weights are lost below the weight's bf16 spacing (lr x update is often
  smaller than 2^-8 of the weight), so pure-bf16 weights drift from what the job asked. LoRA
  loads the frozen base in bf16 (half the memory, no update to lose) and peft keeps the adapter
  in fp32. QLoRA loads the base in 4-bit NF4 with bf16 compute.
- An accelerator without bf16 (V100, T4): the same in fp16, with the Trainer's dynamic loss
  scaling (fp16=True is torch.amp's GradScaler), since fp16's range underflows small gradients.
- A full-fine-tune DPO's reference model only runs forward: loaded in the compute dtype.
- Saved weights: in the model's own dtype (config.json's torch_dtype / dtype), whatever the
  job trained in, so a bf16 model fine-tuned with fp32 master weights is not written at twice
  its size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Precision:
    # The dtype the policy's weights are loaded in ("float32", "bfloat16", "float16").
    load_dtype: str
    # The Trainer's mixed-precision flags (autocast; fp16 adds loss scaling).
    bf16: bool
    fp16: bool
    # A full-fine-tune DPO's reference model.
    reference_dtype: str
    # QLoRA: the base in 4-bit NF4, computing in this dtype.
    quantize_4bit: bool = False

    @property
    def compute_dtype(self) -> str:
        return "bfloat16" if self.bf16 else "float16" if self.fp16 else "float32"

    def describe(self) -> str:
        base = "4-bit NF4" if self.quantize_4bit else self.load_dtype
        return f"weights loaded in {base}, compute in {self.compute_dtype}" + (
            " with loss scaling" if self.fp16 else ""
        )


def choose(*, cuda: bool, bf16_supported: bool, adapter: str, quantization: str | None = None) -> Precision:
    """`adapter` is "full" or "lora"; `quantization` "nf4" for QLoRA (a LoRA on a 4-bit base)."""
    if not cuda:
        if quantization:
            raise ValueError("4-bit quantization (QLoRA) needs a CUDA accelerator")
        return Precision(load_dtype="float32", bf16=False, fp16=False, reference_dtype="float32")
    half = "bfloat16" if bf16_supported else "float16"
    flags = dict(bf16=bf16_supported, fp16=not bf16_supported)
    if adapter == "full":
        return Precision(load_dtype="float32", reference_dtype=half, **flags)
    return Precision(load_dtype=half, reference_dtype=half, quantize_4bit=quantization == "nf4", **flags)


def for_this_device(adapter: str, quantization: str | None = None) -> Precision:
    import torch

    cuda = torch.cuda.is_available()
    return choose(
        cuda=cuda, bf16_supported=cuda and torch.cuda.is_bf16_supported(), adapter=adapter, quantization=quantization
    )


def saved_dtype(config: dict[str, Any]) -> str | None:
    """The model's own dtype from its config (transformers 5 writes `dtype`, 4.x `torch_dtype`)."""
    value = config.get("dtype") or config.get("torch_dtype")
    return value if value in ("float32", "bfloat16", "float16") else None


def load_kwargs(precision: Precision) -> dict[str, Any]:
    """from_pretrained keyword arguments for the policy."""
    import torch

    kwargs: dict[str, Any] = {"dtype": getattr(torch, precision.load_dtype)}
    if precision.quantize_4bit:
        from transformers import BitsAndBytesConfig

        compute = getattr(torch, precision.compute_dtype)
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
            bnb_4bit_quant_storage=compute,
        )
        kwargs["dtype"] = compute
        # bitsandbytes quantises while loading, onto this process's device (its rank's under torchrun).
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    return kwargs
