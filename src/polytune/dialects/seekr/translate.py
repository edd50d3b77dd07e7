"""SeekrFlow wire -> domain: a FinetuneRequestIn becomes a JobSpec. (Responses: render.py.)"""

from __future__ import annotations


from polytune.domain import accelerators as acc
from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import (
    TRAINABLE_METHODS,
    AdapterSpec,
    Hyperparameters,
    JobSpec,
    LoraSpec,
    PreferenceSpec,
    Resources,
    RewardSpec,
)

from polytune.dialects.seekr.rewards import DEFAULT_JUDGE_MODEL, from_reward_components

from .errors import NotAvailable
from .protocol import LORA_EXTRAS, FinetuneRequestIn, ignored_keys

PURPOSES = ("fine-tune", "preference-fine-tune", "reinforcement-fine-tune", "pre-train", "alignment")
FILE_TYPES = (
    "jsonl",
    "parquet",
    "pt",
    "html",
    "md",
    "rst",
    "rtf",
    "txt",
    "xml",
    "json",
    "csv",
    "doc",
    "docx",
    "pdf",
    "ppt",
    "pptx",
)
METHOD_OF_TYPE = {
    "STANDARD": "supervised",
    "PREFERENCE": "dpo",
    "GRPO": "reinforcement",
    "REINFORCEMENT": "reinforcement",
}
TYPE_OF_METHOD = {"supervised": "STANDARD", "dpo": "PREFERENCE", "reinforcement": "REINFORCEMENT"}
# SeekrFlow's accel_type names -> polytune's canonical accelerator types (domain/accelerators.py),
# and back. They are spelled alike today; the map is where they would part.
ACCELERATORS = {
    "A10": acc.A10,
    "A100": acc.A100,
    "H100": acc.H100,
    "MI300X": acc.MI300X,
    "GAUDI2": acc.GAUDI2,
    "GAUDI3": acc.GAUDI3,
}

# Where a domain parameter lives in a Seekr create body (for 422 `loc`).
_LOC: dict[str, tuple] = {
    "model": ("training_config", "model"),
    "training_file": ("training_config", "training_files"),
    "validation_file": ("training_config", "validation_files"),
    "method.type": ("training_config", "fine_tune_type"),
    "hyperparameters.n_epochs": ("training_config", "n_epochs"),
    "hyperparameters.batch_size": ("training_config", "batch_size"),
    "hyperparameters.learning_rate": ("training_config", "learning_rate"),
    "hyperparameters.n_checkpoints": ("training_config", "n_checkpoints"),
    "hyperparameters.context_length": ("training_config", "max_length"),
    "hyperparameters.gradient_checkpointing": ("training_config", "gradient_checkpointing"),
    "hyperparameters.lora": ("training_config", "lora_config"),
    "hyperparameters.quantization": ("training_config", "lora_config", "extras", "quantization"),
    "hyperparameters.lora_r": ("training_config", "lora_config", "r"),
    "hyperparameters.lora_alpha": ("training_config", "lora_config", "alpha"),
    "hyperparameters.lora_dropout": ("training_config", "lora_config", "dropout"),
    "hyperparameters.beta": ("training_config", "beta"),
    "hyperparameters.loss_type": ("training_config", "loss_type"),
    "reward.format_reward_weight": ("training_config", "reward_components", "format_reward_weight"),
    "resources.accel_type": ("infrastructure_config", "accel_type"),
    "resources.n_accel": ("infrastructure_config", "n_accel"),
    "resources.n_node": ("infrastructure_config", "n_node"),
    "project_id": ("project_id",),
    "description": ("description",),
}


def create_loc(param: str) -> tuple | None:
    """The create body's field for a domain parameter; None when it is not a body field."""
    if param in _LOC:
        return _LOC[param]
    return None if param.startswith("fine_tuning_job_id") else tuple(param.split("."))


def upload_loc(param: str) -> tuple | None:
    return (param,) if param in ("purpose", "files", "filename", "new_filename") else None


# SeekrFlow's TrainingConfig.max_length default (its document).
DEFAULT_MAX_LENGTH = 2500


def warnings(req: FinetuneRequestIn) -> list[str]:
    """What the job's events say about the request at once: keys it ignored (the document's
    open objects take any key) and settings that train, but not as one might expect."""
    out = []
    if ignored := ignored_keys(req):
        out.append(
            f"Ignored unknown keys (SeekrFlow's schema allows them; polytune has no use for them): {', '.join(ignored)}"
        )
    lc = req.training_config.lora_config
    if lc is not None and lc.dropout == 1:
        out.append(
            "lora_config.dropout is 1: every input of the LoRA update is dropped while training, so "
            "the adapter learns nothing; a value below 1 (the default is 0.1) trains it"
        )
    return out


def _check_pre_train(req: FinetuneRequestIn) -> None:
    tc = req.training_config
    if tc.pre_train and tc.fine_tune_type != "STANDARD":
        raise InvalidRequest(
            f"training_config.pre_train is continued pre-training on raw text, a STANDARD "
            f"fine-tune; fine_tune_type is {tc.fine_tune_type}.",
            param="method.type",
        )


def with_text_files(req: FinetuneRequestIn, convert) -> tuple[FinetuneRequestIn, dict[str, list[str]]]:
    """A pre_train request training on the `{"text"}` files `convert(file_id, param)` made from
    its raw-text files, and the files as sent (to_spec keeps them to echo)."""
    _check_pre_train(req)  # before any file is made
    tc = req.training_config
    sent = {"training_files": tc.training_files, "validation_files": tc.validation_files or []}
    made = tc.model_copy(
        update={
            "training_files": [convert(f, "training_file") for f in tc.training_files],
            "validation_files": [convert(f, "validation_file") for f in tc.validation_files or []] or None,
        }
    )
    return req.model_copy(update={"training_config": made}), sent


def to_spec(
    req: FinetuneRequestIn, *, model_max_length: int, sent_files: dict[str, list[str]] | None = None
) -> JobSpec:
    """The canonical spec; `model_max_length` (the model's context) bounds the default max_length;
    `sent_files`: a pre_train job's raw-text files as sent (with_text_files)."""
    tc, infra = req.training_config, req.infrastructure_config
    _check_pre_train(req)
    method = METHOD_OF_TYPE[tc.fine_tune_type]
    if method not in TRAINABLE_METHODS:
        available = [TYPE_OF_METHOD[m] for m in TRAINABLE_METHODS if m in TYPE_OF_METHOD]
        raise NotAvailable(
            f"training_config.fine_tune_type {tc.fine_tune_type} is not available on this "
            f"server yet; available: {available}.",
            param="fine_tune_type",
        )
    hp = Hyperparameters(
        n_epochs=tc.n_epochs,
        batch_size=tc.batch_size if tc.batch_size is not None else "auto",
        learning_rate=tc.learning_rate,
        context_length=tc.max_length if tc.max_length is not None else min(DEFAULT_MAX_LENGTH, model_max_length),
        gradient_checkpointing=tc.gradient_checkpointing,
        # Continued pre-training packs its documents into full-length sequences.
        **({"packing": True} if tc.pre_train else {}),
        **({"n_checkpoints": tc.n_checkpoints} if tc.n_checkpoints is not None else {}),
    )
    # No lora_config means a full fine-tune in SeekrFlow.
    adapter = AdapterSpec(kind="full")
    if tc.lora_config is not None:
        lc = tc.lora_config
        if lc.extras.get("quantization") not in (None, "nf4"):
            raise InvalidRequest(
                'training_config.lora_config.extras.quantization must be "nf4" (QLoRA) or null.',
                param="hyperparameters.quantization",
                code="invalid_value",
            )
        adapter = AdapterSpec(
            kind="lora",
            quantization=lc.extras.get("quantization"),
            lora=LoraSpec(
                r=lc.r,
                alpha=lc.alpha,
                dropout=lc.dropout,
                bias=lc.bias,
                **{k: lc.extras[k] for k in LORA_EXTRAS if k in lc.extras and k != "quantization"},
            ),
        )
    preference = (
        PreferenceSpec(beta=tc.beta if tc.beta is not None else "auto", loss_type=(tc.loss_type or "SIGMOID").lower())
        if method == "dpo"
        else None
    )
    reward, extras = None, {}
    if method == "reinforcement":
        # The SDK sends these defaults itself when the user gives none.
        components = (
            tc.reward_components.model_dump(exclude_none=True, exclude=set(tc.reward_components.model_extra or {}))
            if tc.reward_components is not None
            else {"format_reward_weight": 0.1, "graders": [{"type": "math_accuracy", "weight": 0.9}]}
        )
        reward = RewardSpec(
            graders=[from_reward_components(components, judge_model=DEFAULT_JUDGE_MODEL)],
            format_reward_weight=components["format_reward_weight"],
        )
        extras["reward_components"] = components  # echoed as sent; the engine runs the multi grader
    return JobSpec(
        model=tc.model,
        method=method,
        training_files=tc.training_files,
        validation_file=(tc.validation_files or [None])[0],
        hyperparameters=hp,
        adapter=adapter,
        preference=preference,
        reward=reward,
        resources=Resources(accel_type=ACCELERATORS[infra.accel_type], n_accel=infra.n_accel, n_node=infra.n_node),
        description=req.description,
        extras={
            **extras,
            **({"experiment_name": tc.experiment_name} if tc.experiment_name else {}),
            # GRPO and REINFORCEMENT train alike; the job reads back the name that was sent.
            **({"fine_tune_type": tc.fine_tune_type} if tc.fine_tune_type == "GRPO" else {}),
            **({"pre_train": True, "sent_files": sent_files} if tc.pre_train else {}),
        },
    )
