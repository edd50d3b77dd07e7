"""SeekrFlow's create-fine-tuning-job request (RequestConfig, TrainingConfig, LoRAConfig,
RewardComponents, its graders, InfrastructureConfig) and its FinetuneResponse, as tables read
off ../shared/seeds/seekr-create-fine-tuning-job.md. Bounds the document leaves open
(n_epochs, learning_rate, n_checkpoints, n_accel, n_node) are polytune's own
(domain/bounds.py), walked just inside and just outside too. A refusal is a 422 whose `loc`
is the field's path in the body."""

from __future__ import annotations

from .support import Field

MODEL = "polytune-tiny"
# Stand-ins the test replaces with what it made: a project of the caller's, a validation file.
PROJECT = "<project>"
VALIDATION = "<validation>"
_TC = "training_config"
_LORA = f"{_TC}.lora_config"
_RC = f"{_TC}.reward_components"
LORA = {_TC: {"lora_config": {}}}
RL = {_TC: {"fine_tune_type": "REINFORCEMENT"}}
PREFERENCE = {_TC: {"fine_tune_type": "PREFERENCE"}}
ACCELERATORS = ("GAUDI2", "GAUDI3", "A100", "A10", "H100", "MI300X")
GRADERS = (
    [{"type": "format_check"}],
    [{"type": "math_accuracy"}],
    [
        {"type": "string_check", "operation": op}
        for op in ("equals", "not_equals", "contains", "case_insensitive_contains")
    ],
    [{"type": "text_similarity", "operation": "bleu"}, {"type": "text_similarity", "operation": "rouge"}],
)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


SEEKR_REQUEST: list[Field] = [
    Field("project_id", valid=(None, PROJECT), outside=(0, "x", 987_654), default=None),
    Field("description", valid=("a run", None), outside=(7,), default=None),
    Field(f"{_TC}.training_files", outside=([], ["file-nope"], "file-x"), required=True, echo=""),
    Field(
        f"{_TC}.validation_files",
        valid=(VALIDATION, [], None),
        outside=(["file-nope"], "file-x", ["file-a", "file-b"]),
        echo="",
    ),
    Field(f"{_TC}.model", valid=(MODEL,), outside=("no-such-model",), required=True, echo="model"),
    Field(f"{_TC}.n_epochs", inside=(1, 100), outside=(0, 101, "many"), required=True, echo="n_epochs"),
    Field(f"{_TC}.learning_rate", inside=(1e-9, 1), outside=(0, 1.5, "fast"), echo="learning_rate", default=None),
    Field(f"{_TC}.n_checkpoints", inside=(0, 1000), outside=(-1, 1001), echo="n_checkpoints", default=_int),
    Field(f"{_TC}.batch_size", inside=(1, 1024), outside=(0, 1025), echo="batch_size", default=None),
    Field(f"{_TC}.experiment_name", valid=("exp-1", None), echo="experiment_name", default=None),
    # Left out: the document's 2500, lowered to the model's context (polytune-tiny's is smaller).
    Field(
        f"{_TC}.max_length",
        inside=(1, 1_048_576),
        outside=(0, 1_048_577),
        echo="max_length",
        default=lambda v: _int(v) and 0 < v <= 2500,
    ),
    # True needs raw-text files (tests/dialects/seekr/test_pre_train*.py); a chat file is refused.
    Field(f"{_TC}.pre_train", valid=(False,), outside=("maybe",), echo="pre_train", default=False),
    Field(f"{_TC}.pre_train", outside=(True,), param=f"{_TC}.training_files"),
    Field(
        f"{_TC}.fine_tune_type",
        valid=("STANDARD", "PREFERENCE", "GRPO", "REINFORCEMENT"),
        outside=("DPO", "standard"),
        echo="fine_tune_type",
        default="STANDARD",
    ),
    Field(f"{_LORA}.r", inside=(1, 1024), outside=(0, 1025), base=LORA, echo="lora_config.r", default=8),
    Field(f"{_LORA}.alpha", inside=(1, 65_536), outside=(0, 65_537), base=LORA, echo="lora_config.alpha", default=32),
    Field(f"{_LORA}.dropout", inside=(0, 1), outside=(-0.01, 1.01), base=LORA, echo="lora_config.dropout", default=0.1),
    Field(
        f"{_LORA}.bias",
        valid=("none", "all", "lora_only"),
        outside=("some",),
        base=LORA,
        echo="lora_config.bias",
        default="none",
    ),
    Field(
        f"{_LORA}.extras",
        valid=({}, {"target_modules": "all-linear"}),
        outside=({"target_modules": 7},),
        base=LORA,
        echo="",
        param=_LORA,
    ),
    Field(_LORA, valid=(None,), echo="lora_config", default=None),
    # 1 is inside the document's bound, but leaves the graders (each weighted above 0) nothing.
    Field(
        f"{_RC}.format_reward_weight",
        inside=(1e-9, 0.99),
        outside=(0, 1, 1.01),
        echo="reward_components.format_reward_weight",
        base={_TC: {"fine_tune_type": "REINFORCEMENT", "reward_components": {"graders": [{"type": "math_accuracy"}]}}},
        default=0.1,
    ),
    Field(
        f"{_RC}.graders",
        valid=GRADERS,
        outside=(
            [],
            [{"type": "nope"}],
            [{"type": "string_check"}],
            [{"type": "math_accuracy", "weight": 0}],
            [{"type": "math_accuracy", "weight": 1.01}],
            [{"type": "text_similarity", "operation": "gleu"}],
        ),
        base=RL,
        echo="",
    ),  # echoed with the weights the SDK's rules give them (the row below)
    # The llm grader's own bounds (the document's), one grader at a time.
    *[
        Field(
            f"{_RC}.graders",
            valid=tuple([{"type": "llm", key: v}] for v in inside),
            outside=tuple([{"type": "llm", key: v}] for v in outside),
            base=RL,
            echo="",
        )
        for key, inside, outside in (
            ("seed", (0, 2**31 - 1), (-1,)),
            ("top_p", (0, 1), (-0.01, 1.01)),
            ("temperature", (0, 1.5), (-0.01, 1.51)),
            ("max_completion_tokens", (1, 4096), (0,)),
        )
    ],
    # Left out or null: the SDK's own defaults (it sends them itself when the user gives none).
    Field(
        _RC,
        base=RL,
        echo="reward_components",
        default={"format_reward_weight": 0.1, "graders": [{"type": "math_accuracy", "weight": 0.9}]},
    ),
    Field(_RC, valid=(None,), base=RL, echo=""),
    # The SDK's weight rules: all or none weighted; all given with format_reward_weight sum to 1.
    Field(
        f"{_RC}.graders",
        valid=(
            [{"type": "math_accuracy", "weight": 0.9}],
            [{"type": "math_accuracy", "weight": 0.5}, {"type": "format_check", "weight": 0.4}],
        ),
        outside=(
            [{"type": "math_accuracy", "weight": 1}],
            [{"type": "math_accuracy", "weight": 0.5}, {"type": "format_check"}],
        ),
        base={_TC: {"fine_tune_type": "REINFORCEMENT", "reward_components": {"format_reward_weight": 0.1}}},
        echo="reward_components.graders",
        param=_RC,
    ),
    Field(f"{_TC}.beta", inside=(1e-9, 100), outside=(0, 100.5), base=PREFERENCE, echo="beta", default=None),
    Field(
        f"{_TC}.loss_type",
        valid=("SIGMOID", "HINGE", "IPO", "KTO_PAIR"),
        outside=("sigmoid", "DPO"),
        base=PREFERENCE,
        echo="loss_type",
        default="SIGMOID",
    ),
    # A field of another fine_tune_type is refused, naming it.
    Field(f"{_TC}.beta", outside=(0.5,), echo=""),
    Field(f"{_TC}.loss_type", outside=("HINGE",), base=RL, echo=""),
    Field(_RC, outside=({"graders": [{"type": "math_accuracy"}]},), base=PREFERENCE, echo=""),
    Field(
        f"{_TC}.gradient_checkpointing",
        valid=(True, False, None),
        outside=("sometimes",),
        echo="gradient_checkpointing",
        default=None,
    ),
    Field(
        "infrastructure_config.accel_type", valid=ACCELERATORS, outside=("TPU", None), required=True, echo="accel_type"
    ),
    Field("infrastructure_config.n_accel", inside=(1, 1024), outside=(0, 1025), required=True, echo="n_accel"),
    Field("infrastructure_config.n_node", inside=(1, 1024), outside=(0, 1025), echo="n_node", default=1),
    Field("typo", outside=(1,)),  # the top level is closed (the open objects are walked in test_seekr.py)
]

# FinetuneResponse: the fields seekrai's model reads, by type ("|null" where it takes none).
SEEKR_JOB = {
    "id": "string",
    "fine_tune_type": "string",
    "training_files": "array",
    "validation_files": "array|null",
    "model": "string",
    "accel_type": "string",
    "n_accel": "integer",
    "n_node": "integer|null",
    "n_epochs": "integer|null",
    "batch_size": "integer|null",
    "learning_rate": "number|null",
    "lora_config": "object|null",
    "beta": "number|null",
    "gradient_checkpointing": "boolean|null",
    "created_at": "string",
    "experiment_name": "string|null",
    "status": "string",
    "inference_available": "boolean",
    "project_id": "integer|null",
    "completed_at": "string|null",
    "description": "string|null",
    "error_analysis": "string|null",
    "reward_components": "object|null",
}
SEEKR_STATUSES = ("pending", "queued", "running", "cancelled", "failed", "completed", "deleted")
