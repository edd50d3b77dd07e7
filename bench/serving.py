"""Serving throughput of polytune's chat endpoint against plain transformers `generate`, in one run.

Both run the same model (polytune-tiny, or with --size small a ~30 M-parameter Llama added to
the catalog) on the same prompts, greedy, with the same number of torch CPU threads. Printed:

1. one stream: tokens/s of plain `model.generate` in this process, and of polytune's
   /v1/chat/completions through the real server (non-streaming and streaming SSE), and their
   ratio (target >= 0.9);
2. 8 concurrent streams across 4 LoRA adapters of the same base (4 tiny LoRA fine-tunes made
   through the API first): total tokens/s, per-stream tokens/s and time to first token, next
   to the same 8 requests one after another.

    .venv/bin/python bench/serving.py [--size tiny|small] [--tokens 128] [--threads 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = ["Tell me about the river and the king.", "What is the capital of Zorbia?",
           "Describe a morning in the mountains.", "Who founded the city of Ostrava Nine?"]


def build_small(folder: Path) -> Path:
    """A random-init Llama with polytune-tiny's tokenizer, ~30 M parameters."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from polytune.catalog.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                         num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=2048,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


class PlainGenerate:
    """Plain transformers: the chat template, then greedy `generate`, one prompt at a time."""

    def __init__(self, model_dir: Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.parameters = sum(p.numel() for p in self.model.parameters())
        self.run(4)  # warm-up

    def run(self, tokens: int) -> dict:
        import torch

        generated, seconds = 0, 0.0
        with torch.inference_mode():
            for text in PROMPTS:
                inputs = self.tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                            add_generation_prompt=True, tokenize=True,
                                                            return_dict=True, return_tensors="pt")
                start = time.perf_counter()
                out = self.model.generate(**inputs, do_sample=False, max_new_tokens=tokens,
                                          pad_token_id=self.tokenizer.pad_token_id)
                seconds += time.perf_counter() - start
                generated += out.shape[1] - inputs["input_ids"].shape[1]
        return {"tokens": generated, "seconds": seconds}


def ask(client, model: str, text: str, tokens: int, stream: bool) -> dict:
    """One chat request; its completion tokens, wall time and time to the first token."""
    messages = [{"role": "user", "content": text}]
    start = time.perf_counter()
    if not stream:
        out = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=tokens)
        return {"tokens": out.usage.completion_tokens, "seconds": time.perf_counter() - start, "ttft": None}
    first, usage = None, None
    for chunk in client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=tokens,
                                                stream=True, stream_options={"include_usage": True}):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        usage = chunk.usage or usage
    return {"tokens": usage.completion_tokens, "seconds": time.perf_counter() - start, "ttft": first}


def one_stream(client, model: str, tokens: int, stream: bool) -> dict:
    runs = [ask(client, model, text, tokens, stream) for text in PROMPTS]
    return {"tokens": sum(r["tokens"] for r in runs), "seconds": sum(r["seconds"] for r in runs)}


def make_adapters(client, base: str, n: int) -> list[str]:
    """n small LoRA fine-tunes of `base` through the API (1 epoch of 8 examples each)."""
    rows = [{"messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": "Yes."}]}
            for i in range(8)]
    data = ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
    f = client.files.create(file=("lora.jsonl", io.BytesIO(data)), purpose="fine-tune")
    jobs = [client.fine_tuning.jobs.create(model=base, training_file=f.id, suffix=f"bench{i}", seed=i,
                                           hyperparameters={"n_epochs": 1, "batch_size": 4, "lora": True,
                                                            "n_checkpoints": 0}) for i in range(n)]
    models = []
    for job in jobs:
        while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.5)
        if job.status != "succeeded":
            raise SystemExit(f"adapter job {job.id} {job.status}: {job.error}")
        models.append(job.fine_tuned_model)
    return models


def concurrent(client, models: list[str], streams: int, tokens: int) -> dict:
    plan = [(models[i % len(models)], PROMPTS[i % len(PROMPTS)]) for i in range(streams)]
    for model in models:
        ask(client, model, PROMPTS[0], 4, False)  # warm-up: every adapter loaded
    sequential_start = time.perf_counter()
    sequential = [ask(client, model, text, tokens, True) for model, text in plan]
    sequential_seconds = time.perf_counter() - sequential_start
    start = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        runs = list(pool.map(lambda p: ask(client, p[0], p[1], tokens, True), plan))
    wall = time.perf_counter() - start
    return {"tokens": sum(r["tokens"] for r in runs), "wall": wall,
            "per_stream": sum(r["tokens"] / r["seconds"] for r in runs) / len(runs),
            "ttft": sorted(r["ttft"] for r in runs)[len(runs) // 2],
            "sequential_tokens": sum(r["tokens"] for r in sequential), "sequential_wall": sequential_seconds}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=["tiny", "small"], default="tiny")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, for both sides")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from openai import OpenAI

    from polytune.catalog.models import Catalog
    from tests.conftest import LiveServer

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        catalog = Catalog(tmp / "server" / "data")
        model = "polytune-tiny"
        if args.size == "small":
            model = "bench-small"
            catalog.add(model, build_small(tmp / "small"), adapter_default="lora", base_learning_rate=1e-3)
        model_dir = Path(catalog.resolve_path(catalog.get(model)))
        plain = PlainGenerate(model_dir)
        server = LiveServer(tmp / "server", f"sqlite:///{tmp / 'server' / 'polytune.db'}",
                            POLYTUNE_INFERENCE_THREADS=str(args.threads))
        try:
            client = OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key("bench"), max_retries=0)
            ask(client, model, PROMPTS[0], 4, False)  # warm-up: the server loads the model
            # Rounds alternate between the two sides, so a busy machine slows both alike; the
            # median round of each side is reported.
            rounds = {"plain": [], "whole": [], "streamed": []}
            for _ in range(args.rounds):
                rounds["plain"].append(plain.run(args.tokens))
                rounds["whole"].append(one_stream(client, model, args.tokens, stream=False))
                rounds["streamed"].append(one_stream(client, model, args.tokens, stream=True))
            adapters = make_adapters(client, model, 4)
            many = concurrent(client, adapters, 8, args.tokens)
        finally:
            server.stop()

    rate = lambda r: r["tokens"] / r["seconds"]  # noqa: E731
    median = lambda runs: sorted(runs, key=rate)[len(runs) // 2]  # noqa: E731
    parameters = plain.parameters
    plain, whole, streamed = (median(rounds[k]) for k in ("plain", "whole", "streamed"))
    print(f"\nServing {model} ({parameters / 1e6:.1f} M parameters), greedy, up to {args.tokens} new "
          f"tokens per request, {len(PROMPTS)} prompts, {args.threads} torch thread(s), {os.cpu_count()} CPU cores, median of {args.rounds} rounds\n")
    print("| one stream | tokens | seconds | tokens/s | ratio to plain |")
    print("|---|---|---|---|---|")
    print(f"| plain transformers `generate` | {plain['tokens']} | {plain['seconds']:.2f} | {rate(plain):.1f} | 1.00 |")
    for name, r in (("polytune /v1/chat/completions", whole), ("polytune, stream=true (SSE)", streamed)):
        print(f"| {name} | {r['tokens']} | {r['seconds']:.2f} | {rate(r):.1f} | {rate(r) / rate(plain):.2f} |")
    print("\n| 8 streams across 4 LoRA adapters | tokens | wall s | total tokens/s | per-stream tokens/s | "
          "median time to first token |")
    print("|---|---|---|---|---|---|")
    print(f"| one after another | {many['sequential_tokens']} | {many['sequential_wall']:.2f} | "
          f"{many['sequential_tokens'] / many['sequential_wall']:.1f} | | |")
    print(f"| all at once | {many['tokens']} | {many['wall']:.2f} | {many['tokens'] / many['wall']:.1f} | "
          f"{many['per_stream']:.1f} | {many['ttft'] * 1000:.0f} ms |")
    print(f"\none-stream ratio polytune / plain: {rate(whole) / rate(plain):.2f} (target >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
