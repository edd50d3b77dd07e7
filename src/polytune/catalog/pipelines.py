"""Which model family a diffusers pipeline belongs to, read from its `model_index.json`
(`_class_name`), and so which training objective it learns with.

- flow matching: the transformer (DiT) pipelines Oxen lists — FLUX.1/FLUX.2, Qwen-Image,
  Z-Image — and Stable Diffusion 3 regress the velocity `noise - x0` at a continuous σ;
- UNet: Stable Diffusion 1.x/2.x and SDXL predict the noise (`epsilon`) or the velocity
  (`v_prediction`) at a discrete timestep, whichever their scheduler config names.

polytune trains the classes of TRAINED (one module each in training/image/: flux.py, unet.py,
sdxl.py, ..., picked by training/image/family.py); a pipeline of another class is refused when
the job is created. Pure recognition lives here, below services and training both: services
check a job's model with it, the worker picks its training code after it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polytune.domain.errors import InvalidRequest

if TYPE_CHECKING:
    from polytune.catalog.models import CatalogEntry

# Stable Diffusion 3 is an MMDiT trained by flow matching, not a UNet: its own prefix.
FLOW_MATCHING_PREFIXES = ("Flux", "QwenImage", "ZImage", "StableDiffusion3")
UNET_PREFIXES = ("StableDiffusionPipeline", "StableDiffusionXL")
TRAINED = {
    "FluxPipeline": "flow matching",
    "StableDiffusionPipeline": "UNet",
    "StableDiffusionXLPipeline": "UNet",
    "StableDiffusion3Pipeline": "flow matching",
    "ZImagePipeline": "flow matching",
    "QwenImagePipeline": "flow matching",
    "Flux2Pipeline": "flow matching",
}


def objective_family(class_name: str) -> str | None:
    """ "flow matching", "UNet", or None for a pipeline class of neither family."""
    if class_name.startswith(FLOW_MATCHING_PREFIXES):
        return "flow matching"
    if class_name.startswith(UNET_PREFIXES):
        return "UNet"
    return None


def pipeline_class_name(source: Path | str) -> str:
    """`_class_name` of a pipeline folder or hub id's model_index.json."""
    folder = Path(source)
    if folder.is_dir():
        return json.loads((folder / "model_index.json").read_text())["_class_name"]
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.load_config(str(source))["_class_name"]


def check_trainable(class_name: str, model: str) -> None:
    """400 on `model` for a pipeline polytune does not train (yet), naming its family."""
    if class_name in TRAINED:
        return
    family = objective_family(class_name)
    kind = f"a {family} pipeline" if family else "a pipeline of no family polytune knows"
    raise InvalidRequest(
        f"The model '{model}' is {kind} ({class_name}); polytune trains "
        f"{', '.join(f'{c} ({f})' for c, f in TRAINED.items())} so far.",
        param="model",
        code="model_not_supported",
    )


def call_kwargs(family: str | None, entry: CatalogEntry) -> dict[str, Any]:
    """What a pipeline of this family takes besides prompt, size, steps and generator, from the
    catalog entry: FLUX's text length; the guidance scale where the entry sets one."""
    out: dict[str, Any] = {}
    if family == "flow matching":
        out["max_sequence_length"] = entry.max_sequence_length
    if entry.guidance_scale is not None:
        out["guidance_scale"] = entry.guidance_scale
    return out
