"""DDP or FSDP for a multi-worker job (POLYTUNE_FSDP), and the trainer settings FSDP takes.

DDP keeps the whole model, its gradients and its optimizer state on every worker; FSDP shards
them across the workers, so a model that does not fit one device still trains. FSDP costs more
communication, so `auto` uses it only when the model would not fit. Sharding itself is
transformers' and accelerate's (TrainingArguments `fsdp` / `fsdp_config`, FSDP2): polytune
decides and names the layers to wrap, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

# A full fine-tune in fp32 with Adam: weights 4 + gradients 4 + two moments 8 bytes per parameter.
FULL_BYTES_PER_PARAM = 16
# LoRA: the frozen fp32 weights; the adapter, its gradients and optimizer state are a few
# percent of the model, so they and the rest go into the headroom below.
LORA_BYTES_PER_PARAM = 4
LORA_OVERHEAD = 1.1
# What a worker may plan to use of its device: the rest is activations, the CUDA context and
# the allocator's fragmentation, none of which the parameter count tells.
DEVICE_BUDGET = 0.8
GB = 1024**3


def _size(n_bytes: float) -> str:
    return f"{n_bytes / GB:.1f} GB" if n_bytes >= GB / 10 else f"{n_bytes / 1024**2:.1f} MB"


@dataclass(frozen=True)
class Strategy:
    fsdp: bool
    reason: str

    @property
    def name(self) -> str:
        return "FSDP" if self.fsdp else "DDP"


def memory_need(n_params: int, *, lora: bool) -> int:
    """Bytes one worker needs for the model's training state when it holds all of it (DDP)."""
    if lora:
        return int(n_params * LORA_BYTES_PER_PARAM * LORA_OVERHEAD)
    return n_params * FULL_BYTES_PER_PARAM


def choose_strategy(
    setting: str, *, workers: int, device_memory: int | None, n_params: int, lora: bool
) -> Strategy | None:
    """DDP or FSDP for a job with `workers` workers (None for one worker: nothing to choose).
    `device_memory` is one device's memory in bytes, None for CPU workers."""
    if workers <= 1:
        return None
    need = memory_need(n_params, lora=lora)
    size = (
        f"~{_size(need)} of training state per worker with DDP ({n_params / 1e6:.1f}M parameters, "
        f"{'LoRA' if lora else 'full fine-tune'})"
    )
    if setting == "never":
        return Strategy(False, f"POLYTUNE_FSDP=never; {size}")
    if device_memory is None:
        # accelerate (1.15) turns FSDP on for accelerator devices only; on CPU workers it would
        # silently run DDP, so say so instead.
        return Strategy(False, f"CPU workers: FSDP shards on accelerators only; {size}")
    budget = f"{DEVICE_BUDGET:.0%} of one device's {_size(device_memory)}"
    if setting == "always":
        return Strategy(True, f"POLYTUNE_FSDP=always; {size}")
    if need > DEVICE_BUDGET * device_memory:
        return Strategy(True, f"the model does not fit one device: {size}, more than {budget}")
    return Strategy(False, f"the model fits one device: {size}, within {budget}")


def device_memory() -> int | None:
    """One accelerator's memory in bytes (the smallest, if they differ); None on CPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return min(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count()))


@dataclass(frozen=True)
class ModelShape:
    n_params: int
    # The classes FSDP wraps one by one (the decoder layers): the model's _no_split_modules.
    layer_classes: tuple[str, ...]


@lru_cache(maxsize=8)
def model_shape(model_path: str) -> ModelShape:
    """Counted on the meta device: nothing is allocated and no weights are read."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_path))
    model.tie_weights()  # tied embeddings are one parameter (from_config on meta leaves them apart)
    return ModelShape(
        n_params=sum(p.numel() for p in model.parameters()), layer_classes=tuple(model._no_split_modules or ())
    )


def job_strategy(setting: str, model_path: Path | str, *, lora: bool) -> Strategy | None:
    """The strategy of this worker's job (all its workers decide alike: same inputs)."""
    from polytune.training.distributed import world_size

    workers = world_size()
    if workers <= 1:
        return None
    return choose_strategy(
        setting,
        workers=workers,
        device_memory=device_memory(),
        n_params=model_shape(str(model_path)).n_params,
        lora=lora,
    )


def fsdp_training_args(
    model_path: Path | str, *, activation_checkpointing: bool, efficient_loading: bool = True
) -> dict[str, Any]:
    """TrainingArguments entries that turn FSDP on.

    FSDP2 (accelerate's preferred version): parameters are sharded one by one, so LoRA's frozen
    and trainable parameters share a wrapped layer without FSDP1's use_orig_params.
    SHARDED_STATE_DICT: a resume checkpoint is each rank's own shard of the weights and the
    optimizer state (torch.distributed.checkpoint), written by every rank at once, with nothing
    gathered on rank 0; each rank stores its part under the checkpoint's one key
    (store/checkpoint_parts.py). The final model and the epoch checkpoints are gathered whole
    anyway (saving.save_trained: accelerate's get_state_dict), in the model's dtype, safetensors.
    cpu_ram_efficient_loading: rank 0 alone reads the weights from disk, the other ranks build the
    model on the meta device and receive their shards from it, so a node holds one CPU copy of
    the model while loading instead of one per process (FSDP2 broadcasts them itself: FSDP1's
    sync_module_states is obsolete there, and accelerate drops it). `efficient_loading` False for
    a LoRA that trains tied embeddings (modules_to_save with ensure_weight_tying): measured with
    accelerate 1.15 / peft, re-tying them on the meta-device ranks fails ("attribute 'weight'
    already exists"), so those jobs load on every rank as before.
    """
    layers = model_shape(str(model_path)).layer_classes
    return dict(
        fsdp=True,
        fsdp_config={
            "version": 2,
            "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            **({"transformer_layer_cls_to_wrap": list(layers)} if layers else {}),
            "state_dict_type": "SHARDED_STATE_DICT",
            "reshard_after_forward": True,
            "cpu_ram_efficient_loading": efficient_loading,
            # FSDP's own checkpointing: the Trainer's would all-gather each layer once more.
            "activation_checkpointing": activation_checkpointing,
        },
        activation_checkpointing=False,
    )
