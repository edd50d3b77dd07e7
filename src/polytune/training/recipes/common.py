"""What every text recipe's TRL config and trainer share.

Each recipe (sft, dpo, grpo) adds only what its method needs to the settings here: the job's
schedule and optimizer settings, the device choices measured for CPU and GPU, and the
bookkeeping that the reporter callback, not the trainer, does (checkpoints, logging).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polytune.config import Settings, get_settings
from polytune.domain.spec import FROM_CHECKPOINT, JobSpec
from polytune.training.cpu_path import choose_bf16, count_parameters, cpu_flags
from polytune.training.distributed import per_device_batch
from polytune.catalog.models import CatalogEntry
from polytune.training.precision import Precision, load_kwargs
from polytune.training.precision import for_this_device as precision_for_device
from polytune.training.sharding import fsdp_training_args, job_strategy

if TYPE_CHECKING:
    from peft import LoraConfig

    from polytune.training.gpu_path import GpuPath
    from transformers import Trainer


def require_resolved(spec: JobSpec) -> None:
    """A recipe trains a resolved spec only (services/hyperparameters.py:resolve_auto)."""
    hp = spec.hyperparameters
    unresolved = [
        name for name in ("n_epochs", "batch_size", "learning_rate_multiplier") if getattr(hp, name) == "auto"
    ]
    if hp.learning_rate is None:
        unresolved.append("learning_rate")
    if spec.adapter.kind == "auto":
        unresolved.append("adapter.kind")
    if spec.seed is None:
        unresolved.append("seed")
    if unresolved:
        raise ValueError(f"the job spec still has unresolved values: {', '.join(unresolved)} (run resolve_auto first)")


def scheduler_type(scheduler: str, warmup_ratio: float | None) -> str:
    """transformers' scheduler name: its "constant" ignores warm-up, so a constant schedule
    with warm-up is its "constant_with_warmup" (linear and cosine warm up by themselves)."""
    return "constant_with_warmup" if scheduler == "constant" and warmup_ratio else scheduler


def worker_settings(settings: Settings | None) -> Settings:
    """The settings a recipe reads: the ones the runner was handed (one per worker process);
    a direct caller (a test, a benchmark) that passes none gets the process's own."""
    return settings if settings is not None else get_settings()


def training_args(
    spec: JobSpec, entry: CatalogEntry, output_dir: Path, *, has_eval: bool, model_path: Path | str, settings: Settings
) -> dict[str, Any]:
    """Keyword arguments every TRL config (a transformers TrainingArguments) takes alike."""
    import torch

    hp = spec.hyperparameters
    cuda = torch.cuda.is_available()
    precision = job_precision(spec)
    # A multi-worker job shards the model (FSDP) when POLYTUNE_FSDP says so (sharding.py).
    strategy = job_strategy(settings.fsdp, model_path, lora=spec.adapter.kind == "lora")
    sharded = bool(strategy is not None and strategy.fsdp)
    # An accelerator's fast path (gpu_path.py): Liger kernels, and gradient checkpointing only
    # where memory needs it. On a CPU checkpointing is off unless the job asks (it costs ~20-30%).
    gpu = accelerator_path(spec, entry, model_path, settings, precision, fsdp=sharded) if cuda else None
    checkpointing = gpu.gradient_checkpointing if gpu is not None else bool(hp.gradient_checkpointing)
    fsdp = (
        fsdp_training_args(
            model_path,
            activation_checkpointing=checkpointing,
            efficient_loading=not (spec.adapter.kind == "lora" and entry.lora_train_embeddings),
        )
        if strategy is not None and strategy.fsdp
        else {}
    )
    if not fsdp:
        # accelerate marks a process that once had an FSDP plugin (ACCELERATE_USE_FSDP) and would
        # shard every later trainer in it with a default FSDP1; Ray reuses worker processes.
        os.environ.pop("ACCELERATE_USE_FSDP", None)
    return (
        dict(
            output_dir=str(output_dir),
            num_train_epochs=hp.n_epochs,
            max_steps=hp.max_steps or -1,
            # batch_size is the job's global batch: split across the workers of a multi-worker job,
            # and on an accelerator into micro-batches that fit its memory (plan_batches).
            **plan_batches(spec, entry, model_path, fsdp=bool(fsdp), cuda=cuda, checkpointing=checkpointing),
            learning_rate=hp.learning_rate,
            lr_scheduler_type=scheduler_type(hp.lr_scheduler or entry.lr_scheduler, hp.warmup_ratio),
            warmup_steps=hp.warmup_ratio or 0.0,  # a float below 1 is a ratio of all steps
            weight_decay=hp.weight_decay or 0.0,
            max_grad_norm=hp.max_grad_norm if hp.max_grad_norm is not None else 1.0,
            # Measured on CPU: bf16 autocast wins only for models large enough to be matmul-bound,
            # on CPUs with bf16 matrix instructions (cpu_path.py); gradient checkpointing costs
            # ~20-30% of the speed; on a GPU memory is the tighter limit.
            use_cpu=not cuda,
            # Accelerators: the precision rule (precision.py); a CPU: bf16 autocast by cpu_path.py's rule.
            bf16=precision.bf16 if cuda else cpu_bf16(model_path, settings),
            fp16=precision.fp16,
            activation_checkpointing=checkpointing,
            use_liger_kernel=bool(gpu is not None and gpu.liger),
            seed=spec.seed,
            data_seed=spec.seed,
            logging_steps=1,
            report_to=[],
            save_strategy="no",  # checkpoints are the reporter callback's job
            eval_strategy=("steps" if hp.eval_interval else "epoch") if has_eval else "no",
            eval_steps=hp.eval_interval,
            include_num_input_tokens_seen="non_padding",
            dataloader_pin_memory=cuda,
            disable_tqdm=True,
        )
        | fsdp
    )


def cpu_bf16(model_path: Path | str, settings: Settings) -> bool:
    """Whether a CPU job trains under bf16 autocast (cpu_path.py's rule, the setting first)."""
    return choose_bf16(count_parameters(model_path), cpu_flags(), settings.train_precision)[0]


def lora_config(spec: JobSpec, entry: CatalogEntry) -> LoraConfig | None:
    """The job's LoRA adapter as peft's config, or None for a full fine-tune."""
    if spec.adapter.kind != "lora":
        return None
    from peft import LoraConfig

    lora = spec.adapter.lora
    # Embeddings are tied to the output layer in small models; peft's trainable_token_indices
    # crashes inside trl then, while modules_to_save with ensure_weight_tying works.
    train_embeddings = entry.lora_train_embeddings
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        bias=lora.bias,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
        modules_to_save=["embed_tokens"] if train_embeddings else None,
        ensure_weight_tying=train_embeddings,
    )


def job_precision(spec: JobSpec) -> Precision:
    """The dtypes this job trains in on this worker's device (training/precision.py)."""
    return precision_for_device("full" if spec.adapter.kind == "full" else "lora", spec.adapter.quantization)


def plan_batches(
    spec: JobSpec, entry: CatalogEntry, model_path: Path | str, *, fsdp: bool, cuda: bool, checkpointing: bool = True
) -> dict[str, int]:
    """Micro-batch and gradient accumulation. On an accelerator the micro-batch is what fits the
    device's token budget (catalog/memory.py) and accumulation makes up the global batch; a job
    that set gradient_accumulation_steps, and every CPU job, keeps batch_size / workers per step.
    (Reinforcement sizes its batches by generations per prompt: recipes/grpo.py.)"""
    hp = spec.hyperparameters
    per_device = per_device_batch(hp.batch_size)
    plain = dict(
        per_device_train_batch_size=per_device,
        per_device_eval_batch_size=per_device,
        gradient_accumulation_steps=hp.gradient_accumulation_steps or 1,
    )
    if not cuda or hp.gradient_accumulation_steps or spec.method.type not in ("supervised", "dpo"):
        return plain
    from dataclasses import replace

    from polytune.catalog import memory
    from polytune.training.distributed import world_size
    from polytune.training.sharding import device_memory

    dims = memory.ModelDims.from_config(memory.read_config(model_path, **entry.load_options) or {})
    capacity = device_memory()
    if dims is None or not capacity:
        return plain
    shape = replace(
        memory.job_shape(spec, adapter_default=entry.adapter_default, max_length=entry.max_length),
        devices=world_size(),
        fsdp=fsdp,
        gradient_checkpointing=checkpointing,
    )
    plan = memory.batching(dims, shape, capacity, global_batch=int(hp.batch_size))
    return dict(
        per_device_train_batch_size=plan.micro_batch,
        per_device_eval_batch_size=plan.micro_batch,
        gradient_accumulation_steps=plan.accumulation,
    )


def accelerator_path(
    spec: JobSpec, entry: CatalogEntry, model_path: Path | str, settings: Settings, precision: Precision, *, fsdp: bool
) -> GpuPath:
    """gpu_path.choose for this job: its model type and precision, what is installed, and the
    largest micro-batch the memory plan fits on this device without gradient checkpointing."""
    from dataclasses import replace

    from polytune.catalog import memory
    from polytune.training import gpu_path
    from polytune.training.distributed import world_size
    from polytune.training.sharding import device_memory

    hp = spec.hyperparameters
    config = memory.read_config(model_path, **entry.load_options) or {}
    dims = memory.ModelDims.from_config(config)
    shape = replace(
        memory.job_shape(spec, adapter_default=entry.adapter_default, max_length=entry.max_length),
        devices=world_size(),
        fsdp=fsdp,
        gradient_checkpointing=False,
    )
    capacity = device_memory()
    without = 0
    if dims is not None and capacity and memory.fits(dims, replace(shape, micro_batch=1), capacity):
        without = memory.batching(dims, shape, capacity, global_batch=int(hp.batch_size)).micro_batch
    # The memory plan models supervised and DPO steps; reinforcement also generates, so it keeps
    # checkpointing unless the job turns it off.
    asked = hp.gradient_checkpointing
    if asked is None and spec.method.type not in ("supervised", "dpo"):
        asked = True
    return gpu_path.choose(
        method=spec.method.type,
        model_type=str(config.get("model_type", "")),
        half_precision=precision.compute_dtype != "float32",
        liger_installed=gpu_path.installed("liger_kernel"),
        flash_installed=gpu_path.installed("flash_attn"),
        checkpointing_asked=asked,
        micro_batch_without=without,
        per_device_batch=-(-int(hp.batch_size) // max(1, shape.devices)),
        context_length=shape.context_length,
        liger_setting=settings.liger,
        liger_types=gpu_path.liger_model_types(),
    )


def load_policy(model_path: Path | str, precision: Precision | None = None, **options: Any):
    """The model to train, in the job's precision (fp32 on CPU: see training/precision.py);
    `options`: the catalog entry's load_options (revision, trust_remote_code)."""
    from transformers import AutoModelForCausalLM

    import torch

    from polytune.training.gpu_path import attention, installed

    precision = precision or precision_for_device("full")
    # FlashAttention 2 where it is installed and the compute dtype is half (gpu_path.py): its
    # variable-length kernel serves padding-free batches; transformers' default (sdpa) otherwise.
    half = precision.compute_dtype != "float32"
    if torch.cuda.is_available() and attention(half, installed("flash_attn")) == "flash_attention_2":
        options = {"attn_implementation": "flash_attention_2", **options}
    return AutoModelForCausalLM.from_pretrained(model_path, **load_kwargs(precision), **options)


def load_reference(spec: JobSpec, model_path: Path | str, policy: Any = None, **options: Any):
    """A full-fine-tune DPO's frozen reference model, or None for trl's own (LoRA: the policy
    with its adapter disabled; full: a copy loaded from the policy's `name_or_path`).
    - From a checkpoint, the policy is the checkpoint merged into the base in memory, so its
      `name_or_path` still names the base: trl would load the base as the reference and pull the
      policy back towards it. The reference is a frozen copy of `policy` instead.
    - On an accelerator, where the reference computes in another dtype than the policy's
      (fp32 master weights, bf16 reference), it is loaded here in that dtype."""
    precision = job_precision(spec)
    if spec.adapter.kind != "full":
        return None
    import torch

    dtype = getattr(torch, precision.reference_dtype)
    if spec.extras.get(FROM_CHECKPOINT):
        import copy

        return copy.deepcopy(policy).to(dtype).eval().requires_grad_(False)
    if precision.reference_dtype == precision.load_dtype:
        return None
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, **options)


def trainer_inputs(
    spec: JobSpec,
    entry: CatalogEntry,
    model_path: Path | str,
    train_rows: list[dict[str, Any]],
    val_rows: list[dict[str, Any]] | None,
    callbacks: list,
    *,
    tokenizer=None,
) -> dict[str, Any]:
    """What every TRL trainer is built from: the policy, the data, the tokenizer (the one
    validation counted tokens with, unless the recipe already loaded it), LoRA, callbacks."""
    from polytune.data.convert import trl_dataset
    from polytune.data.tokens import load_tokenizer

    model, peft_config = starting_model(spec, entry, load_policy(model_path, job_precision(spec), **entry.load_options))
    return dict(
        model=model,
        train_dataset=trl_dataset(train_rows),
        eval_dataset=trl_dataset(val_rows) if val_rows else None,
        processing_class=tokenizer or load_tokenizer(model_path, entry.chat_template, **entry.load_options),
        peft_config=peft_config,
        callbacks=callbacks,
    )


def starting_model(spec: JobSpec, entry: CatalogEntry, policy) -> tuple[Any, LoraConfig | None]:
    """The model the trainer starts from and the LoRA it adds. A job that starts from a LoRA
    checkpoint (a Tinker run's, or another job's: services/checkpoint_starts.py) trains that
    adapter further, so the result still applies to the catalog's base model and is served like
    any adapter (trl's DPO keeps a frozen copy of it as the reference); a full fine-tune starts
    from the adapter merged into the base."""
    start = spec.extras.get(FROM_CHECKPOINT)
    if not start:
        return policy, lora_config(spec, entry)
    from peft import PeftModel

    if spec.adapter.kind == "full":
        untie_unembedding(policy)
        merged = PeftModel.from_pretrained(policy, start["local_dir"]).merge_and_unload()
        merged.requires_grad_(True)  # peft froze the base to load the adapter; a full fine-tune trains it all
        return merged, None
    return PeftModel.from_pretrained(policy, start["local_dir"], is_trainable=True), None


def untie_unembedding(model) -> None:
    """Give the output layer its own copy of tied embeddings: merging a LoRA on it (Tinker's
    train_unembed) must change the output projection only, as the adapter did, not the inputs."""
    import torch

    output, inputs = model.get_output_embeddings(), model.get_input_embeddings()
    if output is not None and inputs is not None and output.weight is inputs.weight:
        output.weight = torch.nn.Parameter(inputs.weight.detach().clone())
        model.config.tie_word_embeddings = False
        if getattr(model.config, "get_text_config", None) is not None:
            model.config.get_text_config().tie_word_embeddings = False


def quiet(trainer: Trainer) -> Trainer:
    """With tqdm off the Trainer prints every log line to stdout; the reporter has them."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer
