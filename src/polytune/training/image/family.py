"""The training code of each pipeline class polytune trains (catalog/pipelines.py's TRAINED):
one module per family in training/image/, imported only when a job of that family runs."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from polytune.catalog.pipelines import check_trainable, pipeline_class_name

if TYPE_CHECKING:
    from polytune.training.image.flux import FluxFamily
    from polytune.training.image.unet import UNetFamily

    # Every family has FluxFamily's shape: name, denoiser, lora_targets, load, frozen,
    # objective, encode_prompts, encode_images, loss, save_lora.
    Family = FluxFamily | UNetFamily

# The module and class that train each pipeline class of TRAINED.
_FAMILY_CLASSES = {
    "FluxPipeline": ("flux", "FluxFamily"),
    "StableDiffusionPipeline": ("unet", "UNetFamily"),
    "StableDiffusionXLPipeline": ("sdxl", "SDXLFamily"),
    "StableDiffusion3Pipeline": ("sd3", "SD3Family"),
    "ZImagePipeline": ("zimage", "ZImageFamily"),
    "QwenImagePipeline": ("qwenimage", "QwenImageFamily"),
    "Flux2Pipeline": ("flux2", "Flux2Family"),
}


def family_for(model_path: Path | str) -> Family:
    """The training code of the pipeline at `model_path`."""
    class_name = pipeline_class_name(model_path)
    check_trainable(class_name, str(model_path))
    module, cls = _FAMILY_CLASSES[class_name]
    return getattr(importlib.import_module(f"polytune.training.image.{module}"), cls)()
