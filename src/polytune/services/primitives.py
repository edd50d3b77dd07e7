"""The training primitives API (Tinker) as use cases: sessions and their heartbeats, training runs
(services/primitive_runs.py), sampling sessions, and the futures every call answers with.

Every call is accepted at once with a request id; its result is fetched with retrieve_future,
which waits a while for it (long polling) and else says "try again". Calls of one run execute in
their seq_id order in its worker; sampling runs on the inference backend beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from polytune.catalog.models import Catalog
from polytune.domain.errors import DomainError, InvalidRequest, NotFound, QuotaExceeded
from polytune.domain.ids import new_id
from polytune.domain.primitives import (
    STATE_META,
    AdamSettings,
    Datum,
    LoraSettings,
    SampledSequence,
    SampleSettings,
    check_datum,
    check_loss_fn,
)
from polytune.inference.backend import ModelTarget, SamplingParams, each_token
from polytune.inference.detokenize import IncrementalText
from polytune.inference.model_text import ModelText, load_model_text
from polytune.services.checkpoint_starts import saved_lora
from polytune.services.inference import InferenceService
from polytune.services.primitive_listing import folder_size
from polytune.services.primitive_losses import CustomLosses
from polytune.services.primitive_run import Run
from polytune.services.primitive_runs import PrimitiveRuns

# How long a retrieve_future waits for its result before answering "try again" (the SDK waits 45 s).
LONG_POLL_SECONDS = 20.0
_KEEP_SECONDS = 3600.0  # results nobody fetched are dropped after this long


@dataclass
class _Pending:
    org_id: str
    kind: str
    future: asyncio.Future
    created: float


@dataclass
class SamplingSession:
    org_id: str
    base_model: str
    model_path: str | None
    target: ModelTarget
    text: ModelText


class PrimitiveService:
    def __init__(self, runs: PrimitiveRuns, catalog: Catalog, inference: InferenceService):
        self.runs, self.catalog, self.inference = runs, catalog, inference
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[str, float]] = {}  # session id -> (org id, last heartbeat)
        self._sampling: dict[str, SamplingSession] = {}
        self._pending: dict[str, _Pending] = {}
        self.losses = CustomLosses()

    # -- sessions ------------------------------------------------------------------------------
    def create_session(self, org_id: str) -> str:
        session_id = new_id("sess", 16)
        with self._lock:
            self._sessions[session_id] = (org_id, time.time())
        return session_id

    def heartbeat(self, org_id: str, session_id: str) -> None:
        with self._lock:
            if self._sessions.get(session_id, ("",))[0] != org_id:
                raise NotFound(f"No session '{session_id}'.", param="session_id")
            self._sessions[session_id] = (org_id, time.time())

    def finish_session(self, org_id: str, session_id: str) -> None:
        """The client closed its session (ServiceClient.close): its runs' jobs succeed and free
        their models, as unload_model would (the runs' checkpoints stay)."""
        self.check_session(org_id, session_id)
        for model_id in self.runs.loaded_ids(org_id, f"{session_id}:"):
            with contextlib.suppress(DomainError):  # ended meanwhile
                self.runs.unload(org_id, model_id)
        with self._lock:
            self._sessions.pop(session_id, None)

    def check_session(self, org_id: str, session_id: str) -> None:
        with self._lock:
            if self._sessions.get(session_id, ("",))[0] != org_id:
                raise NotFound(f"No session '{session_id}'.", param="session_id")

    # -- futures -------------------------------------------------------------------------------
    def track(self, org_id: str, kind: str, work: Future | Awaitable) -> str:
        """A request id for `work` (call from the event loop)."""
        future = asyncio.wrap_future(work) if isinstance(work, Future) else asyncio.ensure_future(work)
        request_id = new_id("req", 20)
        cutoff = time.time() - _KEEP_SECONDS
        with self._lock:
            for rid in [r for r, p in self._pending.items() if p.created < cutoff and p.future.done()]:
                del self._pending[rid]
            self._pending[request_id] = _Pending(org_id, kind, future, time.time())
        return request_id

    async def retrieve(
        self, org_id: str, request_id: str, wait: float = LONG_POLL_SECONDS
    ) -> tuple[str, asyncio.Future] | None:
        """(kind, the finished future) once done, None while it still runs."""
        with self._lock:
            pending = self._pending.get(request_id)
        if pending is None or pending.org_id != org_id:
            raise NotFound(f"No request '{request_id}'.", param="request_id")
        # asyncio.wait neither raises the call's own failure (the route answers it as a result)
        # nor cancels the call when the wait ends.
        await asyncio.wait({pending.future}, timeout=wait)
        if not pending.future.done():
            return None
        return pending.kind, pending.future

    # -- training runs -------------------------------------------------------------------------
    def create_run(self, org_id: str, session_id: str, model_seq_id: int, base_model: str, lora: LoraSettings) -> Run:
        self.check_session(org_id, session_id)
        return self.runs.create(org_id, f"{session_id}:train:{model_seq_id}", base_model, lora)

    @staticmethod
    async def loaded(run: Run) -> str:
        """The run's model id, once its worker has loaded the model."""
        await asyncio.wrap_future(run.worker.ready)
        return run.model_id

    def create_run_from_state(
        self, org_id: str, session_id: str, model_seq_id: int, path: str, optimizer: bool
    ) -> tuple[str, Future]:
        """A new run (its model id) that starts from a saved state (the SDK's create-via-load: the
        load is the run's first call, so the calls after it count from seq_id 1)."""
        self.check_session(org_id, session_id)
        base_model, folder = self.runs.checkpoint(org_id, path)
        # The run takes the saved adapter's own peft config: a LoRA job's (path "ft:...") has its
        # job's rank, alpha and target modules, not the ones Tinker's settings would give.
        lora = saved_lora(folder)
        model_id = f"{session_id}:train:{model_seq_id}"
        try:
            run = self.runs.create(org_id, model_id, base_model, lora, adapter_dir=folder)
        except QuotaExceeded as e:
            # The SDK retries a 429 on this route for minutes (create_model's obeys x-should-retry):
            # the refusal comes back through the call's future instead, at once.
            refused: Future = Future()
            refused.set_exception(e)
            return model_id, refused
        return model_id, run.worker.submit(lambda m: (m.load_state(folder, optimizer), path)[1])

    @contextlib.contextmanager
    def _turn(self, org_id: str, model_id: str, seq_id: int | None, wait: bool = True) -> Iterator[None]:
        """A call refused before it reaches the worker still uses up its seq_id there: the calls
        after it wait for every earlier seq_id, so a missing one would stall the run for good.
        wait=False: RunBusy rather than wait (the caller repeats the whole call where it may)."""
        try:
            yield
        except DomainError:
            if seq_id is not None:
                with contextlib.suppress(DomainError):
                    self.runs.get(org_id, model_id, wait).worker.submit(lambda model: None, seq_id)
            raise

    def forward_backward(
        self,
        org_id: str,
        model_id: str,
        seq_id: int | None,
        data: list[Datum],
        loss_fn: str,
        config: dict[str, Any],
        forward_only: bool,
        wait: bool = True,
    ) -> Future:
        with self._turn(org_id, model_id, seq_id, wait):
            return self._forward_backward(org_id, model_id, seq_id, data, loss_fn, config, forward_only, wait)

    def _forward_backward(
        self,
        org_id: str,
        model_id: str,
        seq_id: int | None,
        data: list[Datum],
        loss_fn: str,
        config: dict[str, Any],
        forward_only: bool,
        wait: bool,
    ) -> Future:
        check_loss_fn(loss_fn)
        if not data:
            raise InvalidRequest("forward_backward needs at least one datum.", param="data")
        # An uploaded loss (services/primitive_losses.py) reads the inputs it declared.
        custom = self.losses.for_call(org_id, config, data) if loss_fn == "custom" else None
        if custom is None:
            for i, d in enumerate(data):
                check_datum(i, d, loss_fn)
        run = self.runs.get(org_id, model_id, wait)

        def call(model):
            result = model.forward_backward(data, loss_fn, config, forward_only, custom=custom)
            if not forward_only:  # the loss the next optimizer step's metrics event reports
                run.step_loss += result.metrics["loss:sum"]
            return result

        return run.worker.submit(call, seq_id)

    def optim_step(
        self, org_id: str, model_id: str, seq_id: int | None, adam: AdamSettings, wait: bool = True
    ) -> Future:
        with self._turn(org_id, model_id, seq_id, wait):
            if adam.learning_rate < 0:
                raise InvalidRequest("adam_params.learning_rate must be >= 0.", param="adam_params.learning_rate")
            run = self.runs.get(org_id, model_id, wait)

        def step(model):
            metrics = model.optim_step(adam)
            # The dashboard plots train_loss: the summed loss of the forward_backward calls this step applies.
            self.runs.record_step(run, {"train_loss": run.step_loss, **metrics})
            run.step_loss = 0.0
            return metrics

        return run.worker.submit(step, seq_id)

    def save_state(self, org_id: str, model_id: str, seq_id: int | None, name: str | None) -> Future:
        with self._turn(org_id, model_id, seq_id):
            run = self.runs.get(org_id, model_id)
            path, folder = self.runs.new_checkpoint(run, "weights", name)

        def save(model):
            folder.mkdir(parents=True, exist_ok=True)
            model.save_state(folder)
            return path

        return run.worker.submit(save, seq_id)

    def load_state(self, org_id: str, model_id: str, seq_id: int | None, path: str, optimizer: bool) -> Future:
        with self._turn(org_id, model_id, seq_id):
            run = self.runs.get(org_id, model_id)
            base_model, folder = self.runs.checkpoint(org_id, path)
            if base_model != run.base_model:
                raise InvalidRequest(
                    f"'{path}' was trained on {base_model}, this run on {run.base_model}.", param="path"
                )
            if not (folder / STATE_META).is_file():
                raise InvalidRequest(
                    f"'{path}' is a job's adapter: start a new run from it (create_training_client_from_state).",
                    param="path",
                )
        return run.worker.submit(lambda m: (m.load_state(folder, optimizer), path)[-1], seq_id)

    def save_for_sampler(
        self, org_id: str, model_id: str, seq_id: int | None, name: str | None, with_session: bool
    ) -> Future:
        """The adapter alone, saved; with_session: also a sampling session over it (its id is
        the result's second item)."""
        with self._turn(org_id, model_id, seq_id):
            run = self.runs.get(org_id, model_id)
            path, folder = self.runs.new_checkpoint(run, "sampler_weights", name)

        def save(model):
            folder.mkdir(parents=True, exist_ok=True)
            model.save_adapter(folder)
            self.runs.publish_sampler(run, path, folder)
            self.inference.forget(path)  # the same name saved again: serve the new weights
            session = self.create_sampling_session(org_id, path) if with_session else None
            return path, session

        return run.worker.submit(save, seq_id)

    def save_external(self, org_id: str, model_id: str, seq_id: int | None, name: str, encrypt: bool) -> Future:
        """The adapter as a plain peft folder (safetensors, adapter_config.json and the tokenizer),
        for download (external_weights_urls)."""
        with self._turn(org_id, model_id, seq_id):
            if encrypt:
                raise InvalidRequest("age encryption is not supported here.", param="age_encryption_recipients")
            run = self.runs.get(org_id, model_id)
            path, folder = self.runs.new_checkpoint(run, "external_weights", name)

        def save(model):
            folder.mkdir(parents=True, exist_ok=True)
            model.save_adapter(folder)
            return path, folder_size(folder)

        return run.worker.submit(save, seq_id)

    def get_info(self, org_id: str, model_id: str) -> Run:
        return self.runs.get(org_id, model_id)

    def unload(self, org_id: str, model_id: str) -> Run:
        return self.runs.unload(org_id, model_id)

    # -- sampling ------------------------------------------------------------------------------
    def create_sampling_session(self, org_id: str, model_path: str | None = None, base_model: str | None = None) -> str:
        """A sampler over saved sampler weights (or a run's state), or over a catalog model."""
        if model_path:
            base_model, folder = self.runs.checkpoint(org_id, model_path)
            base_dir = self.catalog.resolve_path(self.catalog.get(base_model))
            target = ModelTarget(base_model, base_dir, f"tinker:{org_id}:{model_path}", folder)
        elif base_model:
            entry = self.catalog.get(base_model)
            if entry.kind != "text":
                raise InvalidRequest(f"'{base_model}' is an image model.", param="base_model")
            base_dir = self.catalog.resolve_path(entry)
            target = ModelTarget(base_model, base_dir)
        else:
            raise InvalidRequest("A sampling session needs model_path or base_model.", param="model_path")
        text = load_model_text(target.base_dir, target.base_dir)
        session_id = new_id("samp", 16)
        with self._lock:
            self._sampling[session_id] = SamplingSession(org_id, base_model, model_path or None, target, text)
        return session_id

    def sampling_session(self, org_id: str, session_id: str) -> SamplingSession:
        with self._lock:
            session = self._sampling.get(session_id)
        if session is None or session.org_id != org_id:
            raise NotFound(f"No sampling session '{session_id}'.", param="sampling_session_id")
        return session

    def check_sample(
        self, session: SamplingSession, prompt: list[int], num_samples: int, settings: SampleSettings
    ) -> int:
        """The max_tokens the request gets; a 400 for what cannot run."""
        if not prompt:
            raise InvalidRequest("The prompt is empty.", param="prompt")
        if not 1 <= num_samples <= 128:
            raise InvalidRequest("num_samples must be between 1 and 128.", param="num_samples")
        vocab = len(session.text.tokenizer)
        if any(not 0 <= t < vocab for t in prompt):
            raise InvalidRequest(f"The prompt holds a token outside the vocabulary (0..{vocab - 1}).", param="prompt")
        room = session.text.context_length - len(prompt)
        if room <= 0 or (settings.max_tokens or 0) > room:
            raise InvalidRequest(
                f"This model's context is {session.text.context_length} tokens; the prompt takes {len(prompt)}.",
                param="sampling_params.max_tokens",
            )
        if settings.temperature < 0 or not 0 < settings.top_p <= 1:
            raise InvalidRequest("temperature must be >= 0 and top_p in (0, 1].", param="sampling_params")
        return settings.max_tokens or room

    async def sample(
        self, session: SamplingSession, prompt: list[int], num_samples: int, settings: SampleSettings
    ) -> list[SampledSequence]:
        max_tokens = self.check_sample(session, prompt, num_samples, settings)
        stops = frozenset(settings.stop_tokens) if settings.stop_tokens is not None else session.text.stop_token_ids

        async def one(i: int) -> SampledSequence:
            params = SamplingParams(
                max_tokens=max_tokens,
                temperature=settings.temperature,
                top_p=settings.top_p,
                seed=None if settings.seed is None else settings.seed + i,
                stop_token_ids=stops,
                logprobs=0,
                prompt_logprobs=settings.prompt_logprobs and i == 0,  # the same for every sample
            )
            text = IncrementalText(session.text.tokenizer, settings.stop_strings, prompt)
            tokens: list[int] = []
            logprobs: list[float] = []
            reason = "length"
            prompt_logprobs = None
            # A backend's generate is an async generator: closing it early aborts the request.
            stream = each_token(self.inference.backend.generate(new_id("gen", 16), session.target, prompt, params))
            async with contextlib.aclosing(stream):
                async for event in stream:
                    prompt_logprobs = prompt_logprobs or event.prompt_logprobs
                    tokens.append(event.token_id)
                    logprobs.append(float(event.logprob or 0.0))
                    if settings.stop_strings:
                        text.add(event.token_id)
                        if text.stopped:
                            reason = "stop"
                            break
                    if event.finish_reason:
                        reason = event.finish_reason
                        break
            return SampledSequence(tokens, logprobs, reason, prompt_logprobs)

        return list(await asyncio.gather(*(one(i) for i in range(num_samples))))

    def close(self) -> None:
        self.runs.close()
