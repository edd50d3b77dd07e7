"""One training run's model: a base model with a LoRA adapter (peft), kept in memory between
calls, and a torch AdamW over the adapter's parameters. Gradients add up over forward_backward
calls until optim_step applies and clears them, as the Tinker API says."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from polytune.domain.custom_loss import CustomLoss
from polytune.domain.errors import InvalidRequest
from polytune.domain.primitives import LORA_ALPHA, STATE_META, AdamSettings, Datum, ForwardBackwardResult, LoraSettings
from polytune.training.primitives.losses import LOSS_FUNCTIONS

_OPTIMIZER = "optimizer.pt"


def lora_targets(model, lora: LoraSettings) -> list[str]:
    """The Linear layers LoRA goes on: attention, MLP and the unembedding, as asked."""
    unembed = model.get_output_embeddings()
    names = set()
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        leaf = name.rsplit(".", 1)[-1]
        if module is unembed:
            if lora.train_unembed:
                names.add(leaf)
        elif ".mlp." in f".{name}." and lora.train_mlp:
            names.add(leaf)
        elif "attn" in name and lora.train_attn:
            names.add(leaf)
    if not names:
        raise InvalidRequest("LoRA needs at least one of train_attn, train_mlp, train_unembed.", param="lora_config")
    return sorted(names)


class PrimitiveModel:
    def __init__(
        self,
        base_dir: str | Path,
        base_model: str,
        lora: LoraSettings,
        device: str | None = None,
        adapter_dir: Path | None = None,
    ):
        """`adapter_dir`: start from a saved adapter with its own peft config (a Tinker state, or a
        LoRA job's model or checkpoint, whose rank, alpha and target modules are its job's)."""
        from peft import LoraConfig, PeftModel, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.base_model, self.lora = base_model, lora
        self.tokenizer = AutoTokenizer.from_pretrained(base_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        if lora.seed is not None:
            torch.manual_seed(lora.seed)
        if adapter_dir is not None:
            self.model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=True).to(self.device)
        else:
            config = LoraConfig(
                r=lora.rank,
                lora_alpha=LORA_ALPHA,
                lora_dropout=0.0,
                bias="none",
                target_modules=lora_targets(base, lora),
                task_type="CAUSAL_LM",
            )
            self.model = get_peft_model(base, config).to(self.device)
        self.model.train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        defaults = AdamSettings()
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=defaults.learning_rate,
            betas=(defaults.beta1, defaults.beta2),
            eps=defaults.eps,
            weight_decay=defaults.weight_decay,
        )
        self.steps = 0
        self._losses: dict[str, Any] = {}  # uploaded custom losses, rebuilt once per run (custom_loss.py)

    # -- the calls ------------------------------------------------------------------------------
    def forward_backward(
        self,
        data: list[Datum],
        loss_fn: str,
        config: dict[str, Any],
        forward_only: bool = False,
        custom: CustomLoss | None = None,
    ) -> ForwardBackwardResult:
        """`custom`: an uploaded loss (loss_fn "custom"), one scalar per datum instead of one per token."""
        if custom is not None:
            return self._custom(data, custom, forward_only)
        fn = LOSS_FUNCTIONS[loss_fn]
        with torch.set_grad_enabled(not forward_only):
            logp_all, lengths = self._target_logprobs(data)
            total = logp_all.new_zeros(())
            outputs = []
            for i, d in enumerate(data):
                inputs = {k: torch.as_tensor(v, device=self.device).float() for k, v in d.inputs.items()}
                del inputs["target_tokens"]
                logprobs = logp_all[i, : lengths[i]]
                elementwise = fn(logprobs, inputs, config)
                total = total + elementwise.sum()
                outputs.append(
                    {
                        "logprobs": logprobs.detach().float().cpu().numpy(),
                        "elementwise_loss": elementwise.detach().float().cpu().numpy(),
                    }
                )
            if not forward_only:
                total.backward()
        return ForwardBackwardResult(outputs, {"loss:sum": float(total.detach())})

    def _target_logprobs(self, data: list[Datum]) -> tuple[torch.Tensor, list[int]]:
        """Each datum's target tokens' logprobs, one row per datum (right padding; a causal
        model's positions before the padding never see it). Picked from the vocabulary in one
        gather over the batch: a gather per datum's slice costs a vocabulary-wide gradient per
        datum in the backward (measured 3x the loss's cost on polytune-tiny, batch 8)."""
        lengths = [len(d.tokens) for d in data]
        ids = torch.zeros(len(data), max(lengths), dtype=torch.long)
        targets = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for i, d in enumerate(data):
            ids[i, : lengths[i]] = torch.tensor(d.tokens)
            targets[i, : lengths[i]] = torch.as_tensor(d.inputs["target_tokens"]).long()
            mask[i, : lengths[i]] = 1
        # No padding: no mask, so attention takes its plain causal path (measured faster on CPU).
        attention = None if min(lengths) == max(lengths) else mask.to(self.device)
        logits = self.model(input_ids=ids.to(self.device), attention_mask=attention).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        return logp.gather(-1, targets.to(self.device).unsqueeze(-1)).squeeze(-1), lengths

    def _custom(self, data: list[Datum], loss: CustomLoss, forward_only: bool) -> ForwardBackwardResult:
        from polytune.training.primitives import custom_loss

        module = self._losses.get(loss.loss_id)
        if module is None:
            module = self._losses[loss.loss_id] = custom_loss.build(loss, self.device)
        with torch.set_grad_enabled(not forward_only):
            logp_all, lengths = self._target_logprobs(data)
            total = logp_all.new_zeros(())
            sums: dict[str, float] = {}
            outputs = []
            for i, d in enumerate(data):
                inputs = {k: torch.as_tensor(v, device=self.device).float() for k, v in d.inputs.items()}
                del inputs["target_tokens"]
                logprobs = logp_all[i, : lengths[i]]
                try:
                    value, metrics = custom_loss.run(module, loss, logprobs, inputs)
                except Exception as e:  # noqa: BLE001 - the client's loss failed on its data: a 400, not ours
                    raise InvalidRequest(
                        f"The custom loss '{loss.name}' failed on data[{i}]: {e}", param="loss_fn"
                    ) from e
                total = total + value
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                outputs.append({"logprobs": logprobs.detach().float().cpu().numpy()})
            if not forward_only:
                total.backward()
        # A metric named ...:mean is averaged over the datums, ...:sum added up (the SDK's rule).
        metrics = {k: v / len(data) if k.endswith(":mean") else v for k, v in sums.items()}
        return ForwardBackwardResult(outputs, {**metrics, "loss:sum": float(total.detach())})

    def optim_step(self, adam: AdamSettings) -> dict[str, float]:
        for group in self.optimizer.param_groups:
            group.update(
                lr=adam.learning_rate, betas=(adam.beta1, adam.beta2), eps=adam.eps, weight_decay=adam.weight_decay
            )
        max_norm = adam.grad_clip_norm if adam.grad_clip_norm > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        return {"grad_norm:mean": float(grad_norm), "learning_rate:mean": adam.learning_rate}

    # -- saved state ----------------------------------------------------------------------------
    def save_adapter(self, folder: Path) -> None:
        """The adapter alone (peft's folder): what a sampler or the inference server loads. The
        base model's tokenizer goes with it, as with a job's adapter: /v1/chat/completions reads
        the tokenizer (and chat template) from the served folder."""
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        (folder / STATE_META).write_text(
            json.dumps({"base_model": self.base_model, "lora": asdict(self.lora), "steps": self.steps})
        )

    def save_state(self, folder: Path) -> None:
        """The adapter and the optimizer's state: training continues from it as if never stopped."""
        self.save_adapter(folder)
        torch.save(self.optimizer.state_dict(), folder / _OPTIMIZER)

    def load_state(self, folder: Path, optimizer: bool) -> None:
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(str(folder / "adapter_model.safetensors"), device=str(self.device))
        set_peft_model_state_dict(self.model, weights)
        # A job's adapter has no Tinker metadata: its steps count from 0 here.
        meta = folder / STATE_META
        self.steps = json.loads(meta.read_text()).get("steps", 0) if meta.is_file() else 0
        if optimizer:
            if not (folder / _OPTIMIZER).is_file():
                raise InvalidRequest(
                    "This checkpoint was saved for sampling and holds no optimizer state.", param="path"
                )
            self.optimizer.load_state_dict(torch.load(folder / _OPTIMIZER, map_location=self.device))

    def close(self) -> None:
        del self.model, self.optimizer, self.params
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def saved_settings(folder: Path) -> tuple[str, LoraSettings]:
    """The base model and LoRA settings a saved state was made with."""
    meta = json.loads((folder / STATE_META).read_text())
    return meta["base_model"], LoraSettings(**meta["lora"])
