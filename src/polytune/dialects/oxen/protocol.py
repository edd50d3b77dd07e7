"""Oxen.ai wire models: what the `oxenai` client and Oxen's fine-tune HTTP API send.
Responses are rendered in translate.py."""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

# Reported in envelopes as Oxen's server does; the version of the client we were built against.
OXEN_VERSION = "0.65.1"

Number = Union[StrictFloat, StrictInt]


class Lenient(BaseModel):
    # The client sends fields that change between its versions (host, scheme, repo_uuid, ...).
    model_config = ConfigDict(extra="ignore")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedUser(Lenient):
    name: str = "unknown"
    email: str = ""


class SeedFile(Lenient):
    path: str
    contents: str = ""
    user: SeedUser | None = None


class CreateRepoRequest(Lenient):
    namespace: str
    name: str
    description: str | None = ""
    is_public: bool | None = False
    files: list[SeedFile] | None = None


class SampleRequest(Strict):
    """One of Oxen's `samples` objects: a prompt to sample while training (and its seed)."""

    prompt: str
    seed: StrictInt | None = None


class TrainingParams(BaseModel):
    """Oxen's training_params for every script type. The document marks the object
    `additionalProperties: true`: an unknown key is accepted, ignored, and listed in a warning
    event of the job (`ignored_params`)."""

    model_config = ConfigDict(extra="allow")

    # text: which table columns hold the prompt and the reply
    question_column: str | None = None
    answer_column: str | None = None
    epochs: StrictInt | None = None
    steps: StrictInt | None = None
    batch_size: StrictInt | None = None
    learning_rate: Number | None = None
    grad_accum: StrictInt | None = None
    gradient_accumulation: StrictInt | None = None  # the API reference's name for grad_accum
    seq_length: StrictInt | None = None
    use_lora: StrictBool | None = None
    # A polytune extension: "nf4" trains a QLoRA (LoRA on a 4-bit base).
    quantization: Literal["nf4"] | None = None
    lora_rank: StrictInt | None = None
    lora_alpha: StrictInt | None = None
    # Accepted and echoed: polytune logs every step and has no "thinking" templates to switch.
    logging_steps: StrictInt | None = None
    enable_thinking: StrictBool | None = None
    neftune_noise_alpha: Number | None = None
    # image generation. `samples` is a count (the API reference) or a list of prompt objects
    # (the image_generation schema page); both are accepted.
    image_column: str | None = None
    caption_column: str | None = None
    timestep_type: str | None = None
    samples: StrictInt | list[SampleRequest] | None = None
    sample_every: StrictInt | None = None
    # polytune's extension (an eval run when the job succeeds, docs/evals.md): declared so that it
    # is read, not ignored with a warning; checked by the eval service.
    polytune_eval: dict[str, Any] | None = None


class CreateFineTuneRequest(Strict):
    resource: str
    base_model: str
    script_type: str
    training_params: TrainingParams = Field(default_factory=TrainingParams)
    is_public: StrictBool = False
    oxen_model_path: str | None = None


def ignored_params(params: TrainingParams) -> list[str]:
    """The unknown keys of training_params, sorted."""
    return sorted(params.model_extra or {})


def set_params(params: TrainingParams, names: set[str]) -> list[str]:
    """Which of `names` the request set, sorted."""
    return sorted(k for k in names if getattr(params, k) is not None)


IMAGE_PARAMS = {"image_column", "caption_column", "timestep_type", "samples", "sample_every"}
# Parameters only text_generation reads.
TEXT_PARAMS = {
    "question_column",
    "answer_column",
    "epochs",
    "seq_length",
    "logging_steps",
    "enable_thinking",
    "neftune_noise_alpha",
    "quantization",
}
