"""The create-fine-tuning-job request and the job response of the three documents that speak
OpenAI's API (../shared/seeds/openai-, nebius- and truefoundry-create-fine-tuning-job.md), as
tables. Bounds the documents leave open are polytune's own (domain/bounds.py,
domain/validation.py): each is walked just inside and just outside too."""

from __future__ import annotations

from .support import Field

MODEL = "polytune-tiny"
GRADER = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
DPO = {"method": {"type": "dpo"}}
RL = {"method": {"type": "reinforcement", "reinforcement": {"grader": GRADER}}}
_RL_HP = "method.reinforcement.hyperparameters"
_DPO_HP = "method.dpo.hyperparameters"
_SFT_HP = "method.supervised.hyperparameters"
SFT = {"method": {"type": "supervised"}}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# -- OpenAI's document: every property of the request body --------------------------------------
OPENAI_REQUEST: list[Field] = [
    Field("model", valid=(MODEL,), outside=("no-such-model", 7), required=True, echo="model"),
    Field("training_file", outside=("file-nope", 7), required=True, echo=""),
    Field(
        "hyperparameters.n_epochs",
        valid=("auto",),
        inside=(1, 100),
        outside=(0, 101, "many", 1.5, True),
        default="auto",
    ),
    Field("hyperparameters.batch_size", valid=("auto",), inside=(1, 1024), outside=(0, 1025, "big"), default="auto"),
    Field(
        "hyperparameters.learning_rate_multiplier",
        valid=("auto", 2),
        inside=(1e-9, 100),
        outside=(0, -1, 100.5, "fast"),
        default="auto",
    ),
    Field(
        "suffix",
        valid=("custom-model-name",),
        inside=("x" * 64,),
        outside=("x" * 65, "a:b", 7),
        echo="user_provided_suffix",
        default=None,
    ),
    Field("validation_file", outside=("file-nope",), default=None),
    Field("seed", inside=(0, 2**31 - 1), outside=(-1, 2**31, "42", 1.5), default=_is_int),
    Field(
        "metadata",
        valid=({"key": "value"}, {f"k{i}": "v" for i in range(16)}, {"k" * 64: "v" * 512}),
        outside=({f"k{i}": "v" for i in range(17)}, {"k" * 65: "v"}, {"k": "v" * 513}, {"k": 1}, "x"),
        default=None,
    ),
    Field(
        "integrations",
        valid=([{"type": "wandb", "wandb": {"project": "p", "name": "run", "entity": "team", "tags": ["a", "b"]}}],),
        outside=(
            [{"type": "other", "wandb": {"project": "p"}}],
            [{"type": "wandb", "wandb": {}}],
            [{"type": "wandb", "wandb": {"project": "p", "typo": 1}}],
            "wandb",
        ),
        param="integrations",
        default=None,
    ),
    Field(
        "method.type",
        valid=("supervised", "dpo"),
        outside=("unsupervised", "image_generation", 7),
        echo="method.type",
        default="supervised",
    ),
    Field(
        f"{_SFT_HP}.n_epochs",
        valid=("auto",),
        inside=(1, 100),
        outside=(0, 101),
        base=SFT,
        echo="hyperparameters.n_epochs",
        default="auto",
    ),
    Field(f"{_SFT_HP}.batch_size", inside=(1, 1024), outside=(0, 1025), base=SFT, echo="hyperparameters.batch_size"),
    Field(
        f"{_SFT_HP}.learning_rate_multiplier",
        inside=(1e-9, 100),
        outside=(0, 100.5),
        base=SFT,
        echo="hyperparameters.learning_rate_multiplier",
    ),
    Field(
        f"{_DPO_HP}.n_epochs",
        valid=("auto",),
        inside=(1, 100),
        outside=(0, 101),
        base=DPO,
        echo="hyperparameters.n_epochs",
        default="auto",
    ),
    Field(
        f"{_DPO_HP}.beta",
        valid=("auto",),
        inside=(1e-9, 100),
        outside=(0, 100.5, "x"),
        base=DPO,
        echo="hyperparameters.beta",
        default="auto",
    ),
    Field(
        f"{_RL_HP}.n_epochs",
        valid=("auto",),
        inside=(1, 100),
        outside=(0, 101),
        base=RL,
        echo=f"{_RL_HP}.n_epochs",
        default="auto",
    ),
    Field(
        f"{_RL_HP}.reasoning_effort",
        valid=("default", "low", "medium", "high"),
        outside=("max", 1),
        base=RL,
        default="default",
    ),
    Field(
        f"{_RL_HP}.compute_multiplier",
        valid=("auto",),
        inside=(0.01, 10),
        outside=(0, 10.5, "x"),
        base=RL,
        default="auto",
    ),
    Field(
        f"{_RL_HP}.eval_interval",
        valid=("auto",),
        inside=(1, 1_000_000),
        outside=(0, 1.5, "x"),
        base=RL,
        default="auto",
    ),
    Field(f"{_RL_HP}.eval_samples", valid=("auto",), inside=(1, 1000), outside=(0, 1001, "x"), base=RL, default="auto"),
    Field(f"{_RL_HP}.max_completion_tokens", inside=(1, 131_072), outside=(0, 131_073, "x"), base=RL),
    Field(f"{_RL_HP}.batch_size", inside=(1, 1024), outside=(0, 1025), base=RL),
    Field(f"{_RL_HP}.learning_rate_multiplier", inside=(1e-9, 100), outside=(0, 100.5), base=RL),
    Field("method.supervised.typo", outside=(1,), base=SFT),
    Field(f"{_DPO_HP}.typo", outside=(1,), base=DPO),
    Field("method.reinforcement.typo", outside=(1,), base=RL),
    Field("typo", outside=(1,)),
    Field(
        "method.reinforcement.grader",
        valid=(
            GRADER,
            {**GRADER, "operation": "ilike"},
            {
                "type": "text_similarity",
                "name": "sim",
                "input": "{{sample.output_text}}",
                "reference": "{{item.answer}}",
                "evaluation_metric": "fuzzy_match",
            },
            {
                "type": "score_model",
                "name": "judge",
                "model": MODEL,
                "range": [0.0, 1.0],
                "input": [{"role": "user", "content": "Grade {{sample.output_text}} against {{item.answer}}"}],
            },
            {"type": "multi", "name": "m", "calculate_output": "exact", "graders": GRADER},
        ),
        outside=(
            {"type": "nope", "name": "x"},
            "x",
            {**GRADER, "operation": "like_not"},
            {
                "type": "text_similarity",
                "name": "sim",
                "input": "{{sample.output_text}}",
                "reference": "{{item.answer}}",
                "evaluation_metric": "rouge_9",
            },
        ),
        base=RL,
        echo="method.reinforcement.grader",
    ),
]

# -- Nebius's document: its hyperparameters (top level, or in extra_body), tags, extra_body ------
NEBIUS_REQUEST: list[Field] = [
    Field("hyperparameters.learning_rate", inside=(1e-9, 1), outside=(0, 1.5, "x", "0.001")),
    Field("hyperparameters.warmup_ratio", inside=(0, 0.99), outside=(-0.1, 1)),
    Field("hyperparameters.weight_decay", inside=(0, 10), outside=(-0.1, 10.5)),
    Field("hyperparameters.lora", valid=(True, False), outside=("yes", 1, "true")),
    Field(
        "hyperparameters.lora_r",
        inside=(1, 1024),
        outside=(0, 1025, "8", 8.5),
        base={"hyperparameters": {"lora": True}},
    ),
    Field(
        "hyperparameters.lora_alpha", inside=(1, 65_536), outside=(0, 65_537), base={"hyperparameters": {"lora": True}}
    ),
    Field(
        "hyperparameters.lora_dropout", inside=(0, 1), outside=(-0.01, 1.01), base={"hyperparameters": {"lora": True}}
    ),
    Field("hyperparameters.packing", valid=(True, False), outside=("yes", 1, "true")),
    Field("hyperparameters.max_grad_norm", inside=(1e-9, 1e6), outside=(0, 1e6 + 1)),
    Field("hyperparameters.context_length", inside=(1, 1_048_576), outside=(0, 1_048_577, "512", 512.0)),
    Field("hyperparameters.n_checkpoints", inside=(0, 1000), outside=(-1, 1001, "3")),
    Field("hyperparameters.gradient_accumulation_steps", inside=(1, 1024), outside=(0, 1025, "2")),
    Field("hyperparameters.lr_scheduler", valid=("constant", "linear", "cosine"), outside=("step", 1)),
    # "nf4" (QLoRA) needs CUDA: on this CPU server it is refused too, naming the field.
    Field("hyperparameters.quantization", outside=("int8", "nf4"), base={"hyperparameters": {"lora": True}}),
    Field("hyperparameters.typo", outside=(1,)),
    Field("tags", valid=(["my-ft-job"], "my-ft-job"), outside=(7,), echo="", default=[]),
    Field(
        "extra_body.context_length",
        inside=(1,),
        outside=(0,),
        echo="hyperparameters.context_length",
        param="hyperparameters.context_length",
    ),
    Field(
        "extra_body.lora_r", inside=(8,), outside=(0,), echo="hyperparameters.lora_r", param="hyperparameters.lora_r"
    ),
    Field("extra_body.typo", outside=(1,)),
]

# -- the job, as each document lists its response fields ("type|null") ---------------------------
OPENAI_JOB = {
    "id": "string",
    "created_at": "integer",
    "error": "object|null",
    "fine_tuned_model": "string|null",
    "finished_at": "integer|null",
    "hyperparameters": "object",
    "hyperparameters.n_epochs": "string|integer",
    "model": "string",
    "object": "string",
    "organization_id": "string",
    "result_files": "array",
    "status": "string",
    "trained_tokens": "integer|null",
    "training_file": "string",
    "validation_file": "string|null",
    "integrations": "array|null",
    "seed": "integer",
    "estimated_finish": "integer|null",
    "method": "object",
    "metadata": "object|null",
}
NEBIUS_JOB = {**OPENAI_JOB, "suffix": "string|null", "trained_steps": "integer|null", "total_steps": "integer|null"}
TRUEFOUNDRY_JOB = {**OPENAI_JOB, "metadata": "object", "method": "object", "hyperparameters": "object"}
OPENAI_STATUSES = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
TRUEFOUNDRY_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")

# -- TrueFoundry's document: the same body at /api/llm, with its empty objects -------------------
_TF_FIELDS = (
    "model",
    "training_file",
    "hyperparameters",
    "integrations",
    "metadata",
    "method",
    "seed",
    "suffix",
    "validation_file",
)
TRUEFOUNDRY_REQUEST: list[Field] = [
    f for f in OPENAI_REQUEST if f.path.split(".")[0] in _TF_FIELDS and f.path != "metadata"
] + [
    Field("metadata", valid=({}, {"key": "value"}), outside=({f"k{i}": "v" for i in range(17)}, "x"), default={}),
    # `method: {}` is supervised with defaults (method.type's default above is the same walk).
    Field("method", valid=({},), outside=({"supervised": {}},), echo="", param="method.type"),
    Field("integrations", valid=([{}], []), echo="", outside=([{"type": "wandb"}],), param="integrations"),
    Field("hyperparameters", valid=({},), echo=""),
]

# Nebius's response `hyperparameters`, once the job is validated: every setting it trains with.
NEBIUS_HYPERPARAMETERS = {
    "batch_size": "integer",
    "learning_rate": "number",
    "n_epochs": "integer",
    "warmup_ratio": "number",
    "weight_decay": "number",
    "lora": "boolean",
    "packing": "boolean",
    "max_grad_norm": "number",
    "context_length": "integer",
}
NEBIUS_LORA = {"lora_r": "integer", "lora_alpha": "integer", "lora_dropout": "number"}
