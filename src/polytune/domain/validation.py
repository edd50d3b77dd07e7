"""Rules every JobSpec must satisfy, whatever dialect it came through. `param` names the field."""

from __future__ import annotations

from .bounds import check_bounds
from .errors import InvalidRequest
from .spec import METHODS, PREFERENCE_LOSS_TYPES, TRAINABLE_METHODS, ImageSpec, JobSpec

MAX_SUFFIX = 64
MAX_METADATA_KEYS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512


def check_spec(spec: JobSpec) -> None:
    if spec.method.type not in METHODS:
        raise InvalidRequest(
            f"Unknown method '{spec.method.type}'; expected one of {list(METHODS)}.", param="method.type"
        )
    if spec.method.type not in TRAINABLE_METHODS:
        raise InvalidRequest(
            f"Method '{spec.method.type}' is not available on this server yet; available: {list(TRAINABLE_METHODS)}.",
            param="method.type",
        )
    # A method's own options (a reinforcement job's grader, an image job's settings) are there:
    # JobSpec refuses a spec without them when it is made (domain/spec.py).
    if spec.image is not None:
        _check_image(spec.image)
    if not spec.training_files or not all(spec.training_files):
        raise InvalidRequest("training_file is required.", param="training_file")
    if spec.validation_file and spec.validation_file in spec.training_files:
        raise InvalidRequest(
            "validation_file must differ from training_file: the same data can't "
            "measure how well the model generalises.",
            param="validation_file",
        )
    # Every number of the spec within its range (domain/bounds.py).
    check_bounds(spec)
    if spec.preference is not None:
        if spec.preference.loss_type not in PREFERENCE_LOSS_TYPES:
            raise InvalidRequest(
                f"Unknown DPO loss_type '{spec.preference.loss_type}'; expected one of {list(PREFERENCE_LOSS_TYPES)}.",
                param="hyperparameters.loss_type",
            )
    suffix = spec.output.suffix
    if suffix is not None and len(suffix) > MAX_SUFFIX:
        raise InvalidRequest(f"suffix must be at most {MAX_SUFFIX} characters, got {len(suffix)}.", param="suffix")
    if suffix is not None and ":" in suffix:
        raise InvalidRequest("suffix must not contain ':' (it separates the parts of a model name).", param="suffix")
    md = spec.metadata
    if len(md) > MAX_METADATA_KEYS:
        raise InvalidRequest(f"metadata may hold at most {MAX_METADATA_KEYS} keys, got {len(md)}.", param="metadata")
    for k, v in md.items():
        if len(k) > MAX_METADATA_KEY:
            raise InvalidRequest(f"metadata key '{k[:20]}…' is over {MAX_METADATA_KEY} characters.", param="metadata")
        if len(v) > MAX_METADATA_VALUE:
            raise InvalidRequest(f"metadata['{k}'] is over {MAX_METADATA_VALUE} characters.", param="metadata")


def _check_image(image: ImageSpec) -> None:
    # Its numbers are bounded with the others (domain/bounds.py).
    if image.sample_prompts and len(image.sample_prompts) != image.samples:
        raise InvalidRequest("samples must equal the number of sample prompts given.", param="image.samples")
    for i, prompt in enumerate(image.sample_prompts):
        if not prompt.strip():
            raise InvalidRequest(f"samples[{i}].prompt must not be empty.", param=f"image.samples[{i}].prompt")
