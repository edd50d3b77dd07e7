"""The fastest correct compute path for a text job on an accelerator, chosen without the user
asking (cpu_path.py is the CPU's). One pure decision from what is installed, the model and the
memory plan, so it is tested with faked capabilities on a machine without a GPU.

- Liger kernels (`liger-kernel`, the `gpu` extra): Triton kernels for RMSNorm, RoPE, SwiGLU and
  the fused linear cross-entropy that never materialises the [tokens x vocabulary] logits —
  the largest activation of a small-to-mid model and most of its loss's time. Only for
  supervised jobs (trl's SFTTrainer takes `use_liger_kernel`; DPO and GRPO compute their own
  log-probs from the logits) and only for the model types liger patches.
- Attention: FlashAttention 2 where `flash-attn` is installed and the compute dtype is half
  precision (it has no fp32 kernels); padding-free batches then use its variable-length path
  (position ids restart per example). Otherwise sdpa, which reads the same restarts as
  boundaries (tests/training/test_cpu_path.py): exact either way, faster with FlashAttention.
- Gradient checkpointing: off when the memory plan (catalog/memory.py) fits a micro-batch
  without it that is large enough to keep the device busy (the whole per-device batch, or at
  least MIN_TOKENS tokens), since recomputing every layer's forward costs about a third of a
  step; on otherwise, where it buys the larger micro-batches.

The job's own `gradient_checkpointing` and the setting POLYTUNE_LIGER (auto, off) override.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

# A micro-batch of this many tokens keeps an accelerator's matmuls busy (an 8B model's
# 4096 x 4096 projections at 4096 rows): past it, checkpointing's larger micro-batches buy little.
MIN_TOKENS = 4096

# Model types liger-kernel 0.8 patches (liger_kernel.transformers.monkey_patch); read from the
# installed package when it is there, this list where it is not (the rule stays testable).
LIGER_MODEL_TYPES = frozenset(
    {"llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3_text", "phi3", "olmo2"}
)


@dataclass(frozen=True)
class GpuPath:
    liger: bool
    attn_implementation: str
    gradient_checkpointing: bool
    reason: str


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def attention(half_precision: bool, flash_installed: bool) -> str:
    """The attention implementation on an accelerator (FlashAttention has no fp32 kernels)."""
    return "flash_attention_2" if flash_installed and half_precision else "sdpa"


def liger_model_types() -> frozenset[str]:
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError:
        return LIGER_MODEL_TYPES
    return frozenset(MODEL_TYPE_TO_APPLY_LIGER_FN)


def choose(
    *,
    method: str,
    model_type: str,
    half_precision: bool,
    liger_installed: bool,
    flash_installed: bool,
    checkpointing_asked: bool | None,
    micro_batch_without: int,
    per_device_batch: int,
    context_length: int,
    liger_setting: str = "auto",
    liger_types: frozenset[str] = LIGER_MODEL_TYPES,
) -> GpuPath:
    """`micro_batch_without`: the largest micro-batch the memory plan fits without gradient
    checkpointing (0: not even one sequence)."""
    reasons = []
    liger = liger_setting != "off" and liger_installed and method == "supervised" and model_type in liger_types
    if liger:
        reasons.append("Liger kernels (fused linear cross-entropy, RMSNorm, RoPE, SwiGLU)")
    elif liger_setting == "off":
        reasons.append("no Liger kernels (POLYTUNE_LIGER=off)")
    elif not liger_installed:
        reasons.append("no Liger kernels (liger-kernel is not installed: the `gpu` extra)")
    else:
        reasons.append(f"no Liger kernels (not for {method} jobs or model type '{model_type}')")
    attn = attention(half_precision, flash_installed)
    flash = attn == "flash_attention_2"
    reasons.append("FlashAttention 2" if flash else "sdpa attention (flash-attn not installed or fp32 compute)")
    if checkpointing_asked is not None:
        checkpointing = checkpointing_asked
        reasons.append(f"gradient checkpointing {'on' if checkpointing else 'off'} (the job's setting)")
    else:
        enough = min(per_device_batch, max(1, -(-MIN_TOKENS // max(1, context_length))))
        checkpointing = micro_batch_without < enough
        reasons.append(
            "gradient checkpointing on (without it only "
            f"{micro_batch_without} sequence(s) of {context_length} tokens fit)"
            if checkpointing
            else f"no gradient checkpointing ({micro_batch_without} sequence(s) fit without it)"
        )
    return GpuPath(
        liger=liger, attn_implementation=attn, gradient_checkpointing=checkpointing, reason="; ".join(reasons)
    )
