"""Image generation: LoRA (or full fine-tuning) of a diffusers pipeline's denoiser.

There is no TRL trainer for diffusion models, so this recipe builds what diffusers' official
`train_dreambooth_lora_flux.py` example builds: the pipeline with everything but the denoiser
frozen, peft LoRA layers on the denoiser's attention and feed-forward projections (or the
whole denoiser trainable when `use_lora` is false), trainable parameters upcast to fp32
(`cast_training_params`), an AdamW optimizer, and an `accelerate` Accelerator for gradient
accumulation and mixed precision (bf16 where the hardware has it). The loop that drives them
is training/image/loop.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polytune.domain.spec import JobSpec
from polytune.training.models import CatalogEntry

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from diffusers import FluxPipeline
    from peft import LoraConfig

# diffusers' Flux LoRA example's targets: the joint blocks' attention (image and text
# streams) and feed-forward layers; single blocks' attention shares the to_q/k/v names.
FLUX_LORA_TARGETS = ["attn.to_k", "attn.to_q", "attn.to_v", "attn.to_out.0", "attn.add_k_proj",
                     "attn.add_q_proj", "attn.add_v_proj", "attn.to_add_out", "ff.net.0.proj", "ff.net.2",
                     "ff_context.net.0.proj", "ff_context.net.2"]


@dataclass
class ImageTraining:
    pipe: FluxPipeline
    accelerator: Accelerator
    transformer: torch.nn.Module      # prepared by the accelerator
    optimizer: torch.optim.Optimizer  # prepared by the accelerator
    params: list[torch.nn.Parameter]
    lora: LoraConfig | None
    weight_dtype: torch.dtype

    def settings(self) -> dict[str, Any]:
        """What the optimizer and adapter actually got, read back from them."""
        group = self.optimizer.param_groups[0]
        out: dict[str, Any] = {
            "learning_rate": group["lr"], "weight_decay": group["weight_decay"],
            "gradient_accumulation_steps": self.accelerator.gradient_accumulation_steps,
            "mixed_precision": str(self.accelerator.mixed_precision),
            "trainable_parameters": sum(p.numel() for p in self.params),
        }
        if self.lora is not None:
            out["lora"] = {"r": self.lora.r, "alpha": self.lora.lora_alpha,
                           "target_modules": sorted(self.lora.target_modules)}
        return out


def lora_targets(spec: JobSpec) -> list[str]:
    targets = spec.adapter.lora.target_modules
    return FLUX_LORA_TARGETS if targets == "all-linear" else list(targets)


def build_image_training(spec: JobSpec, entry: CatalogEntry, model_path: Path | str) -> ImageTraining:
    import torch
    from accelerate import Accelerator
    from diffusers import FluxPipeline
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    hp = spec.hyperparameters
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    accelerator = Accelerator(gradient_accumulation_steps=hp.gradient_accumulation_steps or 1,
                              mixed_precision="bf16" if bf16 else "no", cpu=not cuda)
    # Frozen parts in the compute dtype; what trains is upcast to fp32 below.
    weight_dtype = torch.bfloat16 if bf16 else torch.float32
    pipe = FluxPipeline.from_pretrained(model_path, dtype=weight_dtype)
    pipe.set_progress_bar_config(disable=True)
    pipe.to(accelerator.device)
    for part in (pipe.vae, pipe.text_encoder, pipe.text_encoder_2, pipe.transformer):
        part.requires_grad_(False)
    transformer = pipe.transformer
    lora = None
    if spec.adapter.kind == "lora":
        lora = LoraConfig(r=spec.adapter.lora.r, lora_alpha=spec.adapter.lora.alpha,
                          lora_dropout=spec.adapter.lora.dropout, init_lora_weights="gaussian",
                          target_modules=lora_targets(spec))
        transformer.add_adapter(lora)
    else:
        transformer.requires_grad_(True)
    cast_training_params(transformer, dtype=torch.float32)
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay or 0.0)
    transformer, optimizer = accelerator.prepare(transformer, optimizer)
    return ImageTraining(pipe=pipe, accelerator=accelerator, transformer=transformer, optimizer=optimizer,
                         params=params, lora=lora, weight_dtype=weight_dtype)


def save_weights(training: ImageTraining, out_dir: Path) -> Path:
    """LoRA: `pytorch_lora_weights.safetensors` in diffusers' format, with the adapter's
    settings as metadata (without them a reload assumes alpha = rank). Full: the denoiser as
    a `transformer/` folder, to load into the base pipeline in its place."""
    from diffusers import FluxPipeline
    from peft.utils import get_peft_model_state_dict

    out_dir.mkdir(parents=True, exist_ok=True)
    transformer = training.accelerator.unwrap_model(training.transformer)
    if training.lora is not None:
        FluxPipeline.save_lora_weights(out_dir, transformer_lora_layers=get_peft_model_state_dict(transformer),
                                       transformer_lora_adapter_metadata=training.lora.to_dict())
    else:
        transformer.save_pretrained(out_dir / "transformer")
    return out_dir
