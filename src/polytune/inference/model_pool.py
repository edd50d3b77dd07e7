"""Weights in memory: base models and full fine-tunes, each with the LoRA adapters stacked on it.

One copy of a base model serves every adapter trained from it (peft, several adapters in one
PeftModel; a batch mixing adapters runs in one forward pass with `adapter_names`). Everything
loaded counts against a memory budget; when something new doesn't fit, the least recently
used idle weights are evicted. Only the engine thread touches a pool.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from polytune.inference.backend import ModelTarget
from polytune.inference.running_batch import RunningBatch

log = logging.getLogger("polytune.inference")
BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


def tensor_bytes(tensors) -> int:
    """Bytes of distinct storages (tied weights count once)."""
    seen, total = set(), 0
    for t in tensors:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in seen:
            seen.add(ptr)
            total += t.untyped_storage().nbytes()
    return total


def folder_bytes(folder: Path | str) -> int:
    """What loading a folder's weights will roughly take: the size of its weight files."""
    path = Path(folder)
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".pt") and p.is_file())


@dataclass
class LoadedAdapter:
    key: str
    name: str  # the adapter's name inside the PeftModel
    bytes: int
    last_used: float = field(default_factory=time.monotonic)
    users: int = 0
    forgotten: bool = False


class LoadedModel:
    """A base model or full fine-tune, its adapters, and the batch it is decoding."""

    def __init__(self, key: str, model, device: torch.device):
        self.key, self.model, self.device = key, model, device
        self.peft = None  # a PeftModel wrapping `model` once the first adapter is loaded
        self.adapters: dict[str, LoadedAdapter] = {}
        self.bytes = tensor_bytes(list(model.parameters()) + list(model.buffers()))
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        self.last_used = time.monotonic()
        self.users = 0
        self.forgotten = False
        self.batch = RunningBatch()
        self.waiting: list = []
        # transformers 5.25 renamed the cache argument (`past_key_values` -> `cache`; the old name
        # goes in 5.40) and warns on each layer's call under the old one. A model's own code
        # (trust_remote_code, older versions) may only know the old name.
        parameters = inspect.signature(model.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
        self._active: object = None  # what the PeftModel is currently set to (an adapter or BASE)

    @property
    def total_bytes(self) -> int:
        return self.bytes + sum(a.bytes for a in self.adapters.values())

    @property
    def busy(self) -> bool:
        return self.users > 0 or bool(self.waiting) or len(self.batch) > 0

    def forward(self, ids, mask, positions, cache, adapters: list[str | None], every: bool = False) -> torch.Tensor:
        """Last-position logits, each row through its own adapter (None: the bare weights);
        every: the logits at every position ([rows, positions, vocab]: prompt logprobs)."""
        kwargs = dict(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=0 if every else 1
        )
        kwargs[self._cache_argument] = cache
        if self.peft is None:
            logits = self.model(**kwargs).logits
            return logits if every else logits[:, -1]
        names = set(adapters)
        if len(names) == 1 and None not in names:
            (name,) = names
            if self._active != name:
                self.peft.set_adapter(name)
                self._active = name
            out = self.peft(**kwargs)
        else:
            # Mixed adapters, or bare-weight rows (measured: cheaper than disable_adapter()).
            out = self.peft(**kwargs, adapter_names=[a or BASE for a in adapters])
        return out.logits if every else out.logits[:, -1]

    def load_adapter(self, key: str, folder: Path, name: str) -> LoadedAdapter:
        from peft import PeftModel

        if self.peft is None:
            self.peft = PeftModel.from_pretrained(self.model, str(folder), adapter_name=name)
            self.peft.eval()
        else:
            self.peft.load_adapter(str(folder), adapter_name=name)
            _tie_like_the_first_adapter(self.peft, name)
        self._active = None
        params = [p for n, p in self.peft.named_parameters() if f".{name}." in n or n.endswith(f".{name}")]
        adapter = LoadedAdapter(key=key, name=name, bytes=tensor_bytes(params))
        self.adapters[key] = adapter
        return adapter

    def drop_adapter(self, key: str) -> None:
        adapter = self.adapters.pop(key)
        self.peft.delete_adapter(adapter.name)
        self._active = None


def _tie_like_the_first_adapter(peft, name: str) -> None:
    """peft ties a trained embedding to the (tied) output layer only for the first adapter of a
    PeftModel: for adapters loaded later the output layer silently keeps the base weights
    (peft 0.21). Tie it here the same way peft did for the first one."""
    from peft.utils.other import ModulesToSaveWrapper

    config = peft.peft_config[name]
    tied = next(
        (
            getattr(c, "modules_to_tie", None)
            for n, c in peft.peft_config.items()
            if n != name and getattr(c, "modules_to_tie", None)
        ),
        None,
    )
    embeddings = peft.get_input_embeddings()
    if not (
        tied
        and getattr(config, "ensure_weight_tying", False)
        and isinstance(embeddings, ModulesToSaveWrapper)
        and name in embeddings.modules_to_save
    ):
        return
    for module_name in tied:
        wrapper = peft.base_model.model.get_submodule(module_name)
        if isinstance(wrapper, ModulesToSaveWrapper) and name not in wrapper.modules_to_save:
            wrapper.update(name, tied_module=embeddings.modules_to_save[name])
    config.modules_to_tie = set(tied)


class ModelPool:
    def __init__(self, budget_bytes: int, device: torch.device):
        self.budget = budget_bytes
        self.device = device
        self.models: dict[str, LoadedModel] = {}
        self._names = itertools.count()
        self.loads = 0
        self.evictions = 0

    @property
    def used_bytes(self) -> int:
        return sum(m.total_bytes for m in self.models.values())

    # -- using weights -----------------------------------------------------------------------
    def acquire(self, target: ModelTarget) -> tuple[LoadedModel, str | None]:
        """The loaded model for `target` (loading it, and its adapter, if needed), marked in use."""
        model = self.models.get(target.base_key)
        if model is None:
            self._make_room(folder_bytes(target.base_dir), keep=None)
            model = LoadedModel(
                target.base_key, self._load_weights(target.base_dir, **dict(target.base_options)), self.device
            )
            self.models[target.base_key] = model
            self.loads += 1
            log.info("loaded %s (%.1f MB)", target.base_key, model.bytes / 2**20)
        adapter = None
        model.users += 1  # not evictable from here on
        if target.adapter_key is not None:
            adapter = model.adapters.get(target.adapter_key)
            if adapter is None:
                try:
                    adapter = model.load_adapter(target.adapter_key, target.adapter_dir, f"a{next(self._names)}")
                except BaseException:
                    model.users -= 1
                    if not model.adapters and not model.busy:
                        self._evict(model, None)  # peft may have changed it halfway: load it afresh
                    raise
                self.loads += 1
                log.info(
                    "loaded adapter %s on %s (%.1f MB)", target.adapter_key, target.base_key, adapter.bytes / 2**20
                )
                # An adapter's size is known once loaded (a file may hold tied weights twice);
                # room is made after loading it, so the budget is exceeded by one adapter at most.
                adapter.users += 1
                self._make_room(0, keep=model)
                adapter.users -= 1
            adapter.users += 1
            adapter.last_used = time.monotonic()
        model.last_used = time.monotonic()
        return model, adapter.name if adapter else None

    def release(self, model: LoadedModel, adapter_name: str | None) -> None:
        model.users -= 1
        model.last_used = time.monotonic()
        for adapter in model.adapters.values():
            if adapter.name == adapter_name:
                adapter.users -= 1
                adapter.last_used = time.monotonic()
        self._drop_forgotten()

    def forget(self, key: str) -> None:
        if key in self.models:
            self.models[key].forgotten = True
        for model in self.models.values():
            if key in model.adapters:
                model.adapters[key].forgotten = True
        self._drop_forgotten()

    # -- memory ------------------------------------------------------------------------------
    def _load_weights(self, folder: Path | str, **options: Any):
        from polytune.lazy_imports import from_transformers

        (auto_model,) = from_transformers("AutoModelForCausalLM")
        dtype = torch.float32 if self.device.type == "cpu" else "auto"
        model = auto_model.from_pretrained(folder, dtype=dtype, **options)
        return model.to(self.device).eval()

    def _evictable(self, keep: LoadedModel | None) -> list[tuple[float, LoadedModel, LoadedAdapter | None]]:
        """Idle weights, as (last used, model, adapter or None for the whole model).

        A model's only adapter is evicted together with its model: peft cannot take a
        PeftModel's last adapter away and add another later.
        """
        out = []
        for model in self.models.values():
            if len(model.adapters) > 1:
                out += [(a.last_used, model, a) for a in model.adapters.values() if a.users == 0]
            if model is not keep and not model.busy:
                out.append((model.last_used, model, None))
        return sorted(out, key=lambda item: item[0])

    def _make_room(self, need: int, keep: LoadedModel | None) -> None:
        while self.used_bytes + need > self.budget:
            candidates = self._evictable(keep)
            if not candidates:
                log.warning(
                    "the inference memory budget (%.0f MB) is too small for what is in use; loading anyway",
                    self.budget / 2**20,
                )
                return
            _, model, adapter = candidates[0]
            self._evict(model, adapter)

    def _evict(self, model: LoadedModel, adapter: LoadedAdapter | None) -> None:
        self.evictions += 1
        if adapter is not None:
            log.info("evicting adapter %s from %s", adapter.key, model.key)
            model.drop_adapter(adapter.key)
        else:
            log.info("evicting %s", model.key)
            del self.models[model.key]
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def _drop_forgotten(self) -> None:
        for model in list(self.models.values()):
            if model.forgotten and not model.busy:
                self._evict(model, None)
                continue
            for adapter in list(model.adapters.values()):
                if adapter.forgotten and adapter.users == 0:
                    if len(model.adapters) > 1:
                        self._evict(model, adapter)
                    elif not model.busy:
                        self._evict(model, None)

    def stats(self) -> dict:
        return {
            "budget_bytes": self.budget,
            "used_bytes": self.used_bytes,
            "loads": self.loads,
            "evictions": self.evictions,
            "models": {
                key: {"bytes": m.bytes, "adapters": {a.key: a.bytes for a in m.adapters.values()}}
                for key, m in self.models.items()
            },
        }
