"""How much accelerator memory a training job needs, per device, from the model's config alone.

No weights are read and torch is not imported: the figures come from the decoder's shape in
config.json (hidden size, layers, heads, KV heads, MLP width, vocabulary), so a job that can
never fit is refused when it is created, not after minutes of loading. docs/scaling.md shows
every formula; in short, per device:

- weights: a full fine-tune keeps fp32 master weights (4 B/parameter; the forward runs in bf16
  under autocast), LoRA keeps the frozen base in the compute dtype (2 B on an accelerator),
  QLoRA keeps the decoder's linear layers in 4-bit NF4 with double-quantised block constants
  (~0.516 B) and the rest in bf16; the LoRA adapter is fp32.
- gradients: 4 B per trained parameter; AdamW: two fp32 moments, 8 B per trained parameter.
- a DPO full fine-tune's reference model: the whole model once more in the compute dtype
  (LoRA/QLoRA DPO takes its reference from the base with the adapter off: nothing extra).
- activations, per token of the micro-batch (DPO: chosen and rejected, so 2 x context):
  without gradient checkpointing every layer keeps (6h + 2*kv + 4*I) values (norm inputs and
  outputs, q/k/v, attention output, the SwiGLU's gate, up, activation and product; attention
  itself is SDPA/flash, which keeps no s^2 scores), in the compute dtype; with checkpointing
  each layer keeps its input (h values) and one layer at a time is recomputed in full. The
  logits add V x (compute bytes + 8): the bf16 logits, their fp32 upcast for the loss and
  log-softmax kept for its backward.
- a fixed 1 GiB for the CUDA context and library workspaces; a device's usable memory is 90%
  of its total (the allocator's fragmentation).
- FSDP divides weights, gradients, optimizer state and the reference model by the number of
  devices and adds two decoder layers gathered whole (the one computing, the one prefetched).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from polytune.domain.spec import JobSpec

GiB = 1024**3
# bitsandbytes NF4: 4 bits per weight, one 8-bit absmax per 64-weight block (double quantisation)
# and one fp32 constant per 256 of those blocks.
NF4_BYTES = 0.5 + (1 + 4 / 256) / 64
CUDA_OVERHEAD = 1 * GiB
USABLE_FRACTION = 0.9
FULL_WEIGHT_BYTES = 4  # fp32 master weights
GRAD_BYTES = 4
ADAM_BYTES = 8
# peft's names for the decoder's linear layers (Llama, Qwen, Mistral all use these).
_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

Adapter = Literal["full", "lora", "qlora"]


@dataclass(frozen=True)
class ModelDims:
    """A decoder-only transformer's shape, as its config.json gives it."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied_embeddings: bool = False

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelDims | None:
        """None when the config is not a decoder this planner knows (then nothing is refused)."""
        cfg = config.get("text_config") if "hidden_size" not in config and "text_config" in config else config
        try:
            hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
            return cls(
                hidden=hidden,
                layers=int(cfg["num_hidden_layers"]),
                heads=heads,
                kv_heads=int(cfg.get("num_key_value_heads") or heads),
                head_dim=int(cfg.get("head_dim") or hidden // heads),
                intermediate=int(cfg["intermediate_size"]),
                vocab=int(cfg["vocab_size"]),
                tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            )
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer of one decoder layer."""
        h, q, kv, i = self.hidden, self.heads * self.head_dim, self.kv_dim, self.intermediate
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    @property
    def layer_linear_params(self) -> int:
        return sum(a * b for a, b in self.linear_shapes().values())

    @property
    def linear_params(self) -> int:
        """The parameters QLoRA quantises: every decoder layer's linear layers."""
        return self.layers * self.layer_linear_params

    @property
    def layer_params(self) -> int:
        return self.layer_linear_params + 2 * self.hidden  # two RMSNorm weights

    @property
    def n_params(self) -> int:
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * self.layer_params + embeddings + self.hidden  # + the final norm

    def lora_params(self, r: int, targets: list[str] | str = "all-linear") -> int:
        """Adapter parameters: r x (in + out) for each targeted linear of each layer. Names this
        planner does not know count as all-linear (an upper bound, never an underestimate)."""
        shapes = self.linear_shapes()
        names = list(shapes) if targets == "all-linear" or not set(targets) <= set(_LINEARS) else targets
        return self.layers * sum(r * sum(shapes[n]) for n in names)

    def activation_values(self) -> int:
        """Values one decoder layer keeps per token for its backward (no checkpointing)."""
        return 6 * self.hidden + 2 * self.kv_dim + 4 * self.intermediate


@dataclass(frozen=True)
class Shape:
    """How the job trains: everything the estimate depends on besides the model."""

    adapter: Adapter = "full"
    lora_r: int = 16
    lora_targets: list[str] | str = "all-linear"
    method: str = "supervised"
    context_length: int = 1024
    micro_batch: int = 1
    gradient_checkpointing: bool = True
    devices: int = 1
    fsdp: bool = False
    # Bytes per value of the compute dtype: 2 (bf16/fp16) on an accelerator, 4 (fp32) on CPU.
    compute_bytes: int = 2


@dataclass(frozen=True)
class Estimate:
    """Bytes per device."""

    weights: int
    gradients: int
    optimizer: int
    reference: int
    activations: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.reference + self.activations + self.overhead

    def describe(self) -> str:
        parts = [
            ("weights", self.weights),
            ("gradients", self.gradients),
            ("optimizer", self.optimizer),
            ("reference model", self.reference),
            ("activations", self.activations),
            ("CUDA context", self.overhead),
        ]
        return f"{gib(self.total)} ({', '.join(f'{k} {gib(v)}' for k, v in parts if v)})"


def gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def state_bytes(dims: ModelDims, shape: Shape) -> tuple[int, int, int, int]:
    """Weights, gradients, optimizer state and reference model of the whole job (unsharded)."""
    if shape.adapter == "full":
        trained = dims.n_params
        weights = dims.n_params * FULL_WEIGHT_BYTES
    else:
        trained = dims.lora_params(shape.lora_r, shape.lora_targets)
        if shape.adapter == "qlora":
            rest = dims.n_params - dims.linear_params
            base = dims.linear_params * NF4_BYTES + rest * 2
        else:
            base = dims.n_params * shape.compute_bytes
        weights = int(base) + trained * 4
    reference = dims.n_params * shape.compute_bytes if shape.method == "dpo" and shape.adapter == "full" else 0
    return weights, trained * GRAD_BYTES, trained * ADAM_BYTES, reference


def activation_bytes_per_token(dims: ModelDims, shape: Shape) -> int:
    per_layer = dims.activation_values() * shape.compute_bytes
    if shape.gradient_checkpointing:
        layers = dims.layers * dims.hidden * shape.compute_bytes + per_layer
    else:
        layers = dims.layers * per_layer
    return layers + dims.vocab * (shape.compute_bytes + 8)


def tokens_per_micro_batch(shape: Shape) -> int:
    # DPO puts each example's chosen and rejected answers through the model together.
    return shape.micro_batch * shape.context_length * (2 if shape.method == "dpo" else 1)


def estimate(dims: ModelDims, shape: Shape, *, accelerator: bool = True) -> Estimate:
    """Per-device bytes of a job of this shape (`accelerator` False: no CUDA context)."""
    weights, grads, optim, reference = state_bytes(dims, shape)
    gathered = 0
    if shape.fsdp and shape.devices > 1:
        n = shape.devices
        weights, grads, optim, reference = (-(-x // n) for x in (weights, grads, optim, reference))
        gathered = 2 * dims.layer_params * shape.compute_bytes
    return Estimate(
        weights=weights + gathered,
        gradients=grads,
        optimizer=optim,
        reference=reference,
        activations=activation_bytes_per_token(dims, shape) * tokens_per_micro_batch(shape),
        overhead=CUDA_OVERHEAD if accelerator else 0,
    )


def usable(device_memory: int) -> int:
    return int(device_memory * USABLE_FRACTION)


def fits(dims: ModelDims, shape: Shape, device_memory: int) -> bool:
    return estimate(dims, shape).total <= usable(device_memory)


def best_sharding(dims: ModelDims, shape: Shape, device_memory: int, *, fsdp_setting: str = "auto") -> Shape:
    """DDP when it fits (less communication), FSDP when only that fits; as POLYTUNE_FSDP allows."""
    if shape.devices <= 1 or fsdp_setting == "never":
        return replace(shape, fsdp=False)
    if fsdp_setting == "always":
        return replace(shape, fsdp=True)
    ddp = replace(shape, fsdp=False)
    return ddp if fits(dims, ddp, device_memory) else replace(shape, fsdp=True)


@dataclass(frozen=True)
class Batching:
    micro_batch: int
    accumulation: int


def batching(dims: ModelDims, shape: Shape, device_memory: int, *, global_batch: int) -> Batching:
    """The micro-batch that fits the device's token budget (what is left once the weights and
    optimizer state are placed, divided by the activations of one sequence), and the gradient
    accumulation that makes micro-batch x accumulation x devices reach the global batch."""
    per_device = max(1, -(-global_batch // max(1, shape.devices)))
    fixed = estimate(dims, replace(shape, micro_batch=0)).total
    per_sequence = estimate(dims, replace(shape, micro_batch=1)).total - fixed
    room = usable(device_memory) - fixed
    micro = max(1, min(per_device, room // per_sequence if per_sequence else per_device))
    return Batching(micro_batch=int(micro), accumulation=-(-per_device // int(micro)))


def job_shape(spec: JobSpec, *, adapter_default: str, max_length: int) -> Shape:
    """The job's shape as it trains on an accelerator (recipes/common.py's defaults: gradient
    checkpointing on unless the job turned it off)."""
    hp = spec.hyperparameters
    kind = spec.adapter.kind if spec.adapter.kind != "auto" else adapter_default
    if kind == "lora" and spec.adapter.quantization == "nf4":
        kind = "qlora"
    return Shape(
        adapter=kind,
        lora_r=spec.adapter.lora.r,
        lora_targets=spec.adapter.lora.target_modules,
        method=spec.method.type,
        context_length=hp.context_length or max_length,
        micro_batch=1,
        gradient_checkpointing=hp.gradient_checkpointing is not False,
        devices=spec.resources.n_accel * spec.resources.n_node,
    )  # FSDP shards across all workers


def read_config(model_path: Path | str, **options: Any) -> dict[str, Any] | None:
    """config.json of a local folder, or of a hub id through transformers (cached/offline)."""
    folder = Path(model_path)
    if folder.is_dir():
        try:
            return json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            return None
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(str(model_path), **options).to_dict()
    except (OSError, ValueError):
        return None
