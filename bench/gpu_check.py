"""The GPU check of issue 16: real-sized models trained through polytune's own recipe code on one
accelerator, measured against the memory planner and the device's own matmul peak.

Every model is random-initialised here from a config (no download): an 8B-shaped Llama trained
with LoRA and with QLoRA, a 1B-shaped Llama fully fine-tuned, a DPO step of that 1B, that 1B
served by the engine process (1 and 16 streams against plain `generate`), and a FLUX-shaped (12B
transformer) image LoRA. Text cases go through the recipes a job uses
(training/recipes: SFT/DPO trainers built by build_trainer, precision and micro-batching as a
job gets them, saving by save_trained); the image case through run_image_training. Printed per
case: peak memory, tokens/s (images/s), MFU against the bf16 matmul peak measured in the same run,
checkpoint time and size, and the planner's estimate against the measured peak (the issue's
target: within 25%).

    python bench/gpu_check.py            # on a CUDA machine (about 8 minutes on one H200)
    python bench/gpu_check.py --smoke    # the same code on CPU with tiny shapes (the test suite)

MFU counts 6 FLOPs per parameter per token (forward 2, backward 4; embeddings excluded) plus
attention's 12 x layers x hidden x context, the usual convention; a DPO step adds the reference
model's forward (2 per parameter per token). Gradient checkpointing's recompute is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))  # bench._gpu_vs_trl

LLAMA_8B = dict(
    hidden_size=4096,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    vocab_size=128256,
    tie_word_embeddings=False,
)
LLAMA_1B = dict(
    hidden_size=2048,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=8192,
    vocab_size=128256,
    tie_word_embeddings=True,
)
TINY = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    vocab_size=4096,
    tie_word_embeddings=False,
)
# FLUX.1's transformer: 19 double-stream and 38 single-stream blocks of 24 heads x 128 (~12B).
FLUX = dict(
    num_layers=19, num_single_layers=38, attention_head_dim=128, num_attention_heads=24, axes_dims_rope=(16, 56, 56)
)


@dataclass
class Case:
    name: str
    config: dict[str, Any]
    adapter: str  # full | lora
    method: str = "supervised"
    quantization: str | None = None
    context: int = 2048
    batch: int = 8
    steps: int = 5


@dataclass
class Row:
    case: str
    values: dict[str, Any] = field(default_factory=dict)


def cases(smoke: bool) -> list[Case]:
    if smoke:
        return [
            Case("tiny-lora", TINY, "lora", context=128, batch=4, steps=3),
            Case("tiny-full", TINY, "full", context=128, batch=4, steps=3),
            Case("tiny-dpo", TINY, "full", method="dpo", context=128, batch=2, steps=2),
        ]
    return [
        Case("llama-8b-lora", LLAMA_8B, "lora", context=2048, batch=16, steps=6),
        Case("llama-8b-qlora", LLAMA_8B, "lora", quantization="nf4", context=2048, batch=16, steps=6),
        Case("llama-1b-full", LLAMA_1B, "full", context=2048, batch=16, steps=6),
        Case("llama-1b-dpo", LLAMA_1B, "full", method="dpo", context=1024, batch=8, steps=3),
    ]


def matmul_peak(cuda: bool) -> float:
    """FLOP/s of the device's best square matmul (bf16 on CUDA, fp32 on CPU), measured now."""
    import torch

    n, dtype, device = (8192, torch.bfloat16, "cuda") if cuda else (512, torch.float32, "cpu")
    a, b = (torch.randn(n, n, dtype=dtype, device=device) for _ in range(2))
    best = 0.0
    for _ in range(3 if cuda else 2):
        reps = 20 if cuda else 4
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        if cuda:
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t0))
    return best


def build_text_model(case: Case, folder: Path, tokenizer_dir: Path, cuda: bool) -> None:
    """A random-initialised Llama of the case's shape, saved in bf16 (fp32 on CPU), with
    polytune-tiny's tokenizer (its ids fit any vocabulary here)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    dtype = torch.bfloat16 if cuda else torch.float32
    config = LlamaConfig(**case.config, max_position_embeddings=max(4096, case.context * 2))
    with torch.device("cuda" if cuda else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(folder)
    del model
    for f in tokenizer_dir.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy(f, folder / f.name)
    if cuda:
        torch.cuda.empty_cache()


def text_rows(case: Case, n: int) -> list[dict[str, Any]]:
    """Prompt/completion (or preference) rows longer than the context, so every sequence is full."""
    import random

    rnd = random.Random(0)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]

    def text(k: int) -> str:
        return " ".join(rnd.choice(words) for _ in range(k))

    if case.method == "dpo":
        half = case.context // 2
        return [{"prompt": text(half // 4), "chosen": text(half), "rejected": text(half)} for _ in range(n)]
    return [{"prompt": text(16), "completion": text(case.context)} for _ in range(n)]


def run_text(case: Case, work: Path, tokenizer_dir: Path, cuda: bool, peak: float) -> Row:
    import torch
    from transformers import TrainerCallback

    from polytune.domain.spec import AdapterSpec, Hyperparameters, JobSpec, PreferenceSpec
    from polytune.catalog import memory
    from polytune.catalog.models import CatalogEntry
    from polytune.training.recipes import get_recipe
    from polytune.training.saving import save_trained

    folder = work / case.name
    build_text_model(case, folder, tokenizer_dir, cuda)
    spec = JobSpec(
        model=case.name,
        method=case.method,
        training_files=["bench"],
        seed=0,
        hyperparameters=Hyperparameters(
            n_epochs=1,
            batch_size=case.batch,
            learning_rate=1e-5,
            learning_rate_multiplier=1.0,
            context_length=case.context,
            max_steps=case.steps,
            gradient_checkpointing=True,
            long_examples="truncate",
        ),
        adapter=AdapterSpec(kind=case.adapter, quantization=case.quantization),
        preference=PreferenceSpec(beta=0.1) if case.method == "dpo" else None,
    )
    entry = CatalogEntry(name=case.name, source=str(folder), max_length=case.context, adapter_default=case.adapter)
    times: list[tuple[float, int]] = []

    class Timer(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            times.append((time.perf_counter(), int(state.num_input_tokens_seen)))

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer = get_recipe(case.method).build_trainer(
        spec, entry, folder, text_rows(case, case.batch * case.steps), None, work / f"{case.name}-trainer", [Timer()]
    )
    trainer.train()
    measured = torch.cuda.max_memory_allocated() if cuda else None
    # Throughput after the first step (compilation, allocator warm-up).
    (t0, n0), (t1, n1) = times[0], times[-1]
    tokens_per_s = (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")
    dims = memory.ModelDims.from_config(case.config)
    shape = memory.Shape(
        adapter="qlora" if case.quantization else case.adapter,
        method=case.method,
        context_length=case.context,
        micro_batch=trainer.args.per_device_train_batch_size,
        gradient_checkpointing=True,
        compute_bytes=2 if cuda else 4,
    )
    estimate = memory.estimate(dims, shape, accelerator=False).total  # the CUDA context is not "allocated"
    n_matmul = dims.n_params - dims.vocab * dims.hidden
    per_token = 6 * n_matmul + 12 * dims.layers * dims.hidden * case.context
    if case.method == "dpo" and case.adapter == "full":
        per_token += 2 * n_matmul
    c0 = time.perf_counter()
    out = save_trained(trainer, work / f"{case.name}-checkpoint")
    seconds = time.perf_counter() - c0
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    values = {
        "micro_batch": trainer.args.per_device_train_batch_size,
        "accumulation": trainer.args.gradient_accumulation_steps,
        "tokens_per_s": round(tokens_per_s, 1),
        "mfu": round(tokens_per_s * per_token / peak, 4),
        "peak_gib": round(measured / 2**30, 2) if measured else None,
        "estimate_gib": round(estimate / 2**30, 2),
        "estimate_ratio": round(estimate / measured, 3) if measured else None,
        "checkpoint_s": round(seconds, 2),
        "checkpoint_mib": round(size / 2**20, 1),
    }
    del trainer
    shutil.rmtree(folder, ignore_errors=True)
    if cuda:
        torch.cuda.empty_cache()
    return Row(case.name, values)


def run_fast_path(work: Path, tokenizer_dir: Path, cuda: bool, smoke: bool) -> Row:
    """A polytune LoRA job with its defaults against plain TRL's on a 1B-shaped Llama
    (bench/_gpu_vs_trl.py): issue 17's accelerator goal, >= 1.8x tokens/s."""
    from bench._gpu_vs_trl import compare

    case = Case("tiny-lora-vs-trl", TINY, "lora", context=128, batch=4, steps=3)
    if not smoke:
        case = Case("llama-1b-lora-vs-trl", LLAMA_1B, "lora", context=2048, batch=8, steps=8)
    folder = work / case.name
    build_text_model(case, folder, tokenizer_dir, cuda)
    values = compare(folder, work, batch=case.batch, context=case.context, steps=case.steps, cuda=cuda)
    shutil.rmtree(folder, ignore_errors=True)
    return Row(case.name, values)


def run_serving(work: Path, tokenizer_dir: Path, cuda: bool, smoke: bool) -> Row:
    """The engine process serving a 1B-shaped Llama on the device, 1 and 16 streams, against plain
    `generate` there (bench/_gpu_serving.py): issue 17's serving goal on an accelerator."""
    from bench._gpu_serving import compare_serving

    case = Case("tiny-serving", TINY, "full") if smoke else Case("llama-1b-serving", LLAMA_1B, "full")
    folder = work / case.name
    build_text_model(case, folder, tokenizer_dir, cuda)
    values = compare_serving(folder, cuda, tokens=8 if smoke else 128, streams=4 if smoke else 16)
    shutil.rmtree(folder, ignore_errors=True)
    return Row(case.name, values)


def run_image(work: Path, data_dir: Path, cuda: bool, smoke: bool, peak: float) -> Row:
    """A LoRA of a FLUX-shaped transformer (the tiny pipeline's VAE and text encoders around it)
    through run_image_training; on --smoke the tiny pipeline itself."""
    import torch
    from PIL import Image

    from polytune.data.images import to_data_url
    from polytune.domain.spec import AdapterSpec, Hyperparameters, ImageSpec, JobSpec
    from polytune.training.distributed import ReplicaReporter
    from polytune.training.image.loop import run_image_training
    from polytune.catalog.models import Catalog
    from polytune.catalog.tiny_diffusion import synthetic_images

    catalog = Catalog(data_dir)
    tiny = catalog.get("polytune-tiny-diffusion")
    folder = work / "flux-shaped"
    shutil.copytree(catalog.resolve_path(tiny), folder)
    size, batch, steps = (32, 2, 2) if smoke else (128, 4, 6)
    if not smoke:
        from diffusers import FluxTransformer2DModel

        old = FluxTransformer2DModel.load_config(folder / "transformer")
        with torch.device("cuda"):
            big = FluxTransformer2DModel(
                patch_size=1,
                in_channels=old["in_channels"],
                guidance_embeds=False,
                joint_attention_dim=old["joint_attention_dim"],
                pooled_projection_dim=old["pooled_projection_dim"],
                **FLUX,
            ).to(torch.bfloat16)
        shutil.rmtree(folder / "transformer")
        big.save_pretrained(folder / "transformer")
        del big
        torch.cuda.empty_cache()
    images = synthetic_images(8, torch.Generator().manual_seed(0), size=size)
    rows = []
    for i, img in enumerate(images):
        arr = (img.permute(1, 2, 0).clamp(0, 1) * 255).byte().numpy()
        path = work / f"img{i}.png"
        Image.fromarray(arr).save(path)
        rows.append({"image": to_data_url(path.read_bytes()), "caption": f"a red square {i}"})
    spec = JobSpec(
        model=tiny.name,
        method="image_generation",
        training_files=["bench"],
        seed=0,
        hyperparameters=Hyperparameters(max_steps=steps, batch_size=batch, learning_rate=1e-4, n_checkpoints=0),
        adapter=AdapterSpec(kind="lora"),
        image=ImageSpec(samples=0, resolution=size),
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    result = run_image_training(spec, tiny, folder, rows, work / "image-job", ReplicaReporter())
    measured = torch.cuda.max_memory_allocated() if cuda else None
    size_bytes = sum(f.stat().st_size for f in result.final_dir.rglob("*") if f.is_file())
    images_per_s = steps * batch / result.runtime
    return Row(
        "flux-shaped-lora" if not smoke else "tiny-flux-lora",
        {
            "images_per_s": round(images_per_s, 2),
            "peak_gib": round(measured / 2**30, 2) if measured else None,
            "estimate_gib": None,
            "checkpoint_mib": round(size_bytes / 2**20, 2),
        },
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", "--cpu", action="store_true", help="tiny shapes on CPU (the test suite's run)")
    p.add_argument("--json", type=Path, help="also write the rows here")
    p.add_argument("--only", nargs="*", help="case names to run")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers

    cuda = torch.cuda.is_available() and not args.smoke
    if not cuda and not args.smoke:
        print("No CUDA device: run with --smoke for the CPU path.", file=sys.stderr)
        return 2
    from polytune.training.runner import quiet_progress_bars
    from polytune.catalog.tiny import ensure_tiny

    transformers.logging.set_verbosity_error()
    quiet_progress_bars()
    peak = matmul_peak(cuda)
    device = torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores)"
    print(
        f"# GPU check {time.strftime('%Y-%m-%d')} on {device}: torch {torch.__version__}, CUDA "
        f"{torch.version.cuda}, transformers {transformers.__version__}; matmul peak {peak / 1e12:.1f} TFLOP/s"
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="polytune-gpu-check-") as tmp:
        work = Path(tmp)
        tokenizer_dir = ensure_tiny(work / "data" / "models")
        planned = [
            (case.name, lambda case=case: run_text(case, work, tokenizer_dir, cuda, peak))
            for case in cases(args.smoke)
            if not args.only or case.name in args.only
        ]
        if not args.only or any("vs-trl" in o for o in args.only):
            planned.append(("vs-trl", lambda: run_fast_path(work, tokenizer_dir, cuda, args.smoke)))
        if not args.only or any("serving" in o for o in args.only):
            planned.append(("serving", lambda: run_serving(work, tokenizer_dir, cuda, args.smoke)))
        if not args.only or any("flux" in o for o in args.only):
            planned.append(("flux", lambda: run_image(work, work / "data", cuda, args.smoke, peak)))
        for name, run in planned:
            rows.append(measured(name, run))
            print(rows[-1].case, json.dumps(rows[-1].values), flush=True)
    print("\n| case | tokens/s (images/s) | MFU | peak GiB | estimate GiB | estimate/peak | checkpoint s | MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        v = r.values
        print(
            f"| {r.case} | {v.get('tokens_per_s', v.get('images_per_s', v.get('error')))} | {v.get('mfu', '—')} | "
            f"{v.get('peak_gib') or '—'} | {v.get('estimate_gib') or '—'} | {v.get('estimate_ratio') or '—'} | "
            f"{v.get('checkpoint_s', '—')} | {v.get('checkpoint_mib', '—')} |"
        )
    for r in rows:
        if r.values.get("speedup") is not None:
            print(
                f"\n{r.case}: polytune's defaults {r.values['tokens_per_s']} tokens/s against plain TRL's "
                f"{r.values['plain_tokens_per_s']}: {r.values['speedup']}x (target >= 1.8x); polytune "
                f"{json.dumps(r.values['polytune_path'])}, plain {json.dumps(r.values['plain_path'])}"
            )
    for r in rows:
        if r.values.get("serving_1_ratio") is not None:
            print(f"\n{r.case}: the engine process against plain `generate`: {json.dumps(r.values)}")
    if args.json:
        args.json.write_text(json.dumps({r.case: r.values for r in rows}, indent=2))
    off = [r.case for r in rows if r.values.get("estimate_ratio") and not 0.75 <= r.values["estimate_ratio"] <= 1.25]
    if off:
        print(f"memory estimate off by more than 25% for: {', '.join(off)}")
    failed = [r.case for r in rows if "error" in r.values]
    if failed:
        print(f"failed (the others still ran; tracebacks on stderr): {', '.join(failed)}")
    return 1 if off or failed else 0


def measured(name: str, run: Callable[[], Row]) -> Row:
    """One row; a row that fails becomes a row saying why, and the check goes on to the next.
    The device is lent for minutes at a time: one case's error must not cost the others."""
    try:
        return run()
    except Exception as e:  # noqa: BLE001 - reported in the row and on stderr
        traceback.print_exc()
        row = Row(name, {"error": f"{type(e).__name__}: {e}"[:500]})
    import gc

    import torch

    gc.collect()  # what the failed case held (its model, its optimizer) goes before the next
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return row


if __name__ == "__main__":
    sys.exit(main())
