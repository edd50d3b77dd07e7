"""Image generation: LoRA (or full fine-tuning) of a diffusers pipeline's denoiser.

There is no TRL trainer for diffusion models, so this recipe builds what diffusers' official
examples build (`train_dreambooth_lora_flux.py`, `train_text_to_image_lora.py`): the pipeline
with everything but the denoiser frozen, peft LoRA layers on the denoiser's projections (or
the whole denoiser trainable when `use_lora` is false), trainable parameters upcast to fp32
(`cast_training_params`), an AdamW optimizer, and an `accelerate` Accelerator for gradient
accumulation and mixed precision (bf16 where the hardware has it). What differs by model
family (loading, targets, data encoding, objective, LoRA format) is in training/image/ (flux.py,
unet.py, sdxl.py, sd3.py, qwenimage.py, zimage.py, flux2.py); the loop that drives them is training/image/loop.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polytune.domain.spec import JobSpec
from polytune.catalog.models import CatalogEntry

from polytune.training.image.family import family_for
from polytune.training.image.savings import gradient_checkpointing

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from diffusers import DiffusionPipeline
    from peft import LoraConfig

    from polytune.training.image.family import Family


@dataclass
class ImageTraining:
    family: Family
    pipe: DiffusionPipeline
    accelerator: Accelerator
    denoiser: torch.nn.Module  # the transformer or UNet, prepared by the accelerator
    optimizer: torch.optim.Optimizer  # prepared by the accelerator
    params: list[torch.nn.Parameter]
    lora: LoraConfig | None
    weight_dtype: torch.dtype

    def settings(self) -> dict[str, Any]:
        """What the optimizer and adapter actually got, read back from them."""
        group = self.optimizer.param_groups[0]
        out: dict[str, Any] = {
            "learning_rate": group["lr"],
            "weight_decay": group["weight_decay"],
            "gradient_accumulation_steps": self.accelerator.gradient_accumulation_steps,
            "mixed_precision": str(self.accelerator.mixed_precision),
            "trainable_parameters": sum(p.numel() for p in self.params),
            "family": self.family.name,
            "objective": self.family.objective(self.pipe),
            "gradient_checkpointing": bool(
                getattr(self.accelerator.unwrap_model(self.denoiser), "is_gradient_checkpointing", False)
            ),
        }
        if self.lora is not None:
            out["lora"] = {
                "r": self.lora.r,
                "alpha": self.lora.lora_alpha,
                "target_modules": sorted(self.lora.target_modules),
            }
        return out


def lora_targets(spec: JobSpec, family: Family) -> list[str]:
    targets = spec.adapter.lora.target_modules
    return family.lora_targets if targets == "all-linear" else list(targets)


def build_image_training(spec: JobSpec, entry: CatalogEntry, model_path: Path | str) -> ImageTraining:
    import torch
    from accelerate import Accelerator
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    hp = spec.hyperparameters
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    accelerator = Accelerator(
        gradient_accumulation_steps=hp.gradient_accumulation_steps or 1,
        mixed_precision="bf16" if bf16 else "no",
        cpu=not cuda,
    )
    # Frozen parts in the compute dtype; what trains is upcast to fp32 below.
    weight_dtype = torch.bfloat16 if bf16 else torch.float32
    family = family_for(model_path)
    pipe = family.load(model_path, weight_dtype)
    pipe.set_progress_bar_config(disable=True)
    pipe.to(accelerator.device)
    for part in family.frozen(pipe):
        part.requires_grad_(False)
    denoiser = getattr(pipe, family.denoiser)
    if gradient_checkpointing(on_accelerator=cuda) and denoiser.supports_gradient_checkpointing:
        denoiser.enable_gradient_checkpointing()
    lora = None
    if spec.adapter.kind == "lora":
        lora = LoraConfig(
            r=spec.adapter.lora.r,
            lora_alpha=spec.adapter.lora.alpha,
            lora_dropout=spec.adapter.lora.dropout,
            init_lora_weights="gaussian",
            target_modules=lora_targets(spec, family),
        )
        denoiser.add_adapter(lora)
    else:
        denoiser.requires_grad_(True)
    cast_training_params(denoiser, dtype=torch.float32)
    params = [p for p in denoiser.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay or 0.0)
    denoiser, optimizer = accelerator.prepare(denoiser, optimizer)
    return ImageTraining(
        family=family,
        pipe=pipe,
        accelerator=accelerator,
        denoiser=denoiser,
        optimizer=optimizer,
        params=params,
        lora=lora,
        weight_dtype=weight_dtype,
    )


def save_weights(training: ImageTraining, out_dir: Path) -> Path:
    """LoRA: `pytorch_lora_weights.safetensors` in diffusers' format, with the adapter's
    settings as metadata (without them a reload assumes alpha = rank). Full: the denoiser as
    a `transformer/` or `unet/` folder, to load into the base pipeline in its place."""
    from peft.utils import get_peft_model_state_dict

    out_dir.mkdir(parents=True, exist_ok=True)
    denoiser = training.accelerator.unwrap_model(training.denoiser)
    if training.lora is not None:
        training.family.save_lora(out_dir, get_peft_model_state_dict(denoiser), training.lora.to_dict())
    else:
        denoiser.save_pretrained(out_dir / training.family.denoiser)
    return out_dir
