"""Image generation use cases: check a request against its model, generate, keep the PNGs a
URL response points at (for an hour, as OpenAI's image URLs last)."""

from __future__ import annotations

import io
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from polytune.config import Settings, cpu_threads
from polytune.domain.errors import InvalidRequest, NotFound
from polytune.inference.weights import cache_root, fetch_model_dir
from polytune.services.models import ModelService
from polytune.store.blobs import BlobStore
from polytune.catalog.pipelines import call_kwargs, objective_family
from polytune.catalog.models import Catalog

if TYPE_CHECKING:
    from polytune.inference.images import ImagePipelines

URL_LIFETIME_SECONDS = 3600
MAX_IMAGES = 10
MAX_SIDE = 2048


@dataclass
class GeneratedImage:
    png: bytes
    id: str | None = None  # set when kept for a URL


class ImageService:
    def __init__(self, settings: Settings, models: ModelService, catalog: Catalog, blobs: BlobStore):
        self.settings, self.models, self.catalog, self.blobs = settings, models, catalog, blobs
        self._pipelines: ImagePipelines | None = None
        self._lock = threading.Lock()

    @property
    def pipelines(self):
        with self._lock:
            if self._pipelines is None:
                from polytune.inference.images import ImagePipelines

                threads = cpu_threads(self.settings.inference_threads)
                self._pipelines = ImagePipelines(threads=threads)
            return self._pipelines

    def generate(
        self, org_id: str, model_id: str, prompt: str, *, n: int, size: str, seed: int | None, keep: bool
    ) -> list[GeneratedImage]:
        """Blocking: call from a worker thread."""
        served = self.models.resolve(org_id, model_id)
        entry = self.catalog.get(served.base_model)
        if entry.kind != "image":
            raise InvalidRequest(
                f"The model '{model_id}' is a text model; /images/generations needs an image "
                f"model (in the catalog: {', '.join(e.name for e in self.catalog.list() if e.kind == 'image')}).",
                param="model",
                code="model_not_supported",
            )
        if not prompt.strip():
            raise InvalidRequest("prompt must not be empty.", param="prompt")
        if not 1 <= n <= MAX_IMAGES:
            raise InvalidRequest(f"n must be between 1 and {MAX_IMAGES}, got {n}.", param="n")
        width, height = _size(size, entry.image_size)
        base = self.catalog.resolve_path(entry)
        weights = None
        if served.kind != "base":
            try:
                # A model that is not a base model always has its weights' blob_key.
                weights = fetch_model_dir(
                    self.blobs,
                    cache_root(self.settings),
                    served.blob_key,  # type: ignore[arg-type]
                    max_bytes=self.settings.node_cache_bytes,
                )
            except FileNotFoundError:
                raise NotFound(
                    f"The weights of model '{model_id}' are missing from storage.",
                    param="model",
                    code="model_not_found",
                ) from None
        images = self.pipelines.generate(
            served.id,
            served.kind,
            base,
            weights,
            prompt,
            n=n,
            width=width,
            height=height,
            steps=entry.sample_steps,
            call_kwargs=call_kwargs(objective_family(self.catalog.pipeline_class(entry)), entry),
            seed=seed if seed is not None else secrets.randbelow(2**31),
        )
        out = []
        for image in images:
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            generated = GeneratedImage(buf.getvalue())
            if keep:
                generated.id = f"img-{int(time.time())}-{secrets.token_urlsafe(24)}"
                with self.blobs.writer(f"images/{generated.id}.png") as f:
                    f.write(generated.png)
            out.append(generated)
        return out

    def read(self, image_id: str) -> bytes:
        """A kept image by its (unguessable) id, within its lifetime; the id is the credential."""
        parts = image_id.split("-", 2)
        if len(parts) != 3 or parts[0] != "img" or not parts[1].isdigit():
            raise NotFound("No such image.", param="image_id")
        key = f"images/{image_id}.png"
        if time.time() - int(parts[1]) > URL_LIFETIME_SECONDS:
            self.blobs.delete(key)
            raise NotFound("This image URL has expired.", param="image_id", code="image_expired")
        try:
            return b"".join(self.blobs.iter_chunks(key))
        except FileNotFoundError:
            raise NotFound("No such image.", param="image_id") from None


def _size(size: str, native: int) -> tuple[int, int]:
    """ "auto" (the model's native square) or "<width>x<height>", each a multiple of 16."""
    if size == "auto":
        return native, native
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise InvalidRequest(f"size must be 'auto' or '<width>x<height>', got '{size}'.", param="size") from None
    if not (16 <= width <= MAX_SIDE and 16 <= height <= MAX_SIDE) or width % 16 or height % 16:
        raise InvalidRequest(
            f"size {size}: width and height must be multiples of 16 between 16 and {MAX_SIDE}.", param="size"
        )
    return width, height
