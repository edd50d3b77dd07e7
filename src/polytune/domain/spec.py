"""The canonical job: every dialect translates its request into one `JobSpec`.

Values a user left to the service are the string "auto"; `resolve_auto` (in
services/hyperparameters.py) replaces them once, when the job is queued, and the resolved
spec is what the job reports afterwards.

`JobSpec.method` is a union discriminated by `type`: each method carries its own options (a
dpo job its preference settings, a reinforcement job its reward, an image job its image
settings), so a spec that lacks them, or has another method's, is refused when it is made.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import InvalidRequest

Auto = Literal["auto"]
# "primitives": a training run driven call by call (the Tinker API, services/primitive_runs.py);
# never created through a job API, so it is in neither tuple below.
Method = Literal["supervised", "dpo", "reinforcement", "image_generation", "primitives"]
METHODS: tuple[str, ...] = ("supervised", "dpo", "reinforcement", "image_generation")
# Methods whose recipe exists; the others answer a clear 400 until their recipe lands.
TRAINABLE_METHODS: tuple[str, ...] = ("supervised", "dpo", "reinforcement", "image_generation")
# DPO loss types (SeekrFlow's list); docs/methods.md gives each one's formula.
PREFERENCE_LOSS_TYPES: tuple[str, ...] = ("sigmoid", "hinge", "ipo", "kto_pair")
# Methods that train an image model (the catalog entry's kind must match).
IMAGE_METHODS: tuple[str, ...] = ("image_generation",)


class _Frozenish(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Hyperparameters(_Frozenish):
    n_epochs: Union[int, Auto] = "auto"
    # A total number of optimizer steps; when set it decides the length of training, and
    # n_epochs is resolved to the epochs those steps span.
    max_steps: int | None = None
    batch_size: Union[int, Auto] = "auto"
    # learning_rate (absolute) wins over learning_rate_multiplier when both are given;
    # the multiplier scales the catalog entry's base learning rate.
    learning_rate_multiplier: Union[float, Auto] = "auto"
    learning_rate: float | None = None
    lr_scheduler: Literal["constant", "linear", "cosine"] | None = None
    warmup_ratio: float | None = None
    weight_decay: float | None = None
    max_grad_norm: float | None = None
    gradient_accumulation_steps: int | None = None
    context_length: int | None = None
    # What happens to an example longer than context_length (or the model's maximum):
    # "drop" it (the default) or "truncate" it to its first context_length tokens. Either way
    # the job's events say how many and which lines.
    long_examples: Literal["drop", "truncate"] = "drop"
    packing: bool | None = None
    gradient_checkpointing: bool | None = None
    n_checkpoints: int = 3
    eval_interval: int | None = None


class LoraSpec(_Frozenish):
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    bias: Literal["none", "all", "lora_only"] = "none"
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class AdapterSpec(_Frozenish):
    # "auto": the catalog entry's default for this base model.
    kind: Literal["auto", "full", "lora"] = "auto"
    lora: LoraSpec = Field(default_factory=LoraSpec)
    # QLoRA: "nf4" trains the LoRA on a base quantised to 4-bit NF4 (bitsandbytes), which needs CUDA.
    quantization: Literal["nf4"] | None = None


class PreferenceSpec(_Frozenish):
    beta: Union[float, Auto] = "auto"
    loss_type: str = "sigmoid"


class RewardSpec(_Frozenish):
    graders: list[dict[str, Any]] = Field(default_factory=list)
    format_reward_weight: float = 0.0
    compute_multiplier: Union[float, Auto] = "auto"
    eval_samples: Union[int, Auto] = "auto"
    reasoning_effort: str = "default"
    # Tokens a sampled completion may use; unset: decided by reasoning_effort (recipes/grpo.py).
    max_completion_tokens: int | None = None


class ImageSpec(_Frozenish):
    """What an image-generation job adds: how timesteps are sampled, and the samples it
    generates while it trains (see docs/images.md)."""

    timestep_type: Literal["linear", "sigmoid", "weighted"] = "sigmoid"
    # Every sample_every optimizer steps, `samples` images: one per prompt of sample_prompts
    # when given (then samples == len(sample_prompts)), else from the job's own captions.
    sample_every: int = 200
    samples: int = 2
    sample_prompts: list[str] = Field(default_factory=list)
    # A fixed seed per sample (None: derived from the job's seed), so the images of one prompt
    # at successive steps differ only by what the model learned.
    sample_seeds: list[int | None] = Field(default_factory=list)
    # Denoising steps per sample; None: the catalog entry's default.
    sample_steps: int | None = None
    # Training and sampling resolution (pixels per side); None: the model's native resolution.
    resolution: int | None = None


class SupervisedMethod(_Frozenish):
    type: Literal["supervised"] = "supervised"


class DpoMethod(_Frozenish):
    type: Literal["dpo"] = "dpo"
    preference: PreferenceSpec = Field(default_factory=PreferenceSpec)


class ReinforcementMethod(_Frozenish):
    type: Literal["reinforcement"] = "reinforcement"
    reward: RewardSpec

    @model_validator(mode="after")
    def _has_grader(self) -> ReinforcementMethod:
        if not self.reward.graders:
            raise InvalidRequest("A reinforcement job needs a grader.", param="method.reinforcement.grader")
        return self


class ImageGenerationMethod(_Frozenish):
    type: Literal["image_generation"] = "image_generation"
    image: ImageSpec


class PrimitivesMethod(_Frozenish):
    """A Tinker API training run: its data and loss come call by call, so it has no options here."""

    type: Literal["primitives"] = "primitives"


MethodSpec = Annotated[
    Union[SupervisedMethod, DpoMethod, ReinforcementMethod, ImageGenerationMethod, PrimitivesMethod],
    Field(discriminator="type"),
]
# Each method's own options, by the name the flat form (a method name with the block beside it,
# as specs were stored before the union) gives them.
_OPTIONS = {"dpo": "preference", "reinforcement": "reward", "image_generation": "image"}


def method_type(spec: dict[str, Any]) -> str:
    """The method of a spec as stored (a JSON column read without building a JobSpec), in either form."""
    method = spec.get("method") or "supervised"
    return method.get("type", "supervised") if isinstance(method, dict) else method


class Resources(_Frozenish):
    accel_type: str | None = None
    n_accel: int = 1
    n_node: int = 1


class WandbIntegration(_Frozenish):
    project: str
    name: str | None = None
    entity: str | None = None
    tags: list[str] = Field(default_factory=list)


class Integration(_Frozenish):
    type: Literal["wandb"] = "wandb"
    wandb: WandbIntegration


def wandb_key_secret(index: int) -> str:
    """The name of the job secret holding the API key given with the job's `index`-th W&B
    integration (Nebius sends one); the key itself never enters the spec."""
    return f"wandb_api_key_{index}"


class OutputSpec(_Frozenish):
    suffix: str | None = None
    # Where the fine-tuned weights are also published when the job succeeds: a repository of
    # polytune's repository store (its id), a branch, and a folder path inside it.
    repository: str | None = None
    branch: str | None = None
    model_path: str | None = None
    public: bool = False

    def repository_path(self, job_id: str) -> str:
        """The folder the weights are published to: `model_path`, or `models/<job id>`."""
        return (self.model_path or f"models/{job_id}").strip("/")


# extras[FROM_CHECKPOINT]: {"model": the checkpoint's id, "blob_key": its adapter folder in storage}.
FROM_CHECKPOINT = "from_checkpoint"


class JobSpec(_Frozenish):
    model: str
    method: MethodSpec = Field(default_factory=SupervisedMethod)
    training_files: list[str]
    validation_file: str | None = None
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    adapter: AdapterSpec = Field(default_factory=AdapterSpec)
    resources: Resources = Field(default_factory=Resources)
    integrations: list[Integration] = Field(default_factory=list)
    output: OutputSpec = Field(default_factory=OutputSpec)
    seed: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    description: str | None = None
    # Anything a dialect accepted that has no canonical home yet, echoed back by that dialect;
    # FROM_CHECKPOINT: the checkpoint the job starts from (services/checkpoint_starts.py).
    extras: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_flat_form(cls, data: Any) -> Any:
        """`method` given as a name, its options (`preference`, `reward`, `image`) beside it: the
        form dialects build and jobs stored before the union were written in. A block that
        belongs to another method, or a method without the block it needs, is a 400 here."""
        if not isinstance(data, dict):
            return data
        blocks = {k: data[k] for k in ("preference", "reward", "image") if data.get(k) is not None}
        method = data.get("method", "supervised")
        if not isinstance(method, str):
            if blocks:
                raise InvalidRequest(f"{', '.join(blocks)} belongs under method.", param="method")
            return {k: v for k, v in data.items() if k not in ("preference", "reward", "image")}
        own = _OPTIONS.get(method)
        for key in blocks:
            if key != own:
                raise InvalidRequest(
                    f"Method '{method}' takes no {key} settings.",
                    param="method.type" if key == "image" else f"method.{method}",
                )
        if method == "reinforcement" and "reward" not in blocks:
            raise InvalidRequest("A reinforcement job needs a grader.", param="method.reinforcement.grader")
        if method == "image_generation" and "image" not in blocks:
            raise InvalidRequest(f"Method '{method}' needs image settings.", param="method.type")
        rest = {k: v for k, v in data.items() if k not in ("preference", "reward", "image")}
        return {**rest, "method": {"type": method, **blocks}}

    # The method's options, read where a caller does not narrow `method` first; None when the
    # job's method has none of that kind.
    @property
    def preference(self) -> PreferenceSpec | None:
        return self.method.preference if isinstance(self.method, DpoMethod) else None

    @property
    def reward(self) -> RewardSpec | None:
        return self.method.reward if isinstance(self.method, ReinforcementMethod) else None

    @property
    def image(self) -> ImageSpec | None:
        return self.method.image if isinstance(self.method, ImageGenerationMethod) else None

    @property
    def training_file(self) -> str:
        # A `primitives` run (the Tinker API) has no training file: its data comes call by call.
        return self.training_files[0] if self.training_files else ""

    @property
    def requested_model(self) -> str:
        """The `model` the request named: the checkpoint a job starts from (it trains on that
        checkpoint's base model, which `model` holds), else `model`. Job APIs answer this one, as
        OpenAI answers the `ft:` name of a job that fine-tunes a fine-tuned model."""
        start = self.extras.get(FROM_CHECKPOINT)
        return str(start["model"]) if isinstance(start, dict) and start.get("model") else self.model
