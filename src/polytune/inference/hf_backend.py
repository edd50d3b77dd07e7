"""The transformers backend: one engine thread runs every model (in the engine process by
default, engine_process.py; in the API server's with POLYTUNE_INFERENCE_ENGINE=thread).

Requests arrive through an inbox (`generate` from an event loop, `submit` from the engine
process's reader); the engine thread loads what they need (ModelPool), and each turn of its
loop advances every loaded model by one step: newcomers are prefilled and joined to the model's
running batch, then every row gets its next token. Tokens go to each request's `emit` (a
HandOver for `generate`). All torch work and every change to the models happens on this one
thread, so a request's adapter choice can't be changed under it by another.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from polytune.config import cpu_threads
from polytune.inference.backend import ModelTarget, NonFiniteModel, SamplingParams, TokenEvent, TokenStream, ends_stream
from polytune.inference.hand_over import HandOver
from polytune.inference.model_pool import LoadedModel, ModelPool
from polytune.inference.running_batch import RunningBatch
from polytune.inference.sampling import RowSampler, choose

log = logging.getLogger("polytune.inference")


@dataclass
class _Sequence:
    request_id: str
    target: ModelTarget
    prompt: list[int]
    params: SamplingParams
    emit: Callable[[TokenEvent | BaseException], None]
    model: LoadedModel | None = None
    adapter: str | None = None
    sampler: RowSampler | None = None
    pending: int = 0  # the last generated token, fed at the next step
    position: int = 0  # the position id of `pending`
    generated: int = 0
    aborted: bool = False
    done: bool = field(default=False)
    prompt_logprobs: tuple[float, ...] | None = None


class TransformersBackend:
    def __init__(
        self,
        *,
        memory_budget_bytes: int,
        max_batch: int = 16,
        device: str | None = None,
        threads: int = 0,
        hand_over_interval: float = 0.0,
        on_turn: Callable[[], None] | None = None,
    ):
        self.hand_over_interval = hand_over_interval  # seconds (see `generate`)
        # Called on the engine thread after each turn of its loop (every step, every command
        # handled): the engine process sends what its requests were handed there.
        self.on_turn = on_turn
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.max_batch = max_batch
        self.threads = cpu_threads(threads)
        self._pool = ModelPool(memory_budget_bytes, self.device)
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._sequences: dict[str, _Sequence] = {}
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stats: dict[str, Any] = self._pool.stats()
        self._pool_changed = False  # something loaded, released or forgotten since `_stats`
        self._closed = False

    # -- the interface (called from the event loop) ------------------------------------------
    async def generate(
        self, request_id: str, target: ModelTarget, prompt_ids: list[int], params: SamplingParams
    ) -> AsyncGenerator[list[TokenEvent], None]:
        # Tokens cross from the engine thread a few at a time (hand_over.py).
        tokens: HandOver[TokenEvent | BaseException] = HandOver(asyncio.get_running_loop(), self.hand_over_interval)

        def emit(event: TokenEvent | BaseException) -> None:
            try:
                tokens.put(event, last=ends_stream(event))
            except RuntimeError:  # the caller's event loop is gone; so is the caller
                self._inbox.put(("abort", request_id))

        self.submit(request_id, target, prompt_ids, params, emit)
        stream = TokenStream(tokens)
        try:
            async for events in stream.events():
                yield events
        finally:
            if not stream.ended:
                self.abort(request_id)

    def submit(
        self,
        request_id: str,
        target: ModelTarget,
        prompt_ids: list[int],
        params: SamplingParams,
        emit: Callable[[TokenEvent | BaseException], None],
    ) -> None:
        """Start a request whose tokens (or error) the engine thread hands to `emit`, one call
        each; the last is an event with a finish_reason, or an exception. `generate` is this
        for an asyncio caller; the engine process (engine_process.py) calls it directly."""
        self._post(("submit", _Sequence(request_id, target, list(prompt_ids), params, emit=emit)))

    def abort(self, request_id: str) -> None:
        self._post(("abort", request_id))

    def forget(self, key: str) -> None:
        self._post(("forget", key))

    def stats(self) -> dict[str, Any]:
        return dict(self._stats)

    def close(self) -> None:
        self._closed = True
        self._inbox.put(("close", None))
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _post(self, command: tuple) -> None:
        if self._closed:
            raise RuntimeError("the inference backend is closed")
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="polytune-inference", daemon=True)
                self._thread.start()
        self._inbox.put(command)

    # -- the engine thread -------------------------------------------------------------------
    def _run(self) -> None:
        if self.device.type == "cpu":
            torch.set_num_threads(self.threads)  # this thread's kernels; the event loop keeps its own
        with torch.inference_mode():
            while True:
                working = any(m.waiting or len(m.batch) for m in self._pool.models.values())
                if not self._drain(block=not working):
                    return
                for model in list(self._pool.models.values()):
                    if model.waiting or len(model.batch):
                        try:
                            self._step(model)
                        except Exception as e:  # noqa: BLE001 - fail this model's requests, keep serving
                            log.exception("inference step failed on %s", model.key)
                            self._fail_all(model, e)
                if self._pool_changed:  # not every step: at one stream a step is one token
                    self._pool_changed = False
                    self._stats = self._pool.stats()
                if self.on_turn is not None:
                    self.on_turn()

    def _drain(self, block: bool) -> bool:
        """Handle queued commands (waiting for one if `block`); False once closed."""
        while True:
            try:
                kind, arg = self._inbox.get(block=block)
            except queue.Empty:
                return True
            block = False
            self._pool_changed = True
            if kind == "close":
                return False
            try:
                if kind == "submit":
                    self._admit(arg)
                elif kind == "abort":
                    seq = self._sequences.get(arg)
                    if seq is not None:
                        seq.aborted = True
                elif kind == "forget":
                    self._pool.forget(arg)
            except Exception:  # noqa: BLE001 - the engine thread must outlive any one command
                log.exception("inference command %s failed", kind)

    def _admit(self, seq: _Sequence) -> None:
        try:
            seq.model, seq.adapter = self._pool.acquire(seq.target)
        except Exception as e:  # noqa: BLE001 - the request gets the error
            log.exception("loading %s failed", seq.target)
            seq.emit(e)
            return
        self._sequences[seq.request_id] = seq
        try:
            seq.sampler = RowSampler(seq.params, seq.model.vocab_size, self.device)
        except Exception as e:  # noqa: BLE001
            seq.emit(e)
            self._retire(seq)
            return
        seq.model.waiting.append(seq)

    def _step(self, model: LoadedModel) -> None:
        batch = model.batch
        self._drop_finished(model)
        room = self.max_batch - len(batch)
        if model.waiting and room > 0:
            newcomers, model.waiting = model.waiting[:room], model.waiting[room:]
            newcomers = [s for s in newcomers if not self._finish_if_aborted(s)]
            if newcomers:
                every = any(s.params.prompt_logprobs for s in newcomers)
                logits, cache, mask = RunningBatch.prefill(
                    model.forward, [s.prompt for s in newcomers], [s.adapter for s in newcomers], self.device, every
                )
                if every:
                    _score_prompts(newcomers, logits)
                    logits = logits[:, -1]
                for seq in newcomers:
                    seq.position = len(seq.prompt) - 1  # the last prompt token's
                self._emit_next(newcomers, logits)
                batch.join(newcomers, cache, mask)
                self._drop_finished(model)
        if len(batch):
            rows = batch.rows
            logits = batch.step(
                model.forward, [s.pending for s in rows], [s.position for s in rows], [s.adapter for s in rows]
            )
            self._emit_next(rows, logits)
            self._drop_finished(model)

    def _emit_next(self, rows: list[_Sequence], logits: torch.Tensor) -> None:
        # A model whose weights are not finite (a diverged training) gives NaN logits: its
        # requests fail with a clear error, and rows of other models in the batch go on. A row's
        # max is NaN if any logit is, inf if one is +inf: one reduction, no vocabulary-sized mask
        # (82 -> 11 us a token at a 32 k vocabulary on one CPU thread). -inf logits are fine.
        finite = torch.isfinite(logits.amax(dim=-1)).tolist()
        if not all(finite):
            for seq, ok in zip(rows, finite, strict=True):
                if not ok and not seq.done:
                    seq.emit(NonFiniteModel(seq.target))
                    seq.done = True
            keep = [i for i, ok in enumerate(finite) if ok]
            rows, logits = [rows[i] for i in keep], logits[keep]
            if not rows:
                return
        for seq, choice in zip(rows, choose(logits, [s.sampler for s in rows]), strict=True):
            if seq.done:
                continue
            seq.generated += 1
            reason = None
            if choice.token in seq.params.stop_token_ids:
                reason = "stop"
            elif seq.generated >= seq.params.max_tokens:
                reason = "length"
            top = tuple(choice.top)
            prompt = seq.prompt_logprobs if seq.generated == 1 else None
            seq.emit(TokenEvent(choice.token, choice.logprob, top, reason, prompt))
            seq.pending = choice.token
            seq.position += 1
            if reason is not None:
                seq.done = True

    def _finish_if_aborted(self, seq: _Sequence) -> bool:
        """Retire a waiting sequence that was aborted before it started; True if it was."""
        if seq.aborted:
            seq.done = True
            self._retire(seq)
        return seq.done

    def _drop_finished(self, model: LoadedModel) -> None:
        batch = model.batch
        for seq in batch.rows:
            seq.done = seq.done or seq.aborted
        gone = [seq for seq in batch.rows if seq.done]
        if gone:
            batch.keep([i for i, seq in enumerate(batch.rows) if not seq.done])
            for seq in gone:
                self._retire(seq)

    def _retire(self, seq: _Sequence) -> None:
        if self._sequences.pop(seq.request_id, None) is not None and seq.model is not None:
            self._pool.release(seq.model, seq.adapter)
            self._pool_changed = True

    def _fail_all(self, model: LoadedModel, error: Exception) -> None:
        failed, model.batch, model.waiting = model.batch.rows + model.waiting, RunningBatch(), []
        for seq in failed:
            if not seq.done:
                seq.emit(error)
            seq.done = True
            try:
                self._retire(seq)
            except Exception:  # noqa: BLE001 - releasing must not stop the others from failing cleanly
                log.exception("releasing %s failed", seq.request_id)


def _score_prompts(rows: list[_Sequence], logits: torch.Tensor) -> None:
    """Each asking row's prompt logprobs from its prefill's logits (rows are left-padded)."""
    length = logits.shape[1]
    for i, seq in enumerate(rows):
        if not seq.params.prompt_logprobs:
            continue
        n = len(seq.prompt)
        scores = torch.log_softmax(logits[i, length - n : length - 1].float(), dim=-1)
        targets = torch.tensor(seq.prompt[1:], dtype=torch.long, device=scores.device)
        picked = scores.gather(1, targets.unsqueeze(1)).squeeze(1).tolist()
        seq.prompt_logprobs = (float("nan"), *picked)
