"""The model catalog: which base models a job may start from, and their training defaults.

polytune-tiny is always there (built offline on first use). Operators add local model
folders with `Catalog.add`, persisted to `<data dir>/models.json`; an entry whose source is
a hub id (hand-written in that file) is loaded by transformers like any hub model, which
fails cleanly when the hub is unreachable.
"""

from __future__ import annotations

import builtins
import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from polytune.config import Settings
from polytune.domain.errors import InvalidRequest
from polytune.domain.names import check_model_name
from polytune.catalog.tiny import TINY_NAME, ensure_tiny
from polytune.catalog.tiny_diffusion import RESOLUTION, T5_MAX_LENGTH, TINY_DIFFUSION_NAME, ensure_tiny_diffusion
from polytune.catalog.tiny_unet import TINY_UNET_NAME, ensure_tiny_unet
from polytune.store.blobs import BlobStore

AdapterKind = Literal["full", "lora"]
ModelKind = Literal["text", "image"]
Scheduler = Literal["constant", "linear", "cosine"]
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    # An absolute local folder, or a hub id such as "org/model".
    source: str
    adapter_default: AdapterKind = "lora"
    # The learning rate that learning_rate_multiplier 1.0 means for this model.
    base_learning_rate: float = 2e-4
    lr_scheduler: Scheduler = "linear"
    # The context length jobs train at unless they set one: the model's window from its config
    # when added (model_source.py), or what the operator chose with --max-length.
    max_length: int = 1024
    # None: use the tokenizer's own template.
    chat_template: str | None = None
    # The "auto" epoch rule shows the model at least this many examples in total (small
    # datasets get more epochs), but never more than max_auto_epochs epochs.
    min_examples_seen: int = 100
    max_auto_epochs: int = 25
    # LoRA leaves embeddings frozen; a model that has not learned its embeddings yet
    # (random init) needs them trained alongside the adapter to learn anything.
    lora_train_embeddings: bool = False
    # "image": a diffusers text-to-image pipeline folder (model_index.json), trained by the
    # image_generation method and served by /v1/images/generations; the fields below are its.
    kind: ModelKind = "text"
    # Native resolution (pixels per side) for training and generation.
    image_size: int = 1024
    # Text tokens per prompt (FluxPipeline's max_sequence_length): train and sample alike.
    max_sequence_length: int = 512
    # Denoising steps per generated image.
    sample_steps: int = 28
    # Classifier-free guidance when generating; None: the pipeline's own default.
    guidance_scale: float | None = None
    # A hub id's pinned revision (branch, tag or commit); None: the default branch.
    revision: str | None = None
    # The operator's explicit opt-in to run the model's own code (config.json's auto_map).
    trust_remote_code: bool = False
    # The blob key of the copy `add` stored of a local folder (catalog/stored.py): workers on any
    # node load that, so `source` is only where it was added from.
    stored: str | None = None

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_absolute()

    @property
    def load_options(self) -> dict[str, Any]:
        """What every from_pretrained of this model takes besides its path: the pinned revision
        and the remote-code opt-in (only when set, so local folders load as before)."""
        return {
            **({"revision": self.revision} if self.revision else {}),
            **({"trust_remote_code": True} if self.trust_remote_code else {}),
        }


# Measured on 2 CPU cores with the 25 made-up facts of examples/qa.jsonl: full fine-tuning
# with a constant schedule at 3e-3 (batch 8) or 2e-3 (batch 4) learns them; 5e-3 does not,
# and linear or cosine decay learns less in the same steps. A random-init model must see
# each example ~50 times (40 epochs left some seeds at 20/25), hence min_examples_seen.
_TINY_DEFAULTS: dict[str, Any] = dict(
    adapter_default="full",
    base_learning_rate=3e-3,
    lr_scheduler="constant",
    max_length=1024,
    min_examples_seen=1200,
    max_auto_epochs=100,
    lora_train_embeddings=True,
)


# Measured on 2 CPU cores: LoRA at 1e-3, batch 4 turns generated colours to the training
# colour within a few hundred steps (docs/images.md); 20 denoising steps give clean samples.
_TINY_DIFFUSION_DEFAULTS: dict[str, Any] = dict(
    kind="image",
    adapter_default="lora",
    base_learning_rate=1e-3,
    lr_scheduler="constant",
    image_size=RESOLUTION,
    max_sequence_length=T5_MAX_LENGTH,
    sample_steps=20,
)
# The UNet counterpart, same autoencoder and text encoder: it trains without dropping captions,
# so it generates without classifier-free guidance (scale 1), as its samples while training do.
_TINY_UNET_DEFAULTS: dict[str, Any] = dict(_TINY_DIFFUSION_DEFAULTS, guidance_scale=1.0)
# The pipeline class of each built-in image model, known before it is built.
BUILT_IN_PIPELINES = {TINY_DIFFUSION_NAME: "FluxPipeline", TINY_UNET_NAME: "StableDiffusionPipeline"}


class Catalog:
    def __init__(
        self, data_dir: Path, blobs: BlobStore | None = None, *, check_seconds: float = 0.0, cache_bytes: int = 0
    ):
        """`data_dir` is this node's own (built-in models, a cache of stored ones, pruned to
        `cache_bytes`: store/node_cache.py). With `blobs`, the added entries and their files live
        in blob storage, the same for every node, read again only when they change
        (stored.StoredCatalog, `check_seconds` there); without, in `<data_dir>/models.json` and the
        folders they were added from."""
        from polytune.catalog.stored import StoredCatalog

        self.data_dir = Path(data_dir)
        self.blobs = blobs
        self.cache_bytes = cache_bytes
        self._stored = StoredCatalog(blobs, check_seconds) if blobs is not None else None
        self._file = self.data_dir / "models.json"
        self._tiny = CatalogEntry(name=TINY_NAME, source=str(self.data_dir / "models" / TINY_NAME), **_TINY_DEFAULTS)
        self._tiny_diffusion = CatalogEntry(
            name=TINY_DIFFUSION_NAME,
            source=str(self.data_dir / "models" / TINY_DIFFUSION_NAME),
            **_TINY_DIFFUSION_DEFAULTS,
        )
        self._tiny_unet = CatalogEntry(
            name=TINY_UNET_NAME, source=str(self.data_dir / "models" / TINY_UNET_NAME), **_TINY_UNET_DEFAULTS
        )

    @classmethod
    def for_settings(cls, settings: Settings, blobs: BlobStore | None) -> Catalog:
        return cls(
            settings.resolved_data_dir,
            blobs,
            check_seconds=settings.catalog_check_seconds,
            cache_bytes=settings.node_cache_bytes,
        )

    def get(self, name: str) -> CatalogEntry:
        for entry in self.list():
            if entry.name == name:
                return entry
        known = ", ".join(e.name for e in self.list())
        raise InvalidRequest(
            f"The model '{name}' is not in the model catalog (available: {known}).",
            param="model",
            code="model_not_found",
        )

    def list(self) -> list[CatalogEntry]:
        return [self._tiny, self._tiny_diffusion, self._tiny_unet, *self._load_added()]

    def add(
        self, name: str, source: Path | str, *, revision: str | None = None, trust_remote_code: bool = False, **defaults
    ) -> CatalogEntry:
        """Add a model under `name`: a local folder (config.json, a tokenizer, weights) or a hub id
        (at `revision`). Only its config and tokenizer are read, never its weights; a text model's
        max_length defaults to its context window (model_source.py).

        `defaults` are CatalogEntry fields (adapter_default, base_learning_rate, max_length, ...).
        """
        from polytune.catalog.model_source import inspect, is_local

        check_model_name(name)
        if name in (TINY_NAME, TINY_DIFFUSION_NAME, TINY_UNET_NAME):
            raise InvalidRequest(f"'{name}' is built in and cannot be replaced.", param="model")
        local = is_local(source)
        where = str(Path(source).expanduser().resolve()) if local else str(source)
        if defaults.get("kind") == "image":
            if not local:
                raise InvalidRequest("Image models are added from a local diffusers folder.", param="model")
            if not (Path(where) / "model_index.json").is_file():
                raise InvalidRequest(
                    f"{where} has no model_index.json; expected a diffusers pipeline folder.", param="model"
                )
        else:
            if (
                local
                and (Path(where) / "config.json").is_file()
                and not any((Path(where) / f).is_file() for f in _TOKENIZER_FILES)
            ):
                raise InvalidRequest(f"{where} has no tokenizer (one of {', '.join(_TOKENIZER_FILES)}).", param="model")
            info = inspect(where, revision=revision, trust_remote_code=trust_remote_code)
            asked = defaults.get("max_length")
            if asked is not None and not 0 < asked <= info.context_window:
                raise InvalidRequest(
                    f"max_length {asked} is outside the model's context window (1 to {info.context_window}).",
                    param="max_length",
                )
            defaults.setdefault("max_length", info.context_window)
        if local and self.blobs is not None:
            from polytune.catalog.stored import upload_model

            defaults["stored"] = upload_model(self.blobs, name, Path(where))
        entry = CatalogEntry(
            name=name, source=where, revision=revision, trust_remote_code=trust_remote_code, **defaults
        )
        before = [e for e in self._load_added() if e.name == name]
        self._save_added([e for e in self._load_added() if e.name != name] + [entry])
        if self.blobs is not None:
            for old in before:  # a replaced model's stored copy (its own key) is no longer named
                if old.stored is not None and old.stored != entry.stored:
                    self.blobs.delete(old.stored)
        return entry

    def resolve_path(self, entry: CatalogEntry, *, keep: bool = False) -> Path | str:
        """Where transformers loads the entry from: a local folder, or the hub id itself.
        `keep`: a node's cached copy of a stored model stays held in use by this process until
        it ends (a training worker; store/node_cache.py), never pruned meanwhile.

        A hub id is checked by loading its config, so an unreachable hub (HF_HUB_OFFLINE,
        no cache) is an InvalidRequest on `model` when the job is created, not a crash later.
        """
        if entry.name == TINY_NAME:
            return ensure_tiny(self.data_dir / "models")
        if entry.name == TINY_DIFFUSION_NAME:
            return ensure_tiny_diffusion(self.data_dir / "models")
        if entry.name == TINY_UNET_NAME:
            return ensure_tiny_unet(self.data_dir / "models")
        if entry.is_local:
            folder = Path(entry.source)
            if entry.stored is not None and self.blobs is not None:
                from polytune.catalog.stored import model_folder

                cache = self.data_dir / "cache"
                folder = model_folder(self.blobs, entry.stored, cache, max_bytes=self.cache_bytes, keep=keep) or folder
            if not (folder / ("model_index.json" if entry.kind == "image" else "config.json")).is_file():
                raise InvalidRequest(
                    f"The model '{entry.name}' points at {folder}, which is not a model folder (any more).",
                    param="model",
                )
            return folder
        try:
            if entry.kind == "image":
                from diffusers import DiffusionPipeline

                DiffusionPipeline.load_config(entry.source)
            else:
                from transformers import AutoConfig

                AutoConfig.from_pretrained(entry.source, **entry.load_options)
        except (OSError, ValueError) as e:
            raise InvalidRequest(
                f"The model '{entry.name}' ({entry.source}) cannot be loaded: {e}", param="model"
            ) from e
        return entry.source

    def pipeline_class(self, entry: CatalogEntry) -> str:
        """An image model's pipeline class (model_index.json's `_class_name`), without building
        a built-in one; a hub id unreachable is a 400 on `model`."""
        if entry.name in BUILT_IN_PIPELINES:
            return BUILT_IN_PIPELINES[entry.name]
        from polytune.catalog.pipelines import pipeline_class_name

        try:
            return pipeline_class_name(entry.source)
        except (OSError, KeyError, ValueError) as e:
            raise InvalidRequest(
                f"The model '{entry.name}' ({entry.source}) has no readable model_index.json: {e}", param="model"
            ) from e

    def _load_added(self) -> builtins.list[CatalogEntry]:
        # A store without a catalog yet starts from this node's file (models added before).
        raw = self._stored.entries() if self._stored is not None else None
        if raw is None:
            try:
                raw = json.loads(self._file.read_text())
            except FileNotFoundError:
                return []
        known = {f.name for f in fields(CatalogEntry)}
        # Unknown keys are dropped so a file written by a newer polytune still loads.
        return [CatalogEntry(**{k: v for k, v in item.items() if k in known}) for item in raw]

    def _save_added(self, entries: builtins.list[CatalogEntry]) -> None:
        if self._stored is not None:
            self._stored.write([asdict(e) for e in entries])
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".models-", suffix=".json", dir=self.data_dir)
        with os.fdopen(fd, "w") as f:
            json.dump([asdict(e) for e in entries], f, indent=2)
        os.replace(tmp, self._file)
