"""Disk and time per checkpoint of a real job, and how many copies of each the store holds.

One SFT job on polytune-tiny through a live server (scheduler, worker, recipe, reporter), with
user-visible epoch checkpoints and resume checkpoints every few steps. Printed, one row per
checkpoint: its kind, step, bytes and the seconds its storing took (resume checkpoints upload in
the background while training goes on: store/uploads.py), then the store's bytes under the job's
checkpoints against the bytes of the folders (target: 1.00 copy; before, a tar copy doubled it),
and steps/s against the same job without resume checkpoints.

    .venv/bin/python bench/checkpoint_cost.py [--epochs 4] [--every 4] [--smoke]
"""

from __future__ import annotations

import argparse
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
SEED = 1234


def rows() -> list[dict]:
    text = resources.files("polytune.examples").joinpath("qa.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def run_job(tmp: Path, epochs: int, every: int, n_checkpoints: int) -> dict:
    from openai import OpenAI

    from tests.conftest import LiveServer

    server = LiveServer(tmp, f"sqlite:///{tmp / 'polytune.db'}", POLYTUNE_RESUME_CHECKPOINT_STEPS=str(every))
    try:
        client = OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key("bench"))
        body = "\n".join(json.dumps(r) for r in rows()).encode()
        f = client.files.create(file=("qa.jsonl", io.BytesIO(body)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(
            model="polytune-tiny",
            training_file=f.id,
            seed=SEED,
            hyperparameters={"n_epochs": epochs, "batch_size": 4, "n_checkpoints": n_checkpoints},
        )
        while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.5)
        if job.status != "succeeded":
            raise SystemExit(f"job {job.status}: {job.error}")
        events = list(client.fine_tuning.jobs.list_events(job.id, limit=1000))
        blobs = tmp / "data" / "blobs"
        ckpt_store = sum(p.stat().st_size for p in (blobs / "models" / job.id).glob("ckpt-step-*/**/*") if p.is_file())
        files_store = sum(p.stat().st_size for p in (blobs / "files").glob("*") if p.is_file())
        finished = next(e for e in events if e.data and "train_steps_per_second" in e.data)
        return {
            "events": events,
            "ckpt_store": ckpt_store,
            "files_store": files_store,
            "steps_per_s": finished.data["train_steps_per_second"],
        }
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--every", type=int, default=4, help="steps between resume checkpoints")
    ap.add_argument("--smoke", action="store_true", help="smallest run through every part (for the tests)")
    args = ap.parse_args()
    if args.smoke:
        args.epochs, args.every = 2, 3
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        # Without first, then with: a first job on a fresh machine pays warm-ups the second does not.
        without = run_job(Path(tmp) / "without", args.epochs, 0, n_checkpoints=0)
        with_ckpts = run_job(Path(tmp) / "with", args.epochs, args.every, n_checkpoints=args.epochs)
    print(
        f"\nSFT, polytune-tiny, {args.epochs} epochs, batch 4, a checkpoint each epoch, resume every "
        f"{args.every} steps\n"
    )
    print("| checkpoint | step | MiB | store s |")
    print("|---|---|---|---|")
    folder_bytes = 0
    for e in reversed(with_ckpts["events"]):
        data = e.data or {}
        if e.message.startswith("Checkpoint created"):
            folder_bytes += data["bytes"]
            print(
                f"| epoch (servable, .tar download) | {data['step']} | {data['bytes'] / 2**20:.2f} | "
                f"{data['store_seconds']:.3f} |"
            )
        elif e.message.startswith("Resume checkpoint at step"):
            print(
                f"| resume (background upload) | {data['step']} | {data['bytes'] / 2**20:.2f} | "
                f"{data['upload_seconds']:.3f} |"
            )
    copies = with_ckpts["ckpt_store"] / folder_bytes if folder_bytes else float("nan")
    print(
        f"\nstore bytes of the epoch checkpoints / their folders: {copies:.2f} copies (target 1.00); "
        f"bytes under files/ (uploads, results): {with_ckpts['files_store'] / 2**20:.2f} MiB"
    )
    print(
        f"steps/s with resume checkpoints every {args.every} steps: {with_ckpts['steps_per_s']:.2f}; "
        f"without: {without['steps_per_s']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
