"""Training throughput where compute matters: plain TRL against polytune jobs on a 29 M-parameter
model, side by side and interleaved in one run, with each run's model FLOP utilisation (MFU).

The model: a random-initialised Llama (hidden 512, 8 layers, MLP 1536, 8 heads, tied
embeddings, polytune-tiny's tokenizer: ~29 M parameters), built here deterministically. The
data: 96 chat examples of mixed length (a few dozen to a few hundred tokens), generated here
from seed 0. Every run: 1 epoch, batch 8, constant lr 1e-3, seed 0, LoRA r16/alpha 32 on all
linear layers or a full fine-tune, loss on the assistant turns only.

Runs (`--runs`, each for every `--methods` entry):
- plain: trl's SFTTrainer written by hand with its CPU settings (fp32, no gradient
  checkpointing, no packing): the script a user would write;
- plain-bf16: the same with `bf16=True` (autocast), for reference;
- polytune-same: a polytune job through the real server (warm worker), forced to the plain
  script's path (POLYTUNE_TRAIN_PRECISION=fp32, packing false): goal ratio >= 0.97 and the
  same first-step loss;
- polytune: a polytune job with its defaults (the path training/fast_path.py picks for this
  machine, padding-free batches): goal >= 1.4x plain, final loss within 3% of plain's.

The machine's matmul peak (torch.mm, fp32 and bf16, at the thread count the runs use) is
measured in the same run; MFU = model FLOPs per second / the peak of the dtype the run
computes in. Model FLOPs per token: 6·N for a full fine-tune; for LoRA 4·N (forward, and the
backward through the frozen weights) + 6·N_lora (the adapter's own forward and both
backwards) — N the base model's parameters. Tokens: non-padding tokens seen by the trainer.
Runs alternate plain, polytune, ..., then in reverse (`--repeats` rounds, ABBA) and the table
keeps each side's fastest run (the least disturbed by other work on the machine) and the ratio
of the medians, with `uptime`'s load printed beside it. Each plain run is a process of its own,
as a user's script is.

    .venv/bin/python bench/train_throughput.py [--methods lora,full] [--repeats 2]
        [--runs plain,polytune-same,polytune,plain-bf16] [--model 512x8x1536] [--smoke]

--smoke: a 2-layer hidden-64 model, 16 examples, LoRA, plain against both polytune runs: the
smallest run through every part (the test suite runs it).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LR, SEED, BATCH, RANK = 1e-3, 0, 8, 16
MODEL = "bench-29m"
WORDS = (
    "river king mountain city morning stone bright quiet ancient market harbour lantern winter "
    "garden merchant bridge silver forest valley tower song letter road storm candle island "
    "north south east west old new small great first last"
).split()


def chat_rows(n: int, seed: int = SEED) -> list[dict]:
    """n conversations whose lengths spread from a few dozen to a few hundred tokens."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 40)))
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.choice((3, 10, 30, 80, 160))))
        messages = [{"role": "user", "content": f"{i}: {question}?"}, {"role": "assistant", "content": answer}]
        if i % 3 == 0:
            messages.insert(0, {"role": "system", "content": "Answer in the style of a chronicle."})
        rows.append({"messages": messages})
    return rows


def matmul_peak(dtype_name: str, size: int = 2048, reps: int = 5) -> float:
    """Best FLOP/s of a square torch.mm at this process's torch thread count."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def model_flops_per_token(params: int, lora_params: int) -> int:
    return 4 * params + 6 * lora_params if lora_params else 6 * params


def lora_parameter_count(model_dir: Path) -> int:
    """Parameters a r16 all-linear LoRA adds to the model (peft's own count)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    peft_model = get_peft_model(
        model, LoraConfig(r=RANK, lora_alpha=2 * RANK, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    return peft_model.get_nb_trainable_parameters()[0]


def plain_trl(model_dir: Path, data: list[dict], method: str, out: Path, *, bf16: bool) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    lora = (
        LoraConfig(r=RANK, lora_alpha=2 * RANK, target_modules="all-linear", task_type="CAUSAL_LM")
        if method == "lora"
        else None
    )
    config = SFTConfig(
        output_dir=str(out),
        num_train_epochs=1,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        lr_scheduler_type="constant",
        max_length=1024,
        assistant_only_loss=True,
        use_cpu=True,
        bf16=bf16,
        gradient_checkpointing=False,
        seed=SEED,
        data_seed=SEED,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=Dataset.from_list(data), processing_class=tok, peft_config=lora
    )
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "threads": torch.get_num_threads(),
        "padding_free": False,
        "seconds": result.metrics["train_runtime"],
        "tokens": int(trainer.state.num_input_tokens_seen),
        "first_loss": losses[0],
        "final_loss": losses[-1],
        "dtype": "bf16" if bf16 else "fp32",
    }


def plain_in_own_process(model_dir: Path, examples: int, method: str, out: Path, *, bf16: bool) -> dict:
    """plain_trl as a user runs their script: `python script.py`, a process of its own. (Run in
    the benchmark's process, plain inherited an allocator the matmul peak and earlier runs had
    warmed: about half the page faults of a fresh process.)"""
    import subprocess

    args = {"model_dir": str(model_dir), "examples": examples, "method": method, "out": str(out), "bf16": bf16}
    done = subprocess.run(
        [sys.executable, __file__, "--plain-child", json.dumps(args)], capture_output=True, text=True, check=False
    )
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not results:
        raise SystemExit(f"plain run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(results[-1].removeprefix("RESULT "))


def plain_child(arguments: str) -> int:
    a = json.loads(arguments)
    data = chat_rows(a["examples"])
    result = plain_trl(Path(a["model_dir"]), data, a["method"], Path(a["out"]), bf16=a["bf16"])
    print("RESULT " + json.dumps(result), flush=True)
    return 0


class PolytuneServer:
    """A real `polytune serve` with the benchmark model in its catalog, warm workers on."""

    def __init__(self, tmp: Path, model_dir: Path, data: list[dict], **env: str):
        from openai import OpenAI

        from polytune.catalog.models import Catalog
        from tests.conftest import LiveServer

        Catalog(tmp / "data").add(
            MODEL, model_dir, adapter_default="lora", base_learning_rate=LR, lr_scheduler="constant"
        )
        # The scheduler's own default interval (the test servers poll faster).
        self.server = LiveServer(tmp, f"sqlite:///{tmp / 'polytune.db'}", POLYTUNE_SCHEDULER_INTERVAL="0.5", **env)
        self.client = OpenAI(base_url=f"{self.server.url}/v1", api_key=self.server.create_key("bench"))
        body = "\n".join(json.dumps(r) for r in data).encode()
        self.file = self.client.files.create(file=("mixed.jsonl", io.BytesIO(body)), purpose="fine-tune").id

    def run(self, method: str, **extra) -> dict:
        hp = {
            "n_epochs": 1,
            "batch_size": BATCH,
            "learning_rate": LR,
            "lr_scheduler": "constant",
            "lora": method == "lora",
            **extra,
        }
        if method == "lora":
            hp.update(lora_r=RANK, lora_alpha=2 * RANK)
        job = self.client.fine_tuning.jobs.create(model=MODEL, training_file=self.file, seed=SEED, hyperparameters=hp)
        # Polled once a second: the API request is work on the same cores as the training.
        while (job := self.client.fine_tuning.jobs.retrieve(job.id)).status not in ("succeeded", "failed", "cancelled"):
            time.sleep(1.0)
        if job.status != "succeeded":
            raise SystemExit(f"polytune job {job.status}: {job.error}")
        events = list(self.client.fine_tuning.jobs.list_events(job.id, limit=200))
        finished = next(e.data for e in events if e.data and "train_runtime" in e.data)
        started = next(e.data for e in events if e.message.startswith("Training started"))
        results = list(csv.DictReader(io.StringIO(self.client.files.content(job.result_files[0]).text)))
        return {
            "seconds": finished["train_runtime"],
            "tokens": finished["input_tokens_seen"],
            "first_loss": float(results[0]["train_loss"]),
            "final_loss": float(results[-1]["train_loss"]),
            "dtype": "bf16" if started.get("bf16") else "fp32",
            "threads": started.get("torch_threads"),
            "padding_free": started.get("padding_free"),
        }

    def stop(self) -> None:
        self.server.stop()


def median_seconds(runs: list[dict]) -> float:
    import statistics

    return statistics.median(r["seconds"] for r in runs)


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="lora,full")
    ap.add_argument("--runs", default="plain,polytune-same,polytune,plain-bf16")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--examples", type=int, default=96)
    ap.add_argument("--model", default="512x8x1536", help="hidden x layers x MLP size of the Llama built here")
    ap.add_argument("--smoke", action="store_true", help="smallest run through every part (for the tests)")
    ap.add_argument("--plain-child", help=argparse.SUPPRESS)  # one plain run, in a process of its own
    args = ap.parse_args()
    if args.plain_child:
        return plain_child(args.plain_child)
    hidden, layers, intermediate = (int(v) for v in args.model.split("x"))
    size = {"hidden": hidden, "layers": layers, "intermediate": intermediate}
    if args.smoke:
        args.repeats, args.examples, size = 1, 16, {"hidden": 64, "layers": 2, "intermediate": 128}
        args.methods, args.runs = "lora", "plain,polytune-same,polytune"
    methods = [m for m in args.methods.split(",") if m]
    runs = [r for r in args.runs.split(",") if r]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from bench.serving import build_small

    data = chat_rows(args.examples)
    # --smoke: a small matmul. A CPU without bf16 instructions takes many minutes on a 2048² bf16
    # one (emulated), and no run of the table computes in bf16 there: its bf16 peak is not measured.
    from polytune.training.cpu_path import BF16_CPU_FLAGS, cpu_flags

    has_bf16 = bool(set(BF16_CPU_FLAGS) & cpu_flags()) or torch.cuda.is_available()
    peaks = {
        d: matmul_peak(d, size=256 if args.smoke else 2048) if d == "fp32" or has_bf16 else float("nan")
        for d in ("fp32", "bf16")
    }
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = build_small(tmp / "model", **size)
        params = sum(
            p.numel() for p in __import__("transformers").AutoModelForCausalLM.from_pretrained(model_dir).parameters()
        )
        lora_params = lora_parameter_count(model_dir)
        servers = {}
        try:
            if "polytune-same" in runs:
                servers["polytune-same"] = PolytuneServer(
                    tmp / "same", model_dir, data, POLYTUNE_TRAIN_PRECISION="fp32"
                )
            if "polytune" in runs:
                servers["polytune"] = PolytuneServer(tmp / "default", model_dir, data)
            for round_ in range(args.repeats):
                for method in methods:
                    # Odd rounds run in reverse (ABBA): a drift in the machine's speed falls on both.
                    for run in runs if round_ % 2 == 0 else runs[::-1]:
                        before = load()
                        if run.startswith("plain"):
                            r = plain_in_own_process(
                                model_dir, args.examples, method, tmp / f"plain-{round_}", bf16=run == "plain-bf16"
                            )
                        else:
                            r = servers[run].run(method, **({"packing": False} if run == "polytune-same" else {}))
                        r["load"] = f"{before}/{load()}"
                        results.setdefault((method, run), []).append(r)
                        print(
                            f"round {round_ + 1} {method} {run}: {r['seconds']:.2f} s, {r['tokens']} tokens, "
                            f"first loss {r['first_loss']:.6f}, load {r['load']}",
                            flush=True,
                        )
        finally:
            for server in servers.values():
                server.stop()

    print(
        f"\nSFT, {params / 1e6:.1f} M parameters (LoRA r{RANK}: {lora_params / 1e6:.2f} M trainable), "
        f"{len(data)} mixed-length chat examples, 1 epoch, batch {BATCH}, constant lr {LR}, seed {SEED}, "
        f"torch threads {torch.get_num_threads()}, {os.cpu_count()} cores, fastest (and median) of {args.repeats}"
    )
    print(
        f"matmul peak (torch.mm 2048², this process): fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, "
        f"bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s\n"
    )
    print(
        "| method | run | train s | tokens/s | × plain | × plain (medians) | first-step loss | final loss | GFLOP/s | "
        "MFU | torch threads | padding-free | load (1-min, before/after) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for method in methods:
        base = min(results[(method, "plain")], key=lambda r: r["seconds"]) if (method, "plain") in results else None
        per_token = model_flops_per_token(params, lora_params if method == "lora" else 0)
        for run in runs:
            r = min(results[(method, run)], key=lambda r: r["seconds"])
            rate = r["tokens"] / r["seconds"]
            speedup = f"{(base['seconds'] / r['seconds']):.2f}" if base else ""
            medians = (
                f"{median_seconds(results[(method, 'plain')]) / median_seconds(results[(method, run)]):.2f}"
                if base
                else ""
            )
            flops = per_token * rate
            print(
                f"| {method} | {run} | {r['seconds']:.2f} | {rate:.0f} | {speedup} | {medians} | {r['first_loss']:.6f} | "
                f"{r['final_loss']:.6f} | {flops / 1e9:.1f} | {flops / peaks[r['dtype']]:.1%} ({r['dtype']}) | "
                f"{r['threads']} | {'yes' if r['padding_free'] else 'no'} | {r['load']} |"
            )
    print(
        "\ngoals: polytune-same >= 0.97 x plain with the same first-step loss; polytune >= 1.4 x plain, final "
        "loss within 3% of plain's"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
