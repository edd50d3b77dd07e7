"""SeekrFlow's responses from the domain: Jobs, files, projects, models and events become the
dicts the `seekrai` SDK parses (it validates every response with its pydantic models, so required
fields and enums must be right). (Requests become a JobSpec in translate.py.)"""

from __future__ import annotations

import datetime as dt
from pathlib import PurePosixPath
from typing import Any

from polytune.domain.errors import InvalidRequest
from polytune.domain.job import Job, JobStatus
from polytune.domain.objects import Event, FileInfo, ModelInfo, ProjectInfo

from .translate import ACCELERATORS, FILE_TYPES, PURPOSES, TYPE_OF_METHOD

STATUS = {
    JobStatus.CREATED: "pending",  # held until an explicit run (an Oxen job)
    JobStatus.VALIDATING_FILES: "pending",
    JobStatus.QUEUED: "queued",
    JobStatus.RUNNING: "running",
    JobStatus.PAUSING: "running",
    JobStatus.PAUSED: "pending",  # Seekr has no "paused": waiting, not yet back in the queue
    JobStatus.SUCCEEDED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}
_SEEKR_NAME = {canonical: name for name, canonical in ACCELERATORS.items()}
# The SDK requires accel_type to be one of its six on every job. A job created through another
# API asked for no accelerator; it is shown as the smallest of the six (docs/dialects.md).
DEFAULT_ACCEL = "A10"


def iso(ts: int | None) -> str | None:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat() if ts is not None else None


def _number(value: Any) -> Any:
    return None if value == "auto" else value


def speaks(j: Job) -> bool:
    """Whether SeekrFlow's API has a fine_tune_type for the job (an image job made through
    Oxen's API has none: SeekrFlow's list leaves it out, its own id answers a clear 400)."""
    return j.spec.method.type in TYPE_OF_METHOD


def job(j: Job) -> dict[str, Any]:
    if not speaks(j):
        raise InvalidRequest(
            f"Fine-tune {j.id} is a {j.spec.method.type} job, which SeekrFlow's API has no "
            "fine_tune_type for; read it through the Oxen.ai or OpenAI API.",
            param="fine_tune_id",
        )
    spec, hp, res = j.spec, j.spec.hyperparameters, j.spec.resources
    lora = spec.adapter.lora
    return {
        "id": j.id,
        "object": "fine-tune",
        "fine_tune_type": spec.extras.get("fine_tune_type") or TYPE_OF_METHOD[spec.method.type],
        # A pre_train job trains on {"text"} files made from the raw text sent; it shows those sent.
        "training_files": spec.extras.get("sent_files", {}).get("training_files", spec.training_files),
        "validation_files": spec.extras.get("sent_files", {}).get(
            "validation_files", [spec.validation_file] if spec.validation_file else []
        ),
        "pre_train": bool(spec.extras.get("pre_train")),
        "model": spec.requested_model,
        "accel_type": _SEEKR_NAME.get(res.accel_type, res.accel_type) if res.accel_type else DEFAULT_ACCEL,
        "n_accel": res.n_accel,
        "n_node": res.n_node,
        "n_epochs": _number(hp.n_epochs),
        "batch_size": _number(hp.batch_size),
        "learning_rate": hp.learning_rate,
        "n_checkpoints": hp.n_checkpoints,
        "max_length": hp.context_length,
        "lora_config": (
            {
                "r": lora.r,
                "alpha": lora.alpha,
                "dropout": lora.dropout,
                "bias": lora.bias,
                "extras": {
                    "target_modules": lora.target_modules,
                    **({"quantization": spec.adapter.quantization} if spec.adapter.quantization else {}),
                },
            }
            if spec.adapter.kind == "lora"
            else None
        ),
        "beta": _number(spec.preference.beta) if spec.preference else None,
        "loss_type": spec.preference.loss_type.upper() if spec.preference else None,
        "gradient_checkpointing": hp.gradient_checkpointing,
        "reward_components": spec.extras.get("reward_components"),
        "created_at": iso(j.created_at),
        "experiment_name": spec.extras.get("experiment_name"),
        "status": STATUS[j.status],
        "inference_available": bool(j.fine_tuned_model),
        "project_id": j.project_id,
        "completed_at": iso(j.finished_at),
        "description": spec.description,
        "error_analysis": j.error.message if j.error else None,
        # polytune's additions; the SDK keeps fields it doesn't know.
        "fine_tuned_model": j.fine_tuned_model,
        "trained_steps": j.trained_steps,
        "total_steps": j.total_steps,
        "trained_tokens": j.trained_tokens,
        "seed": spec.seed,
    }


def event(e: Event, j: Job) -> dict[str, Any]:
    data = e.data or {}
    out: dict[str, Any] = {
        "object": "fine-tune-event",
        "created_at": iso(e.created_at),
        "message": e.message,
        "level": e.level,
        "type": e.type,
    }
    if e.type == "metrics":
        step = data.get("step")
        n_epochs = j.spec.hyperparameters.n_epochs
        out.update(step=step, loss=data.get("train_loss"), valid_loss=data.get("valid_loss"), reward=data.get("reward"))
        if isinstance(step, int) and isinstance(n_epochs, int) and j.total_steps:
            out["epoch"] = round(step * n_epochs / j.total_steps, 4)
    return out


def events(items: list[Event], j: Job) -> dict[str, Any]:
    return {"object": "list", "data": [event(e, j) for e in items]}


def file_type(filename: str) -> str | None:
    suffix = PurePosixPath(filename).suffix.lstrip(".").lower()
    return suffix if suffix in FILE_TYPES else None


def file(f: FileInfo) -> dict[str, Any]:
    return {
        "id": f.id,
        "object": "file",
        "created_at": iso(f.created_at),
        "type": file_type(f.filename),
        # The SDK validates purpose against its five; another API's purpose is left out.
        "purpose": f.purpose if f.purpose in PURPOSES else None,
        "filename": f.filename,
        "bytes": f.bytes,
        "created_by": f.org_id,
        "origin_file_id": None,
        "deleted": False,
        "status": f.status,
        "status_details": f.status_details,
    }


def project(p: ProjectInfo, *, with_runs: bool = False) -> dict[str, Any]:
    out = {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "user_id": p.owner_number,
        "team_id": None,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }
    if with_runs:
        out.update(runs=p.runs, runs_deployed=p.runs_succeeded, last_modified=iso(p.last_modified))
    return out


def model(m: ModelInfo) -> dict[str, Any]:
    return {
        "id": m.id,
        "object": "model",
        "name": m.id,
        "created": m.created,
        # The SDK reads these keys directly; polytune knows no size without loading weights.
        "size": None,
        "model_type": "chat",
        # Any base model trains with LoRA (peft), and so does a LoRA fine-tune of a text model (or its
        # checkpoint, or Tinker sampler weights): a job with lora_config trains its adapter further
        # (services/checkpoint_starts.py). The SDK asks this before it sends a lora_config.
        "supports_lora": m.kind == "base" or (m.kind == "lora" and m.model_type == "chat"),
        "owned_by": m.owned_by,
        "base_model": m.base_model,
    }
