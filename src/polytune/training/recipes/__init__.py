"""One recipe per training method: how its rows reach training (`fit`: training/fit.py) and,
for the text methods, the trl trainer it builds from a JobSpec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from polytune.config import Settings
from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import JobSpec
from polytune.catalog.models import CatalogEntry
from polytune.training.recipes.dpo import build_dpo_trainer
from polytune.training.recipes.grpo import build_grpo_trainer
from polytune.training.fit import fit_images, fit_text
from polytune.training.recipes.sft import build_sft_trainer

if TYPE_CHECKING:
    from transformers import Trainer, TrainerCallback


class TrainerBuilder(Protocol):
    """(resolved spec, catalog entry, model path, train rows, validation rows or None, trainer
    output dir, extra callbacks; the worker's settings) -> a trainer ready to .train()"""

    def __call__(
        self,
        spec: JobSpec,
        entry: CatalogEntry,
        model_path: Path | str,
        train_rows: list[dict[str, Any]],
        val_rows: list[dict[str, Any]] | None,
        output_dir: Path,
        callbacks: list[TrainerCallback],
        *,
        settings: Settings | None = None,
    ) -> Trainer: ...


@dataclass(frozen=True)
class Recipe:
    method: str
    # Dataset formats (see polytune.data.formats.detect_format) the recipe trains on.
    formats: tuple[str, ...]
    # None: the method trains without a trl trainer (the image loop).
    build_trainer: TrainerBuilder | None
    # (blobs, settings, spec, entry, model path, work dir, reporter; resume_from, every) -> TrainingResult
    fit: Callable[..., Any] = fit_text


RECIPES: dict[str, Recipe] = {
    "supervised": Recipe("supervised", ("chat", "prompt_completion"), build_sft_trainer),
    "dpo": Recipe("dpo", ("preference",), build_dpo_trainer),
    "reinforcement": Recipe("reinforcement", ("reinforcement",), build_grpo_trainer),
    "image_generation": Recipe("image_generation", ("image_caption",), None, fit=fit_images),
}


def get_recipe(method: str) -> Recipe:
    try:
        return RECIPES[method]
    except KeyError:
        raise InvalidRequest(
            f"Training with method '{method}' is not supported yet (supported: {', '.join(RECIPES)}).", param="method"
        ) from None
