"""OpenAI wire -> domain: a CreateJobRequest becomes a JobSpec. (Responses: render.py.)"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import (
    IMAGE_METHODS,
    METHODS,
    AdapterSpec,
    Hyperparameters,
    Integration,
    JobSpec,
    LoraSpec,
    OutputSpec,
    PreferenceSpec,
    RewardSpec,
    WandbIntegration,
    wandb_key_secret,
)

from .protocol import CreateJobRequest, DpoHyperparameters, SupervisedHyperparameters

# Hyperparameters beyond OpenAI's three that map straight onto the canonical ones (Nebius's
# extras, which the SDK passes through unchanged).
_PASSTHROUGH = (
    "learning_rate",
    "warmup_ratio",
    "weight_decay",
    "max_grad_norm",
    "context_length",
    "packing",
    "n_checkpoints",
    "gradient_accumulation_steps",
    "lr_scheduler",
    "long_examples",
)
_LORA = {"lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout"}
_LORA_BACK = {v: k for k, v in _LORA.items()}
_KNOWN = set(_PASSTHROUGH) | set(_LORA.values()) | {"n_epochs", "batch_size", "learning_rate_multiplier"}
# What a Nebius `extra_body` may hold: any hyperparameter, by its wire name.
_EXTRA_BODY_KEYS = ("n_epochs", "batch_size", "learning_rate_multiplier", *_PASSTHROUGH, "lora", *_LORA, "quantization")


def _hyperparameters(hp: SupervisedHyperparameters | None, where: str) -> tuple[Hyperparameters, AdapterSpec]:
    if hp is None:
        return Hyperparameters(), AdapterSpec()
    values: dict[str, Any] = {
        k: v
        for k, v in (
            ("n_epochs", hp.n_epochs),
            ("batch_size", hp.batch_size),
            ("learning_rate_multiplier", hp.learning_rate_multiplier),
        )
        if v is not None
    }
    lora: dict[str, Any] = {}
    kind = "auto"
    quantization = None
    for key, value in (hp.model_extra or {}).items():
        if key in _PASSTHROUGH:
            values[key] = value
        elif key in _LORA:
            lora[_LORA[key]] = value
        elif key == "lora":
            if not isinstance(value, bool):
                raise InvalidRequest(f"{where}.lora must be true or false.", param=f"{where}.lora")
            kind = "lora" if value else "full"
        elif key == "quantization":
            # A polytune extension: "nf4" trains a QLoRA (LoRA on a 4-bit base).
            if value not in ("nf4", None):
                raise InvalidRequest(
                    f'{where}.quantization must be "nf4" (QLoRA) or null.',
                    param=f"{where}.quantization",
                    code="invalid_value",
                )
            quantization = value
        elif key in ("beta", "loss_type"):
            raise InvalidRequest(f"{where}.{key} applies to method 'dpo' only.", param=f"{where}.{key}")
        else:
            raise InvalidRequest(f"Unknown hyperparameter '{key}'.", param=f"{where}.{key}", code="unknown_parameter")
    if (lora or quantization) and kind == "auto":
        kind = "lora"
    try:
        # Strict: "8" is not 8 and "yes" not true (Nebius's document types each; a lax parse
        # would train on a value the user never wrote).
        return (
            Hyperparameters.model_validate(values, strict=True),
            AdapterSpec(kind=kind, lora=LoraSpec.model_validate(lora, strict=True), quantization=quantization),
        )
    except ValidationError as e:
        err = e.errors()[0]
        key = next((_LORA_BACK.get(str(p), str(p)) for p in err["loc"] if str(p) in _KNOWN), str(err["loc"][0]))
        raise InvalidRequest(
            f"Invalid value for '{where}.{key}': {err['msg']}.", param=f"{where}.{key}", code="invalid_value"
        ) from None


def hyperparameters_path(req: CreateJobRequest) -> str:
    """Where this request put its hyperparameters, so an error names the field the user sent."""
    m = req.method
    if m and m.type == "supervised" and m.supervised and m.supervised.hyperparameters:
        return "method.supervised.hyperparameters"
    if m and m.type == "dpo" and m.dpo and m.dpo.hyperparameters:
        return "method.dpo.hyperparameters"
    if m and m.type == "reinforcement" and m.reinforcement and m.reinforcement.hyperparameters:
        return "method.reinforcement.hyperparameters"
    return "hyperparameters"


def wire_param(param: str | None, req: CreateJobRequest) -> str | None:
    if param and param.startswith("hyperparameters."):
        return hyperparameters_path(req) + param[len("hyperparameters") :]
    return param


def _with_extra_body(
    hp: SupervisedHyperparameters | None, extra: dict[str, Any], where: str
) -> SupervisedHyperparameters:
    """Nebius's extra_body: its keys join the hyperparameters; a key given twice must agree."""
    given = hp.model_dump(exclude_none=True) if hp else {}
    for key, value in extra.items():
        if key not in _EXTRA_BODY_KEYS:
            raise InvalidRequest(
                f"Unknown key '{key}' in extra_body; it takes hyperparameters: {', '.join(_EXTRA_BODY_KEYS)}.",
                param=f"extra_body.{key}",
                code="unknown_parameter",
            )
        if key in given and given[key] != value:
            raise InvalidRequest(
                f"extra_body.{key} is {value!r} but {where}.{key} is {given[key]!r}.", param=f"extra_body.{key}"
            )
    return (type(hp) if hp else SupervisedHyperparameters).model_validate({**given, **extra})


def _preference(
    hp: SupervisedHyperparameters | None, where: str
) -> tuple[PreferenceSpec, SupervisedHyperparameters | None]:
    """A dpo job's preference settings, and the rest of its hyperparameters: `beta` (OpenAI's)
    and `loss_type` (polytune's addition, SeekrFlow's list in lower case)."""
    if hp is None:
        return PreferenceSpec(), None
    rest = hp.model_dump(exclude_none=True)
    given = {k: rest.pop(k) for k in ("beta", "loss_type") if k in rest}
    try:
        preference = PreferenceSpec(**given)
    except ValidationError as e:
        key = str(e.errors()[0]["loc"][0])
        raise InvalidRequest(
            f"Invalid value for '{where}.{key}': {e.errors()[0]['msg']}.", param=f"{where}.{key}", code="invalid_value"
        ) from None
    return preference, SupervisedHyperparameters.model_validate(rest)


def _tags(tags: list[str] | str | None) -> list[str]:
    return [tags] if isinstance(tags, str) else list(tags or [])


def _method_type(req: CreateJobRequest) -> str:
    m = req.method
    if m is None or m.type is not None:
        return m.type if m else "supervised"
    given = [k for k in ("supervised", "dpo", "reinforcement") if getattr(m, k) is not None]
    if given:  # settings for a method, but which one trains is left unsaid
        raise InvalidRequest(
            f"Missing required parameter: 'method.type' (method.{given[0]} was given).",
            param="method.type",
            code="missing_required_parameter",
        )
    return "supervised"  # TrueFoundry's `method: {}`: supervised with defaults


def _method_hyperparameters(req: CreateJobRequest, where: str) -> dict[str, Any] | None:
    """The hyperparameters under method.<type>, with the top-level (deprecated) ones joined in;
    a key given in both places must agree, so neither silently wins."""
    m = req.method
    own: dict[str, Any] | None = {
        "hyperparameters": None,
        "method.supervised.hyperparameters": m
        and m.supervised
        and m.supervised.hyperparameters
        and m.supervised.hyperparameters.model_dump(exclude_none=True),
        "method.dpo.hyperparameters": m
        and m.dpo
        and m.dpo.hyperparameters
        and m.dpo.hyperparameters.model_dump(exclude_none=True),
        "method.reinforcement.hyperparameters": m and m.reinforcement and m.reinforcement.hyperparameters,
    }[where] or None
    top = req.hyperparameters.model_dump(exclude_none=True) if req.hyperparameters else None
    if own is None or top is None:
        return own if own is not None else top
    for key in sorted(set(own) & set(top)):
        if own[key] != top[key]:
            raise InvalidRequest(
                f"hyperparameters.{key} is {top[key]!r} but {where}.{key} is {own[key]!r}; "
                f"send it once (under {where}).",
                param=f"hyperparameters.{key}",
                code="conflicting_parameters",
            )
    return {**top, **own}


def _integrations(req: CreateJobRequest) -> tuple[list[Integration], dict[str, str]]:
    secrets: dict[str, str] = {}
    integrations: list[Integration] = []
    for i, integ in enumerate(req.integrations or []):
        if integ.type is None and integ.wandb is None:
            continue  # TrueFoundry's document shows `integrations: [{}]`: nothing to enable
        if integ.type is None or integ.wandb is None:
            missing = "type" if integ.type is None else "wandb"
            raise InvalidRequest(
                f"Missing required parameter: 'integrations[{i}].{missing}'.",
                param=f"integrations[{i}].{missing}",
                code="missing_required_parameter",
            )
        if integ.wandb.api_key:
            secrets[wandb_key_secret(len(integrations))] = integ.wandb.api_key
        integrations.append(
            Integration(
                type="wandb",
                wandb=WandbIntegration(
                    project=integ.wandb.project,
                    name=integ.wandb.name,
                    entity=integ.wandb.entity,
                    tags=integ.wandb.tags or [],
                ),
            )
        )
    return integrations, secrets


def to_spec(req: CreateJobRequest) -> tuple[JobSpec, dict[str, str]]:
    """The canonical spec, and the secrets that travel apart from it (never rendered)."""
    method = _method_type(req)
    if method not in METHODS or method in IMAGE_METHODS:  # image fine-tuning speaks Oxen's API
        known = [m for m in METHODS if m not in IMAGE_METHODS]
        raise InvalidRequest(f"Unknown method type '{method}'; expected one of {known}.", param="method.type")
    where = hyperparameters_path(req)
    merged = _method_hyperparameters(req, where)
    reward, eval_interval = None, None
    if method == "reinforcement":
        hp_source, reward, eval_interval = _reinforcement(req, where, merged or {})
    else:
        hp_type = DpoHyperparameters if method == "dpo" else SupervisedHyperparameters
        hp_source = hp_type.model_validate(merged) if merged is not None else None
    if req.extra_body:
        hp_source = _with_extra_body(hp_source or None, req.extra_body, where)
    preference = None
    if method == "dpo":
        preference, hp_source = _preference(hp_source or None, where)
    hyper, adapter = _hyperparameters(hp_source or None, where)
    if eval_interval is not None:
        hyper = hyper.model_copy(update={"eval_interval": eval_interval})
    integrations, secrets = _integrations(req)
    spec = JobSpec(
        model=req.model,
        method=method,
        training_files=[req.training_file],
        validation_file=req.validation_file or None,
        hyperparameters=hyper,
        adapter=adapter,
        preference=preference,
        integrations=integrations,
        output=OutputSpec(suffix=req.suffix),
        seed=req.seed,
        metadata=req.metadata or {},
        tags=_tags(req.tags),
        reward=reward,
    )
    return spec, secrets


# Reinforcement hyperparameters that belong to the reward (the rest are the usual ones).
_REWARD_HP = ("compute_multiplier", "eval_samples", "reasoning_effort", "max_completion_tokens", "eval_interval")
REASONING_EFFORTS = ("default", "low", "medium", "high")


def _reinforcement(
    req: CreateJobRequest, where: str, given: dict[str, Any]
) -> tuple[SupervisedHyperparameters, RewardSpec, int | None]:
    """method.reinforcement: the grader (checked by the router with the server's grader
    settings) and the hyperparameters, split into the usual ones and the reward's."""
    rl = req.method.reinforcement if req.method else None
    if rl is None or rl.grader is None:
        raise InvalidRequest(
            "Missing required parameter: 'method.reinforcement.grader'.",
            param="method.reinforcement.grader",
            code="missing_required_parameter",
        )
    given = dict(given)
    own = {k: given.pop(k) for k in _REWARD_HP if k in given}

    def number(key: str, integer: bool) -> Any:
        value = own.get(key, "auto")
        ok = value == "auto" or (
            not isinstance(value, bool) and isinstance(value, int if integer else (int, float)) and value > 0
        )
        if not ok:
            raise InvalidRequest(
                f"{where}.{key} must be {'an integer' if integer else 'a number'} above 0 or 'auto', got {value!r}.",
                param=f"{where}.{key}",
                code="invalid_value",
            )
        return value

    effort = own.get("reasoning_effort", "default")
    if effort not in REASONING_EFFORTS:
        raise InvalidRequest(
            f"{where}.reasoning_effort must be one of {list(REASONING_EFFORTS)}, got {effort!r}.",
            param=f"{where}.reasoning_effort",
            code="invalid_value",
        )
    interval = number("eval_interval", True)
    tokens = number("max_completion_tokens", True)
    reward = RewardSpec(
        graders=[rl.grader],
        compute_multiplier=number("compute_multiplier", False),
        eval_samples=number("eval_samples", True),
        reasoning_effort=effort,
        max_completion_tokens=None if tokens == "auto" else tokens,
    )
    return SupervisedHyperparameters.model_validate(given), reward, None if interval == "auto" else interval
