"""gpu_check.py's serving row: the default backend (the engine in its own process, spawned, its
CUDA context its own) against plain transformers `generate` on the same model, dtype and device:
one stream, and 16 streams (the engine batches them; plain `generate` takes them one after
another, as a loop a user writes would). Greedy, a fixed number of new tokens (no stop token),
the same prompts of token ids on both sides.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any


def compare_serving(folder: Path, cuda: bool, tokens: int, streams: int, prompt_tokens: int = 64) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from polytune.inference.backend import ModelTarget, SamplingParams
    from polytune.inference.process_backend import ProcessBackend

    prompts = [[5 + (7 * i + 13 * j) % 4000 for j in range(prompt_tokens)] for i in range(streams)]
    device = "cuda" if cuda else "cpu"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16 if cuda else torch.float32)
    model = model.to(device).eval()
    model.generation_config.eos_token_id = None  # every request runs to `tokens`, as on the engine

    def plain(batch: list[list[int]]) -> float:
        start, made = time.perf_counter(), 0
        with torch.inference_mode():
            for ids in batch:
                out = model.generate(
                    torch.tensor([ids], device=device),
                    attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=device),
                    do_sample=False,
                    max_new_tokens=tokens,
                    pad_token_id=0,
                )
                made += out.shape[1] - len(ids)
        if cuda:
            torch.cuda.synchronize()
        return made / (time.perf_counter() - start)

    backend = ProcessBackend(memory_budget_bytes=80 * 2**30, max_batch=max(16, streams), hand_over_interval=0.01)
    target = ModelTarget("gpu-check-serving", folder)
    params = SamplingParams(max_tokens=tokens, temperature=0)

    async def one(i: int, ids: list[int]) -> int:
        return sum([len(evs) async for evs in backend.generate(f"r{i}-{time.monotonic_ns()}", target, ids, params)])

    made_by_engine = []

    async def engine(batch: list[list[int]]) -> float:
        start = time.perf_counter()
        made = sum(await asyncio.gather(*[one(i, ids) for i, ids in enumerate(batch)]))
        made_by_engine.append(made)
        return made / (time.perf_counter() - start)

    try:
        asyncio.run(engine(prompts[:1]))  # warm-up: the engine process starts and loads the model
        plain(prompts[:1])
        one_plain, one_engine = plain(prompts[:1]), asyncio.run(engine(prompts[:1]))
        many_plain, many_engine = plain(prompts), asyncio.run(engine(prompts))
    finally:
        backend.close()
        model = None  # the next case gets the device's memory back
        if cuda:
            torch.cuda.empty_cache()
    return {
        "tokens_per_s": round(many_engine, 1),
        "serving_1_stream": round(one_engine, 1),
        "plain_1_stream": round(one_plain, 1),
        "serving_1_ratio": round(one_engine / one_plain, 2),
        f"serving_{streams}_streams": round(many_engine, 1),
        f"plain_{streams}_in_turn": round(many_plain, 1),
        f"serving_{streams}_ratio": round(many_engine / many_plain, 2),
        # every request ran to its length on the engine: streams x tokens in the last run
        "serving_tokens": made_by_engine[-1],
        "requested_tokens": streams * tokens,
    }
