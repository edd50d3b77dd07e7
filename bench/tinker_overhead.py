"""What a Tinker-API training step costs beside the same step in a plain torch loop.

The same LoRA (rank 8 on attention, MLP and unembedding), the same batch of `--batch`
sequences of `--tokens` tokens, the same torch AdamW, on each model of `--models`:
polytune-tiny (~1 M parameters) and bench-29m, the 29 M-parameter Llama that
bench/train_throughput.py builds deterministically offline (bench/serving.py:build_small), added
to the server's catalog:

1. plain: transformers + peft + torch in this process, forward, backward, optimizer step;
2. tinker: the official SDK against a live `polytune serve`, forward_backward then optim_step
   submitted back to back (the model stays resident in the server's worker between calls).

Reported: seconds per step for each (median of `--steps` steps after one warm-up step) and
plain / tinker (1.0 = no overhead; the issue asks for >= 0.8 at batch 8).

    .venv/bin/python bench/tinker_overhead.py [--steps 10] [--batch 8] [--tokens 64]
        [--models polytune-tiny,bench-29m] [--smoke]

--smoke: 2 steps of batch 2, and a 2-layer hidden-64 model in place of the 29 M one (the test
suite runs it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / ".venv-clients"))  # the tinker SDK (requirements-clients.txt)
os.environ.setdefault("TINKER_TELEMETRY", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def batch(n: int, length: int) -> list[list[int]]:
    import random

    rng = random.Random(0)
    return [[rng.randrange(10, 400) for _ in range(length)] for _ in range(n)]


class Plain:
    """The same step in a plain loop: transformers + peft + torch AdamW, in this process."""

    def __init__(self, model_dir: Path, rows: list[list[int]]):
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        from polytune.domain.primitives import LoraSettings
        from polytune.training.primitives.model import lora_targets

        self.torch = torch
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        torch.manual_seed(0)
        targets = lora_targets(base, LoraSettings(rank=8))
        self.model = get_peft_model(base, LoraConfig(r=8, lora_alpha=32, target_modules=targets, task_type="CAUSAL_LM"))
        self.opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=1e-3)
        self.ids = torch.tensor([r[:-1] for r in rows])
        self.targets = torch.tensor([r[1:] for r in rows])

    def step(self) -> None:
        logp = self.torch.log_softmax(self.model(input_ids=self.ids).logits.float(), -1)
        (-logp.gather(-1, self.targets.unsqueeze(-1)).sum()).backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)


def measure(
    tmp: Path, models: dict[str, Path | None], rows: list[list[int]], steps: int
) -> dict[str, tuple[float, float]]:
    """{model: median seconds per step (plain, tinker)}, the two taking turns step by step so
    that the machine's load (busy on the development machine) weighs on both alike. A model
    with a folder is added to the server's catalog first; None: a catalog model already."""
    import subprocess

    import tinker
    from tinker import types

    from polytune.catalog.models import Catalog
    from tests.conftest import BIN, LiveServer

    catalog = Catalog(tmp / "data")
    for name, folder in models.items():
        if folder is not None:
            catalog.add(name, folder, adapter_default="lora")
    # One slot per model: each run holds its slot while it lives (a Tinker run never queues).
    # The production scheduler interval (0.5 s), not the test suite's 0.2 s: each pass holds the
    # GIL for a few ms in the process where the runs compute.
    server = LiveServer(
        tmp,
        f"sqlite:///{tmp / 'polytune.db'}",
        POLYTUNE_WORKER_SLOTS=str(len(models)),
        POLYTUNE_SCHEDULER_INTERVAL="0.5",
    )
    try:
        key = subprocess.run(
            [str(BIN / "polytune"), "keys", "create", "--org", "bench", "--prefix", "tml-"],
            env=server.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        service = tinker.ServiceClient(base_url=server.url, api_key=key)
        data = [
            types.Datum(model_input=types.ModelInput.from_ints(r[:-1]), loss_fn_inputs={"target_tokens": r[1:]})
            for r in rows
        ]
        results = {}
        for name in models:
            tc = service.create_lora_training_client(base_model=name, rank=8, seed=0).result()
            plain = Plain(Path(catalog.resolve_path(catalog.get(name))), rows)

            def tinker_step() -> None:
                fb = tc.forward_backward(data, "cross_entropy")
                step = tc.optim_step(types.AdamParams(learning_rate=1e-3))
                fb.result()
                step.result()

            plain_times: list[float] = []
            tinker_times: list[float] = []
            for _ in range(steps + 1):  # the first of each is a warm-up
                for call, times in ((plain.step, plain_times), (tinker_step, tinker_times)):
                    start = time.perf_counter()
                    call()
                    times.append(time.perf_counter() - start)
            results[name] = statistics.median(plain_times[1:]), statistics.median(tinker_times[1:])
            del plain  # the run's model stays resident in the server, idle: it costs the next nothing
        return results
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--models", default="polytune-tiny,bench-29m")
    parser.add_argument("--smoke", action="store_true", help="smallest run through every part (for the tests)")
    args = parser.parse_args()
    size = {"hidden": 512, "layers": 8, "intermediate": 1536}  # bench/train_throughput.py's 29 M model
    if args.smoke:
        args.steps, args.batch, args.tokens = 2, 2, 16
        size = {"hidden": 64, "layers": 2, "intermediate": 128}
    from bench.serving import build_small

    with tempfile.TemporaryDirectory() as tmp:
        names = [m for m in args.models.split(",") if m]
        models = {m: None if m == "polytune-tiny" else build_small(Path(tmp) / m, **size) for m in names}
        results = measure(Path(tmp) / "server", models, batch(args.batch, args.tokens), args.steps)
    print(f"load average (1 min) after the run: {os.getloadavg()[0]:.2f}")
    print("| model | batch x tokens | plain torch s/step | tinker API s/step | plain / tinker |")
    print("|---|---|---|---|---|")
    for name, (plain_s, tinker_s) in results.items():
        print(f"| {name} | {args.batch} x {args.tokens} | {plain_s:.4f} | {tinker_s:.4f} | {plain_s / tinker_s:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
