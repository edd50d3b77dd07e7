"""OpenAI wire models: what the `openai` SDK sends. Responses are rendered in translate.py."""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

Auto = Literal["auto"]
IntOrAuto = Union[StrictInt, Auto]
NumOrAuto = Union[StrictFloat, StrictInt, Auto]


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SupervisedHyperparameters(BaseModel):
    # Unknown keys pass through: the SDK forwards them unchanged and Nebius relies on that;
    # translate.py decides which extras it knows.
    model_config = ConfigDict(extra="allow")
    n_epochs: IntOrAuto | None = None
    batch_size: IntOrAuto | None = None
    learning_rate_multiplier: NumOrAuto | None = None


class DpoHyperparameters(SupervisedHyperparameters):
    beta: NumOrAuto | None = None


class SupervisedMethod(Wire):
    hyperparameters: SupervisedHyperparameters | None = None


class DpoMethod(Wire):
    hyperparameters: DpoHyperparameters | None = None


class ReinforcementMethod(Wire):
    # Only these two keys: a hyperparameter misplaced beside them is a 400 naming it, not a
    # silently ignored setting.
    grader: dict[str, Any] | None = None
    hyperparameters: dict[str, Any] | None = None


class MethodIn(Wire):
    # TrueFoundry's document shows `method: {}`: no type means supervised with defaults.
    type: str | None = None
    supervised: SupervisedMethod | None = None
    dpo: DpoMethod | None = None
    reinforcement: ReinforcementMethod | None = None


class WandbIn(Wire):
    project: str
    name: str | None = None
    entity: str | None = None
    tags: list[str] | None = None
    api_key: str | None = None  # Nebius sends it; a secret, stored apart and never echoed


class IntegrationIn(Wire):
    # Both optional only so that TrueFoundry's `integrations: [{}]` (its document's example)
    # parses; an empty object is ignored, a half-filled one is refused in translate.py.
    type: Literal["wandb"] | None = None
    wandb: WandbIn | None = None


class CreateJobRequest(Wire):
    model: str
    training_file: str
    validation_file: str | None = None
    hyperparameters: SupervisedHyperparameters | None = None
    method: MethodIn | None = None
    suffix: str | None = None
    seed: StrictInt | None = None
    metadata: dict[str, str] | None = None
    integrations: list[IntegrationIn] | None = None
    # Nebius: tags (its docs show both a list and a single string) and extra_body, whose keys
    # are hyperparameters like the ones under `hyperparameters`.
    tags: list[str] | str | None = None
    extra_body: dict[str, Any] | None = None
    # polytune's extension: an eval to run on the fine-tuned model once the job succeeds,
    # {"eval_id", "data_source": a completions data source without its model} (docs/evals.md).
    polytune_eval: dict[str, Any] | None = None


class CreateUploadRequest(Wire):
    bytes: StrictInt
    filename: str
    mime_type: str
    purpose: str
    expires_after: dict[str, Any] | None = None


class CompleteUploadRequest(Wire):
    part_ids: list[str] = Field(default_factory=list)
    md5: str | None = None


class GraderRunRequest(Wire):
    grader: Any
    model_sample: str
    item: Any = None


class GraderValidateRequest(Wire):
    grader: Any
