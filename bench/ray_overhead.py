"""The same job on the local executor and on Ray, side by side in one run, tiny model.

- start latency: POST -> the job reports its first training step (median of 3, after one job
  warmed each server), local warm workers against a one-worker Ray task, and a two-worker Ray
  Train job (DDP over gloo) for scale;
- per-step overhead: the trainer's own seconds per step over an 80-step job on each, so what
  Ray adds around training (a task, a placement, the store from another process) is separate
  from the training itself.

Both servers use SQLite on this machine; the Ray one runs its jobs on a local Ray cluster
started here (`ray start --head` on loopback, 4 CPUs), as the tests do. Measurements alternate
between the two servers, so load from elsewhere on the machine falls on both alike.

    .venv/bin/python bench/ray_overhead.py [--smoke]

--smoke: one measured run of each kind, the "long" job 1 epoch: the smallest run through every
part (the test suite runs it).
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHORT = {"n_epochs": 1, "batch_size": 2, "learning_rate": 2e-3}
LONG = {"n_epochs": 10, "batch_size": 2, "learning_rate": 2e-3}


class Side:
    def __init__(self, tmp: Path, **env: str):
        import openai

        from tests.conftest import LiveServer
        from tests.helpers import chat_jsonl

        self.server = LiveServer(
            tmp, f"sqlite:///{tmp / 'db.sqlite'}", POLYTUNE_SCHEDULER_INTERVAL="0.1", POLYTUNE_WORKER_SLOTS="2", **env
        )
        self.key = self.server.create_key("bench")
        self.client = openai.OpenAI(base_url=f"{self.server.url}/v1", api_key=self.key)
        self.file = self.client.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl(16))), purpose="fine-tune").id

    def create(self, hp: dict, n_accel: int | None = None) -> str:
        if n_accel is None:
            return self.client.fine_tuning.jobs.create(
                model="polytune-tiny", training_file=self.file, seed=1, hyperparameters=hp
            ).id
        body = {
            "project_id": None,
            "infrastructure_config": {"accel_type": "A100", "n_accel": n_accel},
            "training_config": {"training_files": [self.file], "model": "polytune-tiny", **hp},
        }
        r = httpx.post(
            f"{self.server.url}/v1/flow/fine-tunes",
            json=body,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=60,
        )
        r.raise_for_status()
        return r.json()["id"]

    def run(self, hp: dict, n_accel: int | None = None) -> tuple[float, float]:
        """(seconds from POST to the first step, the trainer's seconds per step)."""
        t0 = time.monotonic()
        job_id = self.create(hp, n_accel)
        first = None
        while True:
            j = self.client.fine_tuning.jobs.retrieve(job_id)
            if first is None and (j.model_extra.get("trained_steps") or 0) >= 1:
                first = time.monotonic() - t0
            if j.status in ("succeeded", "failed", "cancelled"):
                assert j.status == "succeeded", j.error
                break
            time.sleep(0.02)
        (done,) = [
            e
            for e in self.client.fine_tuning.jobs.list_events(job_id, limit=200)
            if e.message.startswith("Training finished")
        ]
        return first, 1.0 / done.data["train_steps_per_second"]


def main() -> int:
    from tests.conftest import RAY_ENV, RayCluster

    smoke = "--smoke" in sys.argv[1:]
    starts_n, steps_n, long_hp = (1, 1, SHORT) if smoke else (3, 2, LONG)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.update(RAY_ENV)
    cluster = RayCluster(cpus=4)
    sides = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sides["local"] = Side(Path(tmp) / "local")
            sides["ray"] = Side(Path(tmp) / "ray", POLYTUNE_EXECUTOR="ray", POLYTUNE_RAY_ADDRESS=cluster.address)
            try:
                for side in sides.values():
                    side.run(SHORT)  # builds polytune-tiny, warms the workers: "idle", not "new"
                starts = {name: [] for name in sides}
                steps = {name: [] for name in sides}
                for _ in range(starts_n):
                    for name, side in sides.items():
                        starts[name].append(side.run(SHORT)[0])
                for _ in range(steps_n):
                    for name, side in sides.items():
                        steps[name].append(side.run(long_hp)[1])
                two_first, two_step = sides["ray"].run(SHORT, n_accel=2)
            finally:
                for side in sides.values():
                    side.server.stop()
    finally:
        cluster.stop()
    start = {k: statistics.median(v) for k, v in starts.items()}
    step = {k: statistics.median(v) for k, v in steps.items()}
    print("\n| measure | local (warm workers) | Ray, 1 worker | Ray / local |\n|---|---|---|---|")
    print(
        f"| POST -> first step (median of {starts_n}) | {start['local']:.2f} s | {start['ray']:.2f} s | "
        f"{start['ray'] / start['local']:.2f} |"
    )
    print(
        f"| trainer seconds per step ({long_hp['n_epochs'] * 8} steps, median of {steps_n}) | "
        f"{step['local'] * 1000:.1f} ms | "
        f"{step['ray'] * 1000:.1f} ms | {step['ray'] / step['local']:.2f} |"
    )
    print(
        f"\nRay Train, 2 CPU workers (DDP over gloo): POST -> first step {two_first:.2f} s, "
        f"{two_step * 1000:.1f} ms per step."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
