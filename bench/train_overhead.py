"""Training overhead of a polytune job against a plain TRL script, side by side in one run.

Both train the same tiny model on the same data with the same seed and hyperparameters: the
plain script builds trl's SFTTrainer by hand; polytune's job goes through the real server,
scheduler, worker process, recipe and reporter (a store write per step). Printed: steps/s of
each (from the trainer's own train_runtime) and their ratio, and the loss at the last step.
Target: ratio >= 0.95 and equal final loss.

    .venv/bin/python bench/train_overhead.py [--epochs 3] [--batch-size 4] [--smoke]

--smoke: one epoch at batch 8, the smallest run through every part (the test suite runs it).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LR, SEED = 3e-3, 1234


def rows() -> list[dict]:
    text = resources.files("polytune.examples").joinpath("qa.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def plain_trl(model_dir: Path, data: list[dict], epochs: int, batch: int, out: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = SFTConfig(
        output_dir=str(out),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch,
        learning_rate=LR,
        lr_scheduler_type="constant",
        max_length=1024,
        assistant_only_loss=True,
        use_cpu=True,
        bf16=False,
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
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(data), processing_class=tok)
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "steps": trainer.state.global_step,
        "runtime": result.metrics["train_runtime"],
        "steps_per_s": result.metrics["train_steps_per_second"],
        "final_loss": losses[-1],
    }


def polytune_job(data_dir: Path, data: list[dict], epochs: int, batch: int) -> dict:
    from openai import OpenAI

    from tests.conftest import LiveServer

    server = LiveServer(data_dir, f"sqlite:///{data_dir / 'polytune.db'}")
    try:
        client = OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key("bench"))
        body = "\n".join(json.dumps(r) for r in data).encode()
        f = client.files.create(file=("qa.jsonl", io.BytesIO(body)), purpose="fine-tune")
        t0 = time.monotonic()
        job = client.fine_tuning.jobs.create(
            model="polytune-tiny",
            training_file=f.id,
            seed=SEED,
            hyperparameters={"n_epochs": epochs, "batch_size": batch, "learning_rate": LR, "lr_scheduler": "constant"},
        )
        while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.2)
        wall = time.monotonic() - t0
        if job.status != "succeeded":
            raise SystemExit(f"polytune job {job.status}: {job.error}")
        finished = next(
            e for e in client.fine_tuning.jobs.list_events(job.id, limit=200) if e.data and "train_runtime" in e.data
        )
        results = list(csv.DictReader(io.StringIO(client.files.content(job.result_files[0]).text)))
        return {
            "steps": int(results[-1]["step"]),
            "runtime": finished.data["train_runtime"],
            "steps_per_s": finished.data["train_steps_per_second"],
            "final_loss": float(results[-1]["train_loss"]),
            "job_wall": wall,
        }
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--smoke", action="store_true", help="smallest run through every part (for the tests)")
    args = ap.parse_args()
    if args.smoke:
        args.epochs, args.batch_size = 1, 8
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from polytune.catalog.tiny import ensure_tiny

    data = rows()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = ensure_tiny(tmp / "models")
        plain = plain_trl(model_dir, data, args.epochs, args.batch_size, tmp / "plain")
        ours = polytune_job(tmp / "server", data, args.epochs, args.batch_size)
    ratio = ours["steps_per_s"] / plain["steps_per_s"]
    print(f"\nSFT, polytune-tiny, {len(data)} examples, {args.epochs} epochs, batch {args.batch_size}, seed {SEED}\n")
    print("| run | steps | train s | steps/s | final loss |")
    print("|---|---|---|---|---|")
    print(
        f"| plain TRL script | {plain['steps']} | {plain['runtime']:.2f} | {plain['steps_per_s']:.2f} | {plain['final_loss']:.6f} |"
    )
    print(
        f"| polytune job | {ours['steps']} | {ours['runtime']:.2f} | {ours['steps_per_s']:.2f} | {ours['final_loss']:.6f} |"
    )
    print(f"\nsteps/s ratio polytune / plain: {ratio:.3f} (target >= 0.95)")
    print(f"final loss difference: {abs(ours['final_loss'] - plain['final_loss']):.2e} (target: equal)")
    print(f"polytune job wall time, create -> succeeded: {ours['job_wall']:.1f} s (includes worker start-up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
