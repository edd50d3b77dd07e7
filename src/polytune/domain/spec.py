"""The canonical job: every dialect translates its request into one `JobSpec`.

Values a user left to the service are the string "auto"; `resolve_auto` (in
services/hyperparameters.py) replaces them once, when the job is queued, and the resolved
spec is what the job reports afterwards.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

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


class JobSpec(_Frozenish):
    model: str
    method: Method = "supervised"
    training_files: list[str]
    validation_file: str | None = None
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    adapter: AdapterSpec = Field(default_factory=AdapterSpec)
    preference: PreferenceSpec | None = None
    reward: RewardSpec | None = None
    image: ImageSpec | None = None
    resources: Resources = Field(default_factory=Resources)
    integrations: list[Integration] = Field(default_factory=list)
    output: OutputSpec = Field(default_factory=OutputSpec)
    seed: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    description: str | None = None
    # Anything a dialect accepted that has no canonical home yet, echoed back by that dialect.
    extras: dict[str, Any] = Field(default_factory=dict)

    @property
    def training_file(self) -> str:
        # A `primitives` run (the Tinker API) has no training file: its data comes call by call.
        return self.training_files[0] if self.training_files else ""
