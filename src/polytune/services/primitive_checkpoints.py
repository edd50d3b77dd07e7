"""A Tinker run's checkpoints as the RestClient and `tinker checkpoint download` handle them:
signed download URLs for every file of one (one request, then plain GETs), their TTL, deletion.

`tinker checkpoint download tinker://<run>/weights/<name>` exports a training checkpoint through
a new run's `save_weights_external`, downloads that, sets its TTL, deletes it and finishes its
session: each of those calls is answered here (services/primitives.py finishes the session).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from polytune.domain.errors import InvalidRequest
from polytune.services.primitive_runs import PrimitiveRuns

_KINDS = ("weights", "sampler_weights", "external_weights")


def _folder(runs: PrimitiveRuns, org_id: str, run_id: str, checkpoint_id: str) -> Path:
    """The folder of `checkpoint_id` (`<kind>/<name>`) of an organization's run; 404 otherwise."""
    if checkpoint_id.split("/", 1)[0] not in _KINDS:
        raise InvalidRequest(
            f"'{checkpoint_id}' is not a checkpoint id ({', '.join(k + '/<name>' for k in _KINDS)}).",
            param="checkpoint_id",
        )
    job_id = runs.job_id(org_id, run_id)
    return runs.checkpoint(org_id, f"tinker://{job_id}/{checkpoint_id}")[1]


def signed_urls(
    runs: PrimitiveRuns, org_id: str, run_id: str, checkpoint_id: str, base_url: str
) -> tuple[dict[str, str], int]:
    """One signed URL per file of the checkpoint, any kind: a training state (adapter, optimizer
    state, tokenizer), sampler weights or external weights, downloaded whole in one step."""
    return runs.urls.sign(_folder(runs, org_id, run_id, checkpoint_id), base_url)


def check_ttl(runs: PrimitiveRuns, org_id: str, run_id: str, checkpoint_id: str, ttl_seconds: int | None) -> None:
    """Accepted for an existing checkpoint; checkpoints here are kept until deleted (not enforced)."""
    if ttl_seconds is not None and ttl_seconds <= 0:
        raise InvalidRequest("ttl_seconds must be positive (or null).", param="ttl_seconds")
    _folder(runs, org_id, run_id, checkpoint_id)


def delete(runs: PrimitiveRuns, org_id: str, run_id: str, checkpoint_id: str) -> None:
    if checkpoint_id.startswith("sampler_weights/"):
        # Sampler weights are also a served model (blob storage, the models table): that API deletes them.
        raise InvalidRequest(
            "Sampler weights are a served model: delete them with DELETE /v1/models/{their tinker:// path}.",
            param="checkpoint_id",
        )
    shutil.rmtree(_folder(runs, org_id, run_id, checkpoint_id))
