"""OpenAI's responses from the domain: Jobs and friends become dicts with every field the SDK's
models require under strict validation. (Requests become a JobSpec in translate.py.)"""

from __future__ import annotations

from typing import Any

from polytune.domain.job import Job
from polytune.domain.objects import Checkpoint, Event, FileInfo, ModelInfo, Page, UploadInfo, UploadPartInfo
from polytune.domain.spec import JobSpec

from .statuses import STATUS
from .translate import _LORA, _PASSTHROUGH  # the wire names requests map from

# File purposes the openai SDK's FileObject accepts; files uploaded through another API with
# another purpose are shown under the nearest of these.
_OPENAI_PURPOSES = (
    "assistants",
    "assistants_output",
    "batch",
    "batch_output",
    "fine-tune",
    "fine-tune-results",
    "vision",
    "user_data",
)


def _hp_out(spec: JobSpec) -> dict[str, Any]:
    hp = spec.hyperparameters
    out: dict[str, Any] = {
        "n_epochs": hp.n_epochs,
        "batch_size": hp.batch_size,
        "learning_rate_multiplier": hp.learning_rate_multiplier,
    }
    # Nebius's extras, echoed by their wire names once known (given, or resolved at queueing).
    out.update({k: getattr(hp, k) for k in _PASSTHROUGH if getattr(hp, k) is not None})
    if "packing" not in out and hp.learning_rate is not None and spec.method.type == "supervised":
        # Resolved with packing unset: the trainer's padding-free batches never join examples,
        # so what it trained with is "no packing" (resolve_auto leaves the field unset so the
        # recipe can tell the default from an explicit false).
        out["packing"] = False
    if spec.adapter.kind != "auto":
        out["lora"] = spec.adapter.kind == "lora"
    if spec.adapter.kind == "lora":
        out.update({wire: getattr(spec.adapter.lora, field) for wire, field in _LORA.items()})
    if spec.adapter.quantization:
        out["quantization"] = spec.adapter.quantization
    if spec.preference is not None:
        out.update(beta=spec.preference.beta, loss_type=spec.preference.loss_type)
    return out


_OPENAI_METHODS = ("supervised", "dpo", "reinforcement")


def _method_out(spec: JobSpec, hp: dict[str, Any]) -> dict[str, Any]:
    if spec.method.type != "reinforcement" or spec.reward is None:
        return {"type": spec.method.type, spec.method.type: {"hyperparameters": hp}}
    r = spec.reward
    rl_hp = {
        **hp,
        "compute_multiplier": r.compute_multiplier,
        "eval_samples": r.eval_samples,
        "eval_interval": spec.hyperparameters.eval_interval or "auto",
        "reasoning_effort": r.reasoning_effort,
    }
    if r.max_completion_tokens:
        rl_hp["max_completion_tokens"] = r.max_completion_tokens
    body = {"grader": r.graders[0] if r.graders else None, "hyperparameters": rl_hp}
    if _sdk_grader(body["grader"]):
        return {"type": "reinforcement", "reinforcement": body}
    # A grader the openai SDK's types can't hold (a multi over named graders, SeekrFlow's
    # format_check / math_accuracy): strict parsing would reject the whole job, so it is shown
    # under polytune's own key instead.
    return {"type": "reinforcement", "reinforcement": None, "polytune_reinforcement": body}


_SDK_GRADERS = ("string_check", "text_similarity", "python", "score_model", "multi")


def _sdk_grader(grader: Any) -> bool:
    if not isinstance(grader, dict) or grader.get("type") not in _SDK_GRADERS:
        return False
    if grader["type"] != "multi":
        return True
    sub = grader.get("graders")
    return isinstance(sub, dict) and sub.get("type") in (*_SDK_GRADERS[:-1], "label_model")


def job(j: Job, flavor: str = "openai") -> dict[str, Any]:
    """The job as `flavor` ("openai": OpenAI and Nebius at /v1; "truefoundry": /api/llm) shows it."""
    spec = j.spec
    hp = _hp_out(spec)
    return {
        "id": j.id,
        "object": "fine_tuning.job",
        "created_at": j.created_at,
        "error": ({"code": j.error.code, "message": j.error.message, "param": j.error.param} if j.error else None),
        "fine_tuned_model": j.fine_tuned_model,
        "finished_at": j.finished_at,
        "hyperparameters": hp,
        "model": spec.requested_model,
        "organization_id": j.org_id,
        "result_files": j.result_files,
        "seed": spec.seed if spec.seed is not None else 0,
        # Inside the provider's enum (a strict client fails on any other value); polytune's own
        # status, which tells paused from queued, is polytune_status.
        "status": STATUS[flavor][j.status],
        "polytune_status": j.status.value,
        "trained_tokens": j.trained_tokens,
        "training_file": spec.training_file,
        "validation_file": spec.validation_file,
        "integrations": [{"type": i.type, "wandb": i.wandb.model_dump(exclude_none=True)} for i in spec.integrations]
        or None,
        # TrueFoundry types metadata as an object; OpenAI's SDK takes null for none.
        "metadata": spec.metadata if flavor == "truefoundry" else (spec.metadata or None),
        # OpenAI's method types are supervised, dpo and reinforcement: an image job (made through
        # Oxen's API) or a Tinker run (`primitives`) has none here (a strict client would refuse
        # the whole page); polytune_method names every job's method.
        "method": _method_out(spec, hp) if spec.method.type in _OPENAI_METHODS else None,
        "polytune_method": spec.method.type,
        "estimated_finish": j.estimated_finish,
        "user_provided_suffix": spec.output.suffix,
        "suffix": spec.output.suffix,  # Nebius's name for it
        # Nebius's progress fields; extra fields are fine for the SDK, strict or not.
        "trained_steps": j.trained_steps,
        "total_steps": j.total_steps,
        "tags": spec.tags,
        # SeekrFlow's experiment_name of a job made there (the dashboard shows it); else null.
        "experiment_name": spec.extras.get("experiment_name"),
        # What validation found in the data: examples, tokens, long examples, billable tokens.
        "data_report": j.data_report,
    }


def event(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "object": "fine_tuning.job.event",
        "created_at": e.created_at,
        "level": e.level,
        "message": e.message,
        "data": e.data or {},
        "type": e.type,
    }


def checkpoint(c: Checkpoint) -> dict[str, Any]:
    return {
        "id": c.id,
        "object": "fine_tuning.job.checkpoint",
        "created_at": c.created_at,
        "fine_tuned_model_checkpoint": c.model_id,
        "fine_tuning_job_id": c.job_id,
        "step_number": c.step,
        "metrics": {"step": c.step, **c.metrics},
        # Nebius: the checkpoint's weights as files (a tar of the checkpoint folder).
        "result_files": c.result_files,
    }


def file(f: FileInfo) -> dict[str, Any]:
    return {
        "id": f.id,
        "object": "file",
        "bytes": f.bytes,
        "created_at": f.created_at,
        "filename": f.filename,
        "purpose": _openai_purpose(f.purpose),
        "status": f.status,
        "status_details": f.status_details,
        "expires_at": f.expires_at,
    }


def _openai_purpose(purpose: str) -> str:
    if purpose in _OPENAI_PURPOSES:
        return purpose
    return "user_data" if purpose == "alignment" else "fine-tune"  # SeekrFlow's training purposes


def upload(u: UploadInfo) -> dict[str, Any]:
    return {
        "id": u.id,
        "object": "upload",
        "bytes": u.bytes,
        "created_at": u.created_at,
        "expires_at": u.expires_at,
        "filename": u.filename,
        "purpose": u.purpose,
        "status": u.status,
        "file": file(u.file) if u.file else None,
    }


def upload_part(p: UploadPartInfo) -> dict[str, Any]:
    return {"id": p.id, "object": "upload.part", "created_at": p.created_at, "upload_id": p.upload_id}


def model(m: ModelInfo) -> dict[str, Any]:
    # polytune's extras (kept by the SDK): chat or image model, its base, the job that made it.
    return {
        "id": m.id,
        "object": "model",
        "created": m.created,
        "owned_by": m.owned_by,
        "model_type": m.model_type,
        "base_model": m.base_model,
        "fine_tuning_job_id": m.job_id,
    }


def page(p: Page, render) -> dict[str, Any]:
    data = [render(x) for x in p.data]
    return {
        "object": "list",
        "data": data,
        "has_more": p.has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


# -- graders ------------------------------------------------------------------------------------
def grader_run(grader: Any, result: Any, seconds: float) -> dict[str, Any]:
    """GraderRunResponse: every field its strict parsing requires."""
    return {
        "reward": result.reward,
        "sub_rewards": result.sub_rewards,
        "model_grader_token_usage_per_model": (
            {getattr(grader, "model", grader.name): result.token_usage} if result.token_usage else {}
        ),
        "metadata": {
            "name": grader.name,
            "type": grader.type,
            "execution_time": seconds,
            "scores": result.sub_rewards,
            "errors": result.error_flags(),
            "token_usage": result.token_usage or None,
            "sampled_model_name": result.sampled_model_name,
        },
    }
