"""Rules every JobSpec must satisfy, whatever dialect it came through. `param` names the field."""

from __future__ import annotations

from .errors import InvalidRequest
from .spec import IMAGE_METHODS, METHODS, PREFERENCE_LOSS_TYPES, TRAINABLE_METHODS, JobSpec

MAX_SUFFIX = 64
MAX_METADATA_KEYS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512


def _positive(value, param: str, *, integer: bool) -> None:
    if value == "auto" or value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        raise InvalidRequest(f"{param} must be {kind} or 'auto', got {value!r}.", param=param)
    if value <= 0:
        raise InvalidRequest(f"{param} must be greater than 0, got {value}.", param=param)


def check_spec(spec: JobSpec) -> None:
    if spec.method not in METHODS:
        raise InvalidRequest(f"Unknown method '{spec.method}'; expected one of {list(METHODS)}.",
                             param="method.type")
    if spec.method not in TRAINABLE_METHODS:
        raise InvalidRequest(f"Method '{spec.method}' is not available on this server yet; "
                             f"available: {list(TRAINABLE_METHODS)}.", param="method.type")
    if spec.method == "reinforcement" and (spec.reward is None or not spec.reward.graders):
        raise InvalidRequest("A reinforcement job needs a grader.", param="method.reinforcement.grader")
    if (spec.method in IMAGE_METHODS) != (spec.image is not None):
        raise InvalidRequest(f"Method '{spec.method}' {'needs' if spec.image is None else 'takes no'} image "
                             "settings.", param="method.type")
    if spec.image is not None:
        _check_image(spec)
    if not spec.training_files or not all(spec.training_files):
        raise InvalidRequest("training_file is required.", param="training_file")
    if spec.validation_file and spec.validation_file in spec.training_files:
        raise InvalidRequest("validation_file must differ from training_file: the same data can't "
                             "measure how well the model generalises.", param="validation_file")
    hp = spec.hyperparameters
    _positive(hp.n_epochs, "hyperparameters.n_epochs", integer=True)
    _positive(hp.max_steps, "hyperparameters.max_steps", integer=True)
    _positive(hp.batch_size, "hyperparameters.batch_size", integer=True)
    _positive(hp.learning_rate_multiplier, "hyperparameters.learning_rate_multiplier", integer=False)
    _positive(hp.learning_rate, "hyperparameters.learning_rate", integer=False)
    _positive(hp.gradient_accumulation_steps, "hyperparameters.gradient_accumulation_steps", integer=True)
    _positive(hp.context_length, "hyperparameters.context_length", integer=True)
    _positive(hp.max_grad_norm, "hyperparameters.max_grad_norm", integer=False)
    if isinstance(hp.n_epochs, int) and hp.n_epochs > 100:
        raise InvalidRequest("hyperparameters.n_epochs must be at most 100.", param="hyperparameters.n_epochs")
    if hp.warmup_ratio is not None and not 0 <= hp.warmup_ratio < 1:
        raise InvalidRequest("hyperparameters.warmup_ratio must be in [0, 1).", param="hyperparameters.warmup_ratio")
    if hp.weight_decay is not None and hp.weight_decay < 0:
        raise InvalidRequest("hyperparameters.weight_decay must not be negative.", param="hyperparameters.weight_decay")
    if hp.n_checkpoints < 0:
        raise InvalidRequest("n_checkpoints must not be negative.", param="hyperparameters.n_checkpoints")
    if spec.preference is not None:
        _positive(spec.preference.beta, "hyperparameters.beta", integer=False)
        if spec.preference.loss_type not in PREFERENCE_LOSS_TYPES:
            raise InvalidRequest(f"Unknown DPO loss_type '{spec.preference.loss_type}'; expected one of "
                                 f"{list(PREFERENCE_LOSS_TYPES)}.", param="hyperparameters.loss_type")
    lora = spec.adapter.lora
    _positive(lora.r, "hyperparameters.lora_r", integer=True)
    _positive(lora.alpha, "hyperparameters.lora_alpha", integer=True)
    # 1 is allowed (SeekrFlow's bounds are [0, 1]): it trains, with nothing reaching the adapter.
    if not 0 <= lora.dropout <= 1:
        raise InvalidRequest("lora_dropout must be in [0, 1].", param="hyperparameters.lora_dropout")
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
    if spec.seed is not None and not 0 <= spec.seed < 2**31:
        raise InvalidRequest("seed must be between 0 and 2147483647.", param="seed")


def _check_image(spec: JobSpec) -> None:
    image = spec.image
    if image.sample_every < 1:
        raise InvalidRequest(f"sample_every must be at least 1, got {image.sample_every}.", param="image.sample_every")
    if image.samples < 0:
        raise InvalidRequest(f"samples must not be negative, got {image.samples}.", param="image.samples")
    if image.sample_prompts and len(image.sample_prompts) != image.samples:
        raise InvalidRequest("samples must equal the number of sample prompts given.", param="image.samples")
    for i, prompt in enumerate(image.sample_prompts):
        if not prompt.strip():
            raise InvalidRequest(f"samples[{i}].prompt must not be empty.", param=f"image.samples[{i}].prompt")
    _positive(image.sample_steps, "image.sample_steps", integer=True)
    _positive(image.resolution, "image.resolution", integer=True)
