"""Oxen wire -> domain: a fine-tune request becomes a JobSpec (plus the table's columns and
resource), an Oxen status filter the canonical statuses. (Responses: render.py.)"""

from __future__ import annotations

from typing import Any

from polytune.domain.errors import InvalidRequest
from polytune.domain.job import JobStatus
from polytune.domain.spec import AdapterSpec, Hyperparameters, ImageSpec, JobSpec, LoraSpec, OutputSpec
from polytune.services.repo_jobs import ImageColumns, TableColumns
from polytune.services.repos import clean_path

from .protocol import IMAGE_PARAMS, TEXT_PARAMS, CreateFineTuneRequest, TrainingParams, ignored_params, set_params

TEXT_SCRIPTS = ("text_generation",)
IMAGE_SCRIPTS = ("image_generation",)
TIMESTEP_TYPES = ("linear", "sigmoid", "weighted")
DEFAULT_COLUMNS = TableColumns(question="question", answer="answer")
DEFAULT_IMAGE_COLUMNS = ImageColumns(image="image", caption="caption")
# Oxen's documented image_generation defaults (its reference page); samples: two, from the
# job's own captions, as Oxen's default list has two prompts.
IMAGE_DEFAULTS = dict(
    steps=2000,
    batch_size=1,
    learning_rate=2e-4,
    gradient_accumulation=1,
    lora_rank=16,
    lora_alpha=16,
    sample_every=200,
    samples=2,
    timestep_type="sigmoid",
)

# The lifecycle in Oxen's words (its list filter takes these too). Oxen has no pause, so a
# paused job is "stopped" like a cancelled one; "deployed" names no polytune state.
STATUS = {
    JobStatus.CREATED: "created",
    JobStatus.VALIDATING_FILES: "tokenizing",
    JobStatus.QUEUED: "enqueued",
    JobStatus.RUNNING: "running",
    JobStatus.PAUSING: "running",
    JobStatus.PAUSED: "stopped",
    JobStatus.SUCCEEDED: "completed",
    JobStatus.FAILED: "errored",
    JobStatus.CANCELLED: "stopped",
}
OXEN_STATUSES = ("created", "tokenizing", "enqueued", "running", "completed", "stopped", "errored", "deployed")

# Canonical param names -> the Oxen field the user sent, so a 400 names what they wrote.
_WIRE_PARAM = {
    "model": "base_model",
    "training_file": "resource",
    "hyperparameters.n_epochs": "training_params.epochs",
    "hyperparameters.max_steps": "training_params.steps",
    "hyperparameters.batch_size": "training_params.batch_size",
    "hyperparameters.learning_rate": "training_params.learning_rate",
    "hyperparameters.gradient_accumulation_steps": "training_params.grad_accum",
    "hyperparameters.context_length": "training_params.seq_length",
    "hyperparameters.lora": "training_params.use_lora",
    "hyperparameters.quantization": "training_params.quantization",
    "hyperparameters.lora_r": "training_params.lora_rank",
    "hyperparameters.lora_alpha": "training_params.lora_alpha",
    "image.sample_every": "training_params.sample_every",
    "image.samples": "training_params.samples",
}


def to_wire(e: InvalidRequest, req: CreateFineTuneRequest) -> InvalidRequest:
    """The same error, naming the Oxen field (in `param` and in the message) for a canonical one:
    gradient accumulation by the name the request used (the document's gradient_accumulation,
    or the client's grad_accum)."""
    wire = _WIRE_PARAM.get(e.param or "")
    p = req.training_params
    if wire == "training_params.grad_accum" and p.grad_accum is None and p.gradient_accumulation is not None:
        wire = "training_params.gradient_accumulation"
    if wire:
        if e.param.startswith("hyperparameters."):
            e.message = e.message.replace(e.param, wire)
        e.param = wire
    return e


def statuses(word: str | None) -> list[JobStatus] | None:
    """The canonical statuses an Oxen status filter means (None: no filter)."""
    if not word:
        return None
    if word not in OXEN_STATUSES:
        raise InvalidRequest(f"Unknown status '{word}'; expected one of {', '.join(OXEN_STATUSES)}.", param="status")
    return [s for s, w in STATUS.items() if w == word]


# -- request ------------------------------------------------------------------------------------
def _check_image_params(p: TrainingParams) -> None:
    if p.timestep_type is not None and p.timestep_type not in TIMESTEP_TYPES:
        raise InvalidRequest(
            f"training_params.timestep_type must be one of {', '.join(TIMESTEP_TYPES)}, got '{p.timestep_type}'.",
            param="training_params.timestep_type",
        )
    if isinstance(p.samples, list):
        for i, sample in enumerate(p.samples):
            if not sample.prompt.strip():
                raise InvalidRequest(
                    f"training_params.samples[{i}].prompt must not be empty.",
                    param=f"training_params.samples[{i}].prompt",
                )
    for key, least in (("samples", 0), ("sample_every", 1)):
        value = getattr(p, key)
        if isinstance(value, int) and value < least:
            raise InvalidRequest(
                f"training_params.{key} must be at least {least}, got {value}.", param=f"training_params.{key}"
            )
    for key in ("image_column", "caption_column"):
        if getattr(p, key) is not None and not getattr(p, key).strip():
            raise InvalidRequest(f"training_params.{key} must not be empty.", param=f"training_params.{key}")


def _column(value: str | None, default: str, key: str) -> str:
    if value is None:
        return default
    if not value.strip():
        raise InvalidRequest(f"training_params.{key} must name a column.", param=f"training_params.{key}")
    return value


def _known(p: TrainingParams) -> dict[str, Any]:
    """The training_params the request set, without the unknown ones (which are ignored)."""
    return {k: v for k, v in p.model_dump(exclude_none=True).items() if k in TrainingParams.model_fields}


def warnings(req: CreateFineTuneRequest) -> list[str]:
    """The job's warning events about its request: the training_params it ignored."""
    ignored = ignored_params(req.training_params)
    return (
        [
            f"Ignored unknown training_params (Oxen's schema allows any key; polytune has no use for "
            f"them): {', '.join(ignored)}"
        ]
        if ignored
        else []
    )


def to_spec(req: CreateFineTuneRequest, repo_name: str) -> tuple[JobSpec, TableColumns | ImageColumns]:
    """The canonical spec (its training file is still the resource) and the table's columns."""
    p = req.training_params
    _check_image_params(p)
    scripts = TEXT_SCRIPTS + IMAGE_SCRIPTS
    if req.script_type not in scripts:
        raise InvalidRequest(
            f"Unknown script_type '{req.script_type}'; supported: {', '.join(scripts)}.", param="script_type"
        )
    model_path = clean_path(req.oxen_model_path, "oxen_model_path") if req.oxen_model_path is not None else None
    output = OutputSpec(suffix=repo_name[:64], model_path=model_path, public=req.is_public)
    if req.script_type in IMAGE_SCRIPTS:
        return _image_spec(req, output)
    if images := set_params(p, IMAGE_PARAMS):
        raise InvalidRequest(
            f"training_params.{images[0]} is an image_generation parameter, but script_type is '{req.script_type}'.",
            param=f"training_params.{images[0]}",
        )
    if p.neftune_noise_alpha is not None:
        raise InvalidRequest(
            "training_params.neftune_noise_alpha is not supported yet.",
            param="training_params.neftune_noise_alpha",
            code="not_supported_yet",
        )
    if p.grad_accum is not None and p.gradient_accumulation is not None and p.grad_accum != p.gradient_accumulation:
        raise InvalidRequest(
            "training_params.grad_accum and gradient_accumulation disagree; send one.",
            param="training_params.grad_accum",
        )
    columns = TableColumns(
        question=_column(p.question_column, DEFAULT_COLUMNS.question, "question_column"),
        answer=_column(p.answer_column, DEFAULT_COLUMNS.answer, "answer_column"),
    )
    hyper = Hyperparameters(
        n_epochs=p.epochs if p.epochs is not None else "auto",
        max_steps=p.steps,
        batch_size=p.batch_size if p.batch_size is not None else "auto",
        learning_rate=p.learning_rate,
        gradient_accumulation_steps=p.grad_accum if p.grad_accum is not None else p.gradient_accumulation,
        context_length=p.seq_length,
    )
    lora = {k: v for k, v in (("r", p.lora_rank), ("alpha", p.lora_alpha)) if v is not None}
    # Oxen's documented default is LoRA.
    adapter = AdapterSpec(
        kind="full" if p.use_lora is False else "lora", lora=LoraSpec(**lora), quantization=p.quantization
    )
    model_path = clean_path(req.oxen_model_path, "oxen_model_path") if req.oxen_model_path is not None else None
    spec = JobSpec(
        model=req.base_model,
        method="supervised",
        training_files=[req.resource],
        hyperparameters=hyper,
        adapter=adapter,
        output=output,
        extras={
            "script_type": req.script_type,
            "training_params": _known(p),
            "columns": {"question_column": columns.question, "answer_column": columns.answer},
        },
    )
    return spec, columns


def _image_spec(req: CreateFineTuneRequest, output: OutputSpec) -> tuple[JobSpec, ImageColumns]:
    p = req.training_params
    if texts := set_params(p, TEXT_PARAMS):
        raise InvalidRequest(
            f"training_params.{texts[0]} is a text_generation parameter, but script_type is '{req.script_type}'.",
            param=f"training_params.{texts[0]}",
        )
    if p.grad_accum is not None and p.gradient_accumulation is not None and p.grad_accum != p.gradient_accumulation:
        raise InvalidRequest(
            "training_params.grad_accum and gradient_accumulation disagree; send one.",
            param="training_params.gradient_accumulation",
        )
    d = IMAGE_DEFAULTS
    columns = ImageColumns(
        image=_column(p.image_column, DEFAULT_IMAGE_COLUMNS.image, "image_column"),
        caption=_column(p.caption_column, DEFAULT_IMAGE_COLUMNS.caption, "caption_column"),
    )
    accumulation = p.gradient_accumulation if p.gradient_accumulation is not None else p.grad_accum
    hyper = Hyperparameters(
        max_steps=p.steps if p.steps is not None else d["steps"],
        batch_size=p.batch_size if p.batch_size is not None else d["batch_size"],
        learning_rate=p.learning_rate if p.learning_rate is not None else d["learning_rate"],
        gradient_accumulation_steps=accumulation if accumulation is not None else d["gradient_accumulation"],
        lr_scheduler="constant",
    )
    lora = LoraSpec(
        r=p.lora_rank if p.lora_rank is not None else d["lora_rank"],
        alpha=p.lora_alpha if p.lora_alpha is not None else d["lora_alpha"],
    )
    adapter = AdapterSpec(kind="full" if p.use_lora is False else "lora", lora=lora)
    if isinstance(p.samples, list):
        image = ImageSpec(
            samples=len(p.samples),
            sample_prompts=[s.prompt for s in p.samples],
            sample_seeds=[s.seed for s in p.samples],
            sample_every=p.sample_every or d["sample_every"],
            timestep_type=p.timestep_type or d["timestep_type"],
        )
    else:
        image = ImageSpec(
            samples=p.samples if p.samples is not None else d["samples"],
            sample_every=p.sample_every or d["sample_every"],
            timestep_type=p.timestep_type or d["timestep_type"],
        )
    spec = JobSpec(
        model=req.base_model,
        method="image_generation",
        training_files=[req.resource],
        hyperparameters=hyper,
        adapter=adapter,
        image=image,
        output=output,
        extras={
            "script_type": req.script_type,
            "training_params": _known(p),
            "columns": {"image_column": columns.image, "caption_column": columns.caption},
        },
    )
    return spec, columns
