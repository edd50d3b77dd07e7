"""SeekrFlow wire models: what the `seekrai` SDK sends, as the seed's OpenAPI schema describes it.

FastAPI validates bodies against these, so a bad body is a 422 with Seekr's (FastAPI's)
HTTPValidationError shape, `detail: [{loc, msg, type}]`, before anything is created.
Unknown keys are refused, so a misspelt field is an error, not a default — except in the four
objects the document marks `additionalProperties: true` (TrainingConfig, InfrastructureConfig,
LoRAConfig and its `extras`, RewardComponents): there they are accepted, ignored, and named in
a warning event of the job (`ignored_keys`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from polytune.dialects.common.params import MAX_ID

AccelType = Literal["GAUDI2", "GAUDI3", "A100", "A10", "H100", "MI300X"]
FineTuneType = Literal["STANDARD", "PREFERENCE", "GRPO", "REINFORCEMENT"]
Weight = Annotated[float, Field(gt=0, le=1)]
# LoRA `extras` keys with a canonical home; any other key is ignored with a warning.
LORA_EXTRAS = ("target_modules", "quantization")


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """An object of `additionalProperties: true`: unknown keys kept aside (model_extra)."""

    model_config = ConfigDict(extra="allow")


class LoraConfigIn(Open):
    r: int = Field(8, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.1, ge=0, le=1)
    bias: Literal["none", "all", "lora_only"] = "none"
    extras: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_extras(self) -> LoraConfigIn:
        modules = self.extras.get("target_modules")
        if (
            modules is not None
            and modules != "all-linear"
            and not (isinstance(modules, list) and modules and all(isinstance(m, str) for m in modules))
        ):
            raise ValueError("lora_config.extras.target_modules must be 'all-linear' or a list of module names")
        return self


class _Grader(Wire):
    weight: Weight | None = None


class FormatCheckGrader(_Grader):
    type: Literal["format_check"]


class MathAccuracyGrader(_Grader):
    type: Literal["math_accuracy"]


class StringCheckGrader(_Grader):
    type: Literal["string_check"]
    operation: Literal["equals", "not_equals", "contains", "case_insensitive_contains"]


class TextSimilarityGrader(_Grader):
    type: Literal["text_similarity"]
    operation: Literal["bleu", "rouge"]


class LlmGrader(_Grader):
    type: Literal["llm"]
    seed: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, ge=0, le=1)
    temperature: float = Field(0.0, ge=0, le=1.5)
    max_completion_tokens: int = Field(512, ge=1)


Grader = Annotated[
    Union[FormatCheckGrader, MathAccuracyGrader, StringCheckGrader, TextSimilarityGrader, LlmGrader],
    Field(discriminator="type"),
]


class RewardComponentsIn(Open):
    # Below 1, where the document allows 1: every grader's weight must stay above 0 (the
    # SDK's rules below), and 1 would leave them nothing.
    format_reward_weight: float = Field(0.1, gt=0, lt=1)
    graders: list[Grader] = Field(min_length=1)

    @model_validator(mode="after")
    def _weights(self) -> RewardComponentsIn:
        """The seekrai SDK's weight rules (its RewardComponents), so that the job's echo of
        them is what the SDK itself would have sent and parses back: weights on all graders
        or on none; all given with format_reward_weight must sum to 1; otherwise the graders'
        weights are scaled (none given: shared equally) to fill 1 - format_reward_weight."""
        given = [g.weight for g in self.graders if g.weight is not None]
        if given and len(given) != len(self.graders):
            raise ValueError("either every grader has a weight or none has")
        rest = 1.0 - self.format_reward_weight
        if given and "format_reward_weight" in self.model_fields_set:
            if abs(sum(given) + self.format_reward_weight - 1.0) > 1e-9:
                raise ValueError(
                    f"format_reward_weight and the graders' weights must sum to 1, got "
                    f"{self.format_reward_weight} + {' + '.join(map(str, given))}"
                )
            return self
        weights = given or [1.0] * len(self.graders)
        for g, w in zip(self.graders, weights):
            g.weight = w * rest / sum(weights)
        return self


class TrainingConfigIn(Open):
    training_files: list[str] = Field(min_length=1)
    model: str
    n_epochs: int = Field(gt=0)
    # The schema lists these two as required; the SDK leaves them out when the user does,
    # and then polytune picks them ("auto").
    learning_rate: float | None = Field(None, gt=0)
    batch_size: int | None = Field(None, ge=1, le=1024)
    n_checkpoints: int | None = Field(None, ge=0)
    experiment_name: str | None = None
    # Left out: the document's default, 2500, bounded by the model's context (translate.py).
    max_length: int | None = Field(None, gt=0)
    pre_train: bool = False
    fine_tune_type: FineTuneType = "STANDARD"
    lora_config: LoraConfigIn | None = None
    validation_files: list[str] | None = Field(None, max_length=1)  # at most one: polytune evaluates on one
    reward_components: RewardComponentsIn | None = None
    beta: float | None = Field(None, gt=0)
    loss_type: Literal["SIGMOID", "HINGE", "IPO", "KTO_PAIR"] | None = None
    gradient_checkpointing: bool | None = None
    # polytune's extension (an eval run when the job succeeds, docs/evals.md): a key of this open
    # object, declared so that it is read, not ignored with a warning. Checked by the eval service.
    polytune_eval: dict[str, Any] | None = None

    # Field validators (fine_tune_type is validated before these fields), so a refusal's
    # `loc` names the field sent, not the whole training_config.
    @field_validator("reward_components")
    @classmethod
    def _reinforcement_only(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("fine_tune_type", "STANDARD")
        if value is not None and kind not in ("GRPO", "REINFORCEMENT"):
            raise ValueError(f"reward_components apply to REINFORCEMENT fine-tuning, not {kind}")
        return value

    @field_validator("beta", "loss_type")
    @classmethod
    def _preference_only(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("fine_tune_type", "STANDARD")
        if value is not None and kind != "PREFERENCE":
            raise ValueError(f"{info.field_name} applies to PREFERENCE fine-tuning, not {kind}")
        return value


class InfrastructureConfigIn(Open):
    accel_type: AccelType
    n_accel: int = Field(ge=1)
    n_node: int = Field(1, ge=1)


class FinetuneRequestIn(Wire):
    project_id: int | None = Field(None, ge=1, le=MAX_ID)
    description: str | None = None
    training_config: TrainingConfigIn
    infrastructure_config: InfrastructureConfigIn


def ignored_keys(req: FinetuneRequestIn) -> list[str]:
    """The unknown keys of the request's open objects, by their path in the body."""
    tc = req.training_config
    objects = [
        ("training_config", tc),
        ("infrastructure_config", req.infrastructure_config),
        ("training_config.lora_config", tc.lora_config),
        ("training_config.reward_components", tc.reward_components),
    ]
    found = [f"{where}.{key}" for where, obj in objects if obj is not None for key in (obj.model_extra or {})]
    if tc.lora_config is not None:
        found += [f"training_config.lora_config.extras.{k}" for k in tc.lora_config.extras if k not in LORA_EXTRAS]
    return found


class ProjectIn(Wire):
    id: int | None = None  # the SDK sends null
    name: str = Field(min_length=5, max_length=100)
    description: str = Field(min_length=5, max_length=1000)


class RenameIn(Wire):
    new_filename: str = Field(min_length=1, max_length=512)


class ValidateMetadataIn(Wire):
    purpose: str
    suffix: str
    size: int = Field(ge=0)
