"""Starting training from a checkpoint, across the two kinds of training polytune runs:

- a supervised / DPO job (any job API) whose `model` is a Tinker checkpoint
  (`tinker://<job>/weights/<name>` or `.../sampler_weights/<name>`) or one of the organization's
  LoRA fine-tuned models or checkpoints (`ft:...`): the job trains on the checkpoint's base model,
  starting from its adapter (`JobStarts.job_spec`);
- a Tinker training run created from a LoRA job's model or checkpoint id
  (`create_training_client_from_state("ft:...")`: `job_adapter`).

Another organization's checkpoint is a 404 either way, like any of its resources.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from polytune.catalog.stored import model_folder
from polytune.domain.errors import InvalidRequest, NotFound
from polytune.domain.primitives import STATE_META, LoraSettings
from polytune.domain.ids import new_id
from polytune.domain.spec import FROM_CHECKPOINT, AdapterSpec, JobSpec, LoraSpec
from polytune.store import tables as t
from polytune.store.blobs import BlobStore
from polytune.store.db import Database

if TYPE_CHECKING:
    from polytune.services.primitive_runs import PrimitiveRuns

# The output layer's usual module names: LoRA there is a LoRA TRL's trainers refuse to train.
_UNEMBEDDING = {"lm_head", "embed_out"}
# Files of a Tinker state a job has no use for (the Tinker run's AdamW state).
_SKIP = {"optimizer.pt"}
# Where the copies of Tinker states that jobs start from are kept in blob storage.
_COPIES = "starts/"
# The methods whose jobs start from a checkpoint (recipes/common.py's starting_model).
STARTABLE = ("supervised", "dpo")


def is_checkpoint_id(model: str) -> bool:
    """Ids that name a checkpoint rather than a catalog model."""
    return model.startswith(("tinker://", "ft:"))


def _lora_row(db: Database, org_id: str, model_id: str, param: str = "model") -> t.Model:
    with db.session() as s:
        row = s.scalar(
            sa.select(t.Model).where(t.Model.id == model_id, t.Model.org_id == org_id, t.Model.deleted_at.is_(None))
        )
    if row is None:
        raise NotFound(f"No model or checkpoint '{model_id}'.", param=param, code="model_not_found")
    if row.kind != "lora":
        raise InvalidRequest(
            f"'{model_id}' is a full fine-tune; only LoRA checkpoints can start another training run.", param=param
        )
    return row


def job_adapter(
    db: Database, blobs: BlobStore | None, cache: Path, org_id: str, model_id: str, param: str = "model"
) -> tuple[str, Path]:
    """The base model and local adapter folder of an organization's LoRA model or checkpoint."""
    row = _lora_row(db, org_id, model_id, param)
    folder = model_folder(blobs, row.blob_key, cache) if blobs is not None else None
    if folder is None:
        raise NotFound(f"The weights of '{model_id}' are gone from storage.", param=param, code="model_not_found")
    return row.base_model, folder


class JobStarts:
    """What JobService.create asks before its checks: a spec naming a checkpoint as its model
    becomes a spec of its base model that starts from the checkpoint's adapter."""

    def __init__(self, db: Database, blobs: BlobStore, runs: PrimitiveRuns):
        self.db, self.blobs, self.runs = db, blobs, runs

    def job_spec(self, org_id: str, spec: JobSpec) -> JobSpec:
        if not is_checkpoint_id(spec.model):
            return spec
        if spec.method.type not in STARTABLE:
            # Said here, before the catalog's "not in the model catalog", which reads as if the
            # checkpoint were unknown.
            raise InvalidRequest(
                f"A {spec.method.type} job cannot start from a checkpoint ('{spec.model}'): its model must be "
                f"a model of the catalog. Only {' and '.join(STARTABLE)} jobs start from a checkpoint.",
                param="model",
                code="model_not_startable",
            )
        if spec.model.startswith("tinker://"):
            try:
                base_model, folder = self.runs.checkpoint(org_id, spec.model)
            except NotFound as e:  # the same refusal, naming this API's field
                raise NotFound(e.message, param="model", code="model_not_found") from None
            except InvalidRequest as e:
                raise InvalidRequest(e.message, param="model") from None
            config = _adapter_config(folder, spec.model)
            return _started(spec, base_model, self._store(folder), config)
        row = _lora_row(self.db, org_id, spec.model)
        with tempfile.TemporaryDirectory() as tmp:
            config = _adapter_config(model_folder(self.blobs, row.blob_key, Path(tmp)) or Path(tmp), spec.model)
        return _started(spec, row.base_model, row.blob_key, config)

    def base_model(self, org_id: str, model: str) -> str:
        """The catalog model a job named by `model` trains on (a 404 naming `model` for a checkpoint
        the organization lacks): what a dialect reads the model's context length from."""
        if not is_checkpoint_id(model):
            return model
        if model.startswith("ft:"):
            return _lora_row(self.db, org_id, model).base_model
        try:
            return self.runs.checkpoint(org_id, model)[0]
        except NotFound as e:
            raise NotFound(e.message, param="model", code="model_not_found") from None
        except InvalidRequest as e:
            raise InvalidRequest(e.message, param="model") from None

    def discard(self, spec: JobSpec) -> None:
        """Remove the copy job_spec made for a job that was then refused (a job started from an
        organization's own model fetches that model's blob, which stays)."""
        start = spec.extras.get(FROM_CHECKPOINT)
        key = start.get("blob_key") if isinstance(start, dict) else None
        if isinstance(key, str) and key.startswith(_COPIES):
            self.blobs.delete(key)

    def _store(self, folder: Path) -> str:
        """A copy of the Tinker checkpoint in blob storage, where any worker can fetch it (the
        Tinker folder lies on the API server's disk and may be saved over under the same name)."""
        key = f"{_COPIES}{new_id('ckpt', 16)}"
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "adapter"
            shutil.copytree(folder, copy, ignore=lambda _dir, names: [n for n in names if n in _SKIP])
            self.blobs.put_dir(copy, key)
        return key


def _adapter_config(folder: Path, model_id: str) -> dict:
    path = folder / "adapter_config.json"
    if not path.is_file():
        raise InvalidRequest(f"'{model_id}' holds no LoRA adapter.", param="model")
    return json.loads(path.read_text())


def _started(spec: JobSpec, base_model: str, key: str, config: dict) -> JobSpec:
    """The job trains the checkpoint's own adapter further (its rank, alpha and target modules,
    whatever the request said); a full fine-tune starts from the adapter merged into the base."""
    adapter = spec.adapter
    targets = config.get("target_modules") or "all-linear"
    if adapter.kind != "full" and isinstance(targets, list) and _UNEMBEDDING & set(targets):
        raise InvalidRequest(
            f"'{spec.model}' has LoRA on the unembedding (lm_head: Tinker's train_unembed, on by default), "
            "which TRL's trainers cannot train as an adapter (they compute log-probabilities from "
            "lm_head.weight directly). Start the job as a full fine-tune (hyperparameters.lora: false; the "
            "adapter is merged into the base first), or save the checkpoint from a run created with "
            "train_unembed=False.",
            param="model",
        )
    if adapter.kind != "full":
        lora = LoraSpec(
            r=int(config.get("r", adapter.lora.r)),
            alpha=int(config.get("lora_alpha", adapter.lora.alpha)),
            dropout=float(config.get("lora_dropout") or 0.0),
            target_modules=sorted(targets) if isinstance(targets, list) else targets,
        )
        adapter = AdapterSpec(kind="lora", lora=lora, quantization=adapter.quantization)
    extras = {**spec.extras, FROM_CHECKPOINT: {"model": spec.model, "blob_key": key}}
    return spec.model_copy(update={"model": base_model, "adapter": adapter, "extras": extras})


def saved_lora(folder: Path) -> LoraSettings:
    """A Tinker state's settings; a job's adapter (no Tinker metadata): its rank."""
    if (folder / STATE_META).is_file():
        return LoraSettings(**json.loads((folder / STATE_META).read_text())["lora"])
    return LoraSettings(rank=int(json.loads((folder / "adapter_config.json").read_text())["r"]))
