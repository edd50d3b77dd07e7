"""bench/gpu_check.py's throughput case (issue 17, goal 5): a polytune LoRA job with its defaults
against the script a user would write with plain TRL, on the same device, model and data.

- polytune: the supervised recipe as a job builds it, nothing set by hand: the accelerator's
  path (training/gpu_path.py: Liger kernels where installed, FlashAttention 2 where installed,
  gradient checkpointing only where memory needs it), padding-free batches, bf16.
- plain TRL: SFTTrainer with its defaults (bf16 on a bf16 device, its gradient checkpointing
  default, padded batches), the model loaded in bf16, LoRA r16 on all linear layers, as in
  TRL's own quick start.

The data is prompt/completion rows of mixed length (an eighth of the context to all of it), so
padding costs what it costs in real data. Tokens/s counts the tokens that are not padding, after
the first step (compilation, allocator warm-up), on both sides alike. Target: >= 1.8x.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path
from typing import Any

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike".split()


def mixed_rows(n: int, context: int) -> list[dict[str, Any]]:
    rnd = random.Random(0)

    def text(k: int) -> str:
        return " ".join(rnd.choice(WORDS) for _ in range(k))

    # A word is one or two tokens of polytune-tiny's tokenizer: completions of context/8 to
    # context/2 words stay under the context, so no example is dropped or truncated.
    return [{"prompt": text(8), "completion": text(rnd.randint(context // 8, context // 2))} for _ in range(n)]


def _timer(times: list[tuple[float, int]], cuda: bool):
    import torch
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            times.append((time.perf_counter(), int(state.num_input_tokens_seen)))

    return Timer()


def _rate(times: list[tuple[float, int]]) -> float:
    (t0, n0), (t1, n1) = times[0], times[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")


def polytune_rate(folder: Path, work: Path, rows: list[dict], *, batch: int, context: int, steps: int, cuda: bool):
    from polytune.catalog.models import CatalogEntry
    from polytune.domain.spec import AdapterSpec, Hyperparameters, JobSpec
    from polytune.training.recipes import get_recipe

    spec = JobSpec(
        model=folder.name,
        training_files=["bench"],
        seed=0,
        hyperparameters=Hyperparameters(
            n_epochs=1,
            batch_size=batch,
            learning_rate=1e-4,
            learning_rate_multiplier=1.0,
            context_length=context,
            max_steps=steps,
        ),
        adapter=AdapterSpec(kind="lora"),
    )
    entry = CatalogEntry(name=folder.name, source=str(folder), max_length=context, adapter_default="lora")
    times: list[tuple[float, int]] = []
    trainer = get_recipe("supervised").build_trainer(
        spec, entry, folder, rows, None, work / "polytune-trainer", [_timer(times, cuda)]
    )
    trainer.train()
    args = trainer.args
    path = {
        "liger": bool(args.use_liger_kernel),
        "checkpointing": bool(args.activation_checkpointing),
        "padding_free": bool(getattr(args, "padding_free", False)),
        "attention": trainer.model.config._attn_implementation,
    }
    del trainer
    return _rate(times), path


def plain_rate(folder: Path, work: Path, rows: list[dict], *, batch: int, context: int, steps: int, cuda: bool):
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16 if cuda else torch.float32)
    config = SFTConfig(
        output_dir=str(work / "plain-trainer"),
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=1e-4,
        max_length=context,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        include_num_input_tokens_seen="non_padding",
        use_cpu=not cuda,
        bf16=cuda,
        seed=0,
    )
    times: list[tuple[float, int]] = []
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(folder),
        peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"),
        callbacks=[_timer(times, cuda)],
    )
    trainer.train()
    path = {"checkpointing": bool(trainer.args.gradient_checkpointing)}
    del trainer, model
    return _rate(times), path


def compare(folder: Path, work: Path, *, batch: int, context: int, steps: int, cuda: bool) -> dict[str, Any]:
    """Plain first, then polytune, each on its own copy of the model; a row of gpu_check's table."""
    import torch

    rows = mixed_rows(batch * steps, context)
    plain, plain_path = plain_rate(folder, work, rows, batch=batch, context=context, steps=steps, cuda=cuda)
    if cuda:
        torch.cuda.empty_cache()
    fast, fast_path = polytune_rate(folder, work, rows, batch=batch, context=context, steps=steps, cuda=cuda)
    for sub in ("plain-trainer", "polytune-trainer"):
        shutil.rmtree(work / sub, ignore_errors=True)
    return {
        "plain_tokens_per_s": round(plain, 1),
        "tokens_per_s": round(fast, 1),
        "speedup": round(fast / plain, 3) if plain else None,
        "polytune_path": fast_path,
        "plain_path": plain_path,
    }
