"""Oxen's responses from the domain: Jobs, repositories and commits become Oxen's
`{status, status_message, ...}` bodies. (Requests become a JobSpec in translate.py.)"""

from __future__ import annotations

import datetime as dt
from typing import Any

from polytune.domain.job import Job
from polytune.domain.objects import Checkpoint
from polytune.domain.repos import BranchInfo, CommitInfo, RepoInfo
from polytune.domain.spec import JobSpec

from .protocol import OXEN_VERSION
from .translate import STATUS


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def ok(message: str, **body: Any) -> dict[str, Any]:
    return {"status": "success", "status_message": message, "oxen_version": OXEN_VERSION, **body}


def commit(c: CommitInfo) -> dict[str, Any]:
    return {
        "id": c.id,
        "parent_ids": c.parent_ids,
        "message": c.message,
        "author": c.author,
        "email": c.email,
        "timestamp": iso(c.created_at),
    }


def repository(r: RepoInfo) -> dict[str, Any]:
    return {
        "namespace": r.namespace,
        "name": r.name,
        "description": r.description,
        "is_public": r.is_public,
        "min_version": None,
        "is_empty": r.latest_commit is None,
        "storage_kind": "local",
        "latest_commit": commit(r.latest_commit) if r.latest_commit else None,
    }


def branch(b: BranchInfo) -> dict[str, Any]:
    return {"name": b.name, "commit_id": b.commit.id, "commit": commit(b.commit)}


def _training_params(spec: JobSpec) -> dict[str, Any]:
    hp, adapter = spec.hyperparameters, spec.adapter
    if spec.image is not None:
        image = spec.image
        given = spec.extras.get("training_params", {}).get("samples")
        return {
            **spec.extras.get("columns", {}),
            "steps": hp.max_steps,
            "batch_size": hp.batch_size,
            "learning_rate": hp.learning_rate,
            (
                "grad_accum"
                if "grad_accum" in spec.extras.get("training_params", {})
                and "gradient_accumulation" not in spec.extras.get("training_params", {})
                else "gradient_accumulation"
            ): hp.gradient_accumulation_steps or 1,
            "use_lora": adapter.kind == "lora",
            "lora_rank": adapter.lora.r,
            "lora_alpha": adapter.lora.alpha,
            "timestep_type": image.timestep_type,
            "sample_every": image.sample_every,
            "samples": given if given is not None else image.samples,
        }
    sent = spec.extras.get("training_params", {})
    echoed = {k: v for k, v in sent.items() if k in ("logging_steps", "enable_thinking")}
    # Gradient accumulation under the name the request used (Oxen's reference says
    # gradient_accumulation, its client grad_accum); grad_accum when neither was sent.
    accumulation = (
        "gradient_accumulation" if "gradient_accumulation" in sent and "grad_accum" not in sent else "grad_accum"
    )
    return {
        **spec.extras.get("columns", {}),
        "epochs": hp.n_epochs,
        "steps": hp.max_steps,
        "batch_size": hp.batch_size,
        "learning_rate": hp.learning_rate,
        accumulation: hp.gradient_accumulation_steps or 1,
        "seq_length": hp.context_length,
        "use_lora": None if adapter.kind == "auto" else adapter.kind == "lora",
        "lora_rank": adapter.lora.r,
        "lora_alpha": adapter.lora.alpha,
        **({"quantization": adapter.quantization} if adapter.quantization else {}),
        **echoed,
    }


def fine_tune(j: Job, repo: RepoInfo | None = None) -> dict[str, Any]:
    spec = j.spec
    out = spec.output
    resource = spec.extras.get("resource")
    published = None
    if out.repository:
        published = {
            "repository": repo.full_name if repo else None,
            "branch": out.branch,
            "path": out.repository_path(j.id),
        }
    return {
        "id": j.id,
        "name": out.suffix or j.id,
        "status": STATUS[j.status],
        "base_model": spec.requested_model,
        "script_type": spec.extras.get("script_type", "text_generation"),
        "repository_id": out.repository,
        "repository": repo.full_name if repo else None,
        # An Oxen resource is `<branch>/<path>` at a commit; a job made through another API
        # trains on a file id.
        "resource": (
            {"path": f"{resource['branch']}/{resource['path']}", "version": resource["version"]}
            if resource
            else {"path": spec.training_file, "version": None}
        ),
        "training_params": _training_params(spec),
        "is_public": out.public,
        "oxen_model_path": published["path"] if published else None,
        "output_resource": published,
        "error": j.error.message if j.error else None,
        "created_at": iso(j.created_at),
        "updated_at": iso(j.finished_at or j.started_at or j.created_at),
        "started_at": iso(j.started_at),
        "finished_at": iso(j.finished_at),
        "total_token_count": j.trained_tokens or 0,
        # polytune's own: the model id to serve, and progress.
        "fine_tuned_model": j.fine_tuned_model,
        "trained_steps": j.trained_steps,
        "total_steps": j.total_steps,
    }


def train_status(j: Job) -> dict[str, Any]:
    """Progress of a fine-tune (Oxen documents this endpoint's body only as an object)."""
    total = j.total_steps
    return {
        "fine_tune_id": j.id,
        "status": STATUS[j.status],
        "trained_steps": j.trained_steps,
        "total_steps": total,
        "progress": round(j.trained_steps / total, 4) if total else 0.0,
        "trained_tokens": j.trained_tokens or 0,
        "estimated_finish": iso(j.estimated_finish),
        "error": j.error.message if j.error else None,
    }


def checkpoint(c: Checkpoint, path: str, size: int | None) -> dict[str, Any]:
    m = c.metrics
    metrics = {
        "loss": m.get("train_loss"),
        "mean_token_accuracy": m.get("train_mean_token_accuracy"),
        **{k: v for k, v in m.items() if k not in ("train_loss", "train_mean_token_accuracy")},
    }
    return {
        "step": c.step,
        "path": path,
        "created_at": iso(c.created_at),
        "metrics": metrics,
        "size_bytes": size,
        "model_id": c.model_id,
        "model_name": c.model_id,
    }
