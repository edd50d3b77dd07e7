"""Serving use cases: check and tokenize a chat or completions request, run it, forget a model.

The backend runs in a process of its own (or a thread: settings.inference_engine), started with
the server (`warm_up`, settings.inference_warm_start) or on the first request; torch is imported
there, not in the server's request path. `prepare_*` do blocking work (database, copying
weights, tokenizers) and are called from a worker thread, never from the event loop.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from polytune.config import Settings
from polytune.domain.errors import InvalidRequest, NotFound
from polytune.domain.inference import ChatMessage, ChoiceDelta, GenerationParams, ServedModel, Usage
from polytune.inference import engine
from polytune.inference.backend import InferenceBackend, ModelTarget
from polytune.inference.engine import PreparedRequest
from polytune.inference.model_text import ModelText, encode_prompt, load_model_text, render_chat
from polytune.inference.weights import cache_root, drop_model_dir, fetch_model_dir
from polytune.services.models import ModelService
from polytune.store.blobs import BlobStore
from polytune.catalog.models import Catalog

_TEXT_CACHE = 64


class InferenceService:
    def __init__(
        self,
        settings: Settings,
        models: ModelService,
        catalog: Catalog,
        blobs: BlobStore,
        backend: InferenceBackend | None = None,
    ):
        self.settings, self.models, self.catalog, self.blobs = settings, models, catalog, blobs
        self._backend = backend
        self._lock = threading.Lock()
        self._texts: OrderedDict[str, tuple[ModelTarget, ModelText]] = OrderedDict()

    @property
    def backend(self) -> InferenceBackend:
        with self._lock:
            if self._backend is None:
                engine: dict[str, Any] = dict(
                    memory_budget_bytes=self.settings.inference_memory_mb * 2**20,
                    max_batch=self.settings.inference_max_batch,
                    threads=self.settings.inference_threads,
                    hand_over_interval=self.settings.stream_interval_ms / 1000,
                )
                if self.settings.inference_engine == "process":
                    from polytune.inference.process_backend import ProcessBackend

                    self._backend = ProcessBackend(**engine)
                else:
                    from polytune.inference.hf_backend import TransformersBackend

                    self._backend = TransformersBackend(**engine)
            return self._backend

    # -- preparing requests (blocking: call from a worker thread) -----------------------------
    def prepare_chat(
        self, org_id: str, model_id: str, messages: list[ChatMessage], params: GenerationParams
    ) -> PreparedRequest:
        served = self.models.resolve(org_id, model_id)
        target, text = self._load(served)
        prompt = render_chat(text, model_id, messages)
        return self._prepared(served, target, text, [prompt], params, "messages", [""])

    def prepare_completion(
        self, org_id: str, model_id: str, prompts: list[str | list[int]], params: GenerationParams
    ) -> PreparedRequest:
        served = self.models.resolve(org_id, model_id)
        target, text = self._load(served)
        param = lambda i: "prompt" if len(prompts) == 1 else f"prompt[{i}]"  # noqa: E731
        ids = [encode_prompt(text, p, param(i)) for i, p in enumerate(prompts)]
        echo = [(p if isinstance(p, str) else text.tokenizer.decode(p)) if params.echo else "" for p in prompts]
        return self._prepared(served, target, text, ids, params, "prompt", echo)

    def _prepared(
        self,
        served: ServedModel,
        target: ModelTarget,
        text: ModelText,
        prompts: list[list[int]],
        params: GenerationParams,
        prompt_param: str,
        echo: list[str],
    ) -> PreparedRequest:
        vocab = len(text.tokenizer)
        bad = next((t for t in params.logit_bias if not 0 <= t < vocab), None)
        if bad is not None:
            raise InvalidRequest(
                f"logit_bias names token {bad}, outside the vocabulary (0..{vocab - 1}).", param="logit_bias"
            )
        limit = text.context_length
        max_tokens = []
        for prompt in prompts:
            room = limit - len(prompt)
            if room <= 0:
                raise InvalidRequest(
                    f"This model's maximum context length is {limit} tokens, but the "
                    f"{prompt_param} take {len(prompt)} tokens.",
                    param=prompt_param,
                    code="context_length_exceeded",
                )
            if params.max_tokens is not None and params.max_tokens > room:
                raise InvalidRequest(
                    f"This model's maximum context length is {limit} tokens. However, you requested "
                    f"{len(prompt) + params.max_tokens} tokens ({len(prompt)} in the {prompt_param}, "
                    f"{params.max_tokens} in the completion). Please reduce the length of the "
                    f"{prompt_param} or of the completion.",
                    param=params.max_tokens_param,
                    code="context_length_exceeded",
                )
            max_tokens.append(params.max_tokens or room)
        return PreparedRequest(
            model=served,
            target=target,
            text=text,
            prompts=prompts,
            max_tokens=max_tokens,
            params=params,
            echo_texts=echo,
        )

    def _load(self, served: ServedModel) -> tuple[ModelTarget, ModelText]:
        """Where the weights are and how their text works, cached per model id."""
        with self._lock:
            if served.id in self._texts:
                self._texts.move_to_end(served.id)
                return self._texts[served.id]
        if self.catalog.get(served.base_model).kind == "image":
            raise InvalidRequest(
                f"The model '{served.id}' is an image model; generate with /images/generations.",
                param="model",
                code="model_not_supported",
            )
        if served.kind == "base":
            entry = self.catalog.get(served.id)
            folder = self.catalog.resolve_path(entry)
            options = entry.load_options
            loaded = (
                ModelTarget(served.id, folder, base_options=tuple(options.items())),
                load_model_text(folder, folder, entry.chat_template, **options),
            )
        else:
            try:
                # A model that is not a base model always has its weights' blob_key.
                folder = fetch_model_dir(
                    self.blobs,
                    cache_root(self.settings),
                    served.blob_key,  # type: ignore[arg-type]
                    max_bytes=self.settings.node_cache_bytes,
                )
            except FileNotFoundError:
                raise NotFound(
                    f"The weights of model '{served.id}' are missing from storage.",
                    param="model",
                    code="model_not_found",
                ) from None
            if served.kind == "full":
                loaded = ModelTarget(served.id, folder), load_model_text(folder, folder)
            else:
                base_entry = self.catalog.get(served.base_model)
                base, options = self.catalog.resolve_path(base_entry), base_entry.load_options
                loaded = (
                    ModelTarget(served.base_model, base, served.id, folder, base_options=tuple(options.items())),
                    load_model_text(folder, base, **options),
                )
        with self._lock:
            self._texts[served.id] = loaded
            while len(self._texts) > _TEXT_CACHE:
                self._texts.popitem(last=False)
        return loaded

    # -- running -----------------------------------------------------------------------------
    def run(self, prepared: PreparedRequest) -> AsyncIterator[ChoiceDelta | Usage]:
        return engine.run(self.backend, prepared)

    def delete_model(self, org_id: str, model_id: str) -> ServedModel:
        """Delete a fine-tuned model, and drop it from memory and from the local cache."""
        served = self.models.delete(org_id, model_id)
        self.forget(served.id)
        if served.blob_key:
            drop_model_dir(cache_root(self.settings), served.blob_key)
        return served

    def forget(self, model_id: str) -> None:
        """Drop a model from memory: its next request loads its weights again (deleted or replaced)."""
        with self._lock:
            self._texts.pop(model_id, None)
            backend = self._backend
        if backend is not None:
            backend.forget(model_id)

    def warm_up(self) -> None:
        """Start the engine process now (settings.inference_warm_start), not on the first
        request: it imports torch and transformers while nothing waits for it."""
        if self.settings.inference_engine == "process" and self.settings.inference_warm_start:
            start = getattr(self.backend, "start", None)
            if start is not None:
                start()

    def close(self) -> None:
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()
