"""Downloads of a fine-tuned model or checkpoint, in the form the caller asks for:

- `adapter`: a LoRA fine-tune's adapter as it was saved (peft's folder for a text model,
  diffusers' `pytorch_lora_weights.safetensors` for an image model), as a tar;
- `merged`: full weights in safetensors that load with no peft (a LoRA merged into its base
  with peft's `merge_and_unload`; a full fine-tune as it is), as a tar;
- `gguf`: one GGUF file for llama.cpp / Ollama, for the architectures inference/gguf_export.py
  converts.

Each artifact is built once, on its first request, and kept in blob storage next to the model
(`exports/<blob key>/<format>`), so later downloads, and resumed ones, stream the same bytes;
it goes when the model is deleted (ModelService.delete removes them too)."""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from polytune.config import Settings
from polytune.domain.errors import InvalidRequest, NotFound
from polytune.domain.inference import ServedModel
from polytune.inference.weights import cache_root, fetch_model_dir
from polytune.services.models import ModelService
from polytune.store.blobs import BlobStore
from polytune.catalog.models import Catalog

FORMATS = ("adapter", "merged", "gguf")
_SUFFIX = {"adapter": ".tar", "merged": ".tar", "gguf": ".gguf"}


@dataclass(frozen=True)
class Export:
    blob_key: str
    size: int
    filename: str
    media_type: str


def export_key(blob_key: str, fmt: str) -> str:
    return f"exports/{blob_key}/{fmt}{_SUFFIX[fmt]}"


class ModelExportService:
    def __init__(self, settings: Settings, models: ModelService, catalog: Catalog, blobs: BlobStore):
        self.settings, self.models, self.catalog, self.blobs = settings, models, catalog, blobs
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def default_format(self, served: ServedModel) -> str:
        return "adapter" if served.kind == "lora" else "merged"

    def prepare(self, org_id: str, model_id: str, fmt: str | None) -> Export:
        """The stored artifact for `model_id` in `fmt` (built now if it is the first request).
        Blocking: call from a worker thread."""
        served = self._served(org_id, model_id)
        fmt = fmt or self.default_format(served)
        self._check(served, fmt)
        key = export_key(served.blob_key or "", fmt)
        with self._lock_for(key):
            if not self.blobs.exists(key):
                self._build(served, fmt, key)
        short = served.id.replace(":", "-").replace("/", "-")
        return Export(
            key,
            self.blobs.size(key),
            f"{short}-{fmt}{_SUFFIX[fmt]}",
            "application/x-tar" if fmt != "gguf" else "application/octet-stream",
        )

    def open(self, export: Export) -> BinaryIO:
        return self.blobs.open(export.blob_key)

    # -- what may be asked -----------------------------------------------------------------------
    def _served(self, org_id: str, model_id: str) -> ServedModel:
        if model_id in {e.name for e in self.catalog.list()}:
            raise InvalidRequest(
                f"'{model_id}' is a base model of the catalog; downloads are of fine-tuned models and checkpoints.",
                param="model",
                code="model_not_downloadable",
            )
        self.models.get(org_id, model_id)  # 404 for another organization's model, as everywhere
        served = self.models.resolve(org_id, model_id)
        if not served.blob_key:
            raise NotFound(
                f"The weights of model '{model_id}' are missing from storage.", param="model", code="model_not_found"
            )
        return served

    def _check(self, served: ServedModel, fmt: str) -> None:
        if fmt not in FORMATS:
            raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}; got '{fmt}'.", param="format")
        image = self.catalog.get(served.base_model).kind == "image"
        if fmt == "adapter" and served.kind != "lora":
            raise InvalidRequest(
                f"The model '{served.id}' is a full fine-tune: it has no adapter. Download "
                "format=merged (its full weights) instead.",
                param="format",
                code="format_not_available",
            )
        if image and fmt != "adapter":
            raise InvalidRequest(
                f"format={fmt} is not available for image models; download format=adapter "
                "(LoRA weights in diffusers' format, for pipeline.load_lora_weights).",
                param="format",
                code="format_not_available",
            )
        if fmt == "gguf":
            from polytune.inference.gguf_export import unsupported

            base = Path(self.catalog.resolve_path(self.catalog.get(served.base_model)))
            reason = unsupported(base if served.kind == "lora" else self._folder(served))
            if reason is not None:
                raise InvalidRequest(
                    f"format=gguf is not available for '{served.id}': {reason}. Download "
                    "format=merged and convert it with llama.cpp's convert_hf_to_gguf.py.",
                    param="format",
                    code="format_not_available",
                )

    # -- building (once per model and format) ----------------------------------------------------
    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _folder(self, served: ServedModel) -> Path:
        try:
            return fetch_model_dir(
                self.blobs, cache_root(self.settings), served.blob_key or "", max_bytes=self.settings.node_cache_bytes
            )
        except FileNotFoundError:
            raise NotFound(
                f"The weights of model '{served.id}' are missing from storage.", param="model", code="model_not_found"
            ) from None

    def _build(self, served: ServedModel, fmt: str, key: str) -> None:
        from polytune.inference.export import merge_adapter, write_tar

        folder = self._folder(served)
        cache_root(self.settings).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_root(self.settings)) as tmp:
            source = folder  # the adapter as saved, or a full fine-tune's weights
            if fmt != "adapter" and served.kind == "lora":
                base = self.catalog.resolve_path(self.catalog.get(served.base_model))
                source = merge_adapter(base, folder, Path(tmp) / "merged")
            # Written under a temporary name and moved into place (BlobStore.writer): a reader,
            # or a download resumed later, never sees half an artifact.
            with self.blobs.writer(key) as out:
                if fmt == "gguf":
                    from polytune.inference.gguf_export import write_gguf

                    path = write_gguf(source, Path(tmp) / "model.gguf", served.id)
                    with path.open("rb") as f:
                        while chunk := f.read(1 << 20):
                            out.write(chunk)
                else:
                    write_tar(source, out)
