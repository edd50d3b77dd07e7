"""Job start latency (cold vs warm workers, side by side) and resume overhead, tiny model.

- start latency: POST /v1/fine_tuning/jobs -> the job reports its first training step, median
  of 3, on an idle server whose model is already on disk (one job ran before the measured ones).
  Measured twice in one run: with POLYTUNE_WARM_WORKERS=false (each worker a fresh
  `python -m polytune.training.runner` that imports torch/transformers/trl itself) and with
  warm workers (forked from a process that imported them at server start).
- resume overhead: wall time of a job whose worker is SIGKILLed half way (then retried from
  its last resume checkpoint) minus the wall time of the same job uninterrupted (warm workers).

    .venv/bin/python bench/job_latency.py [--smoke]

--smoke: one measured start per side and a 24-step job killed at step 12 (resume checkpoints
every 10 steps): the smallest run through every part (the test suite runs it).
"""

from __future__ import annotations

import io
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HP = {"n_epochs": 10, "batch_size": 2, "learning_rate": 2e-3}
SHORT = {"n_epochs": 1, "batch_size": 2, "learning_rate": 2e-3}


class Bench:
    def __init__(self, tmp: Path, warm: bool):
        import openai

        from tests.conftest import LiveServer
        from tests.helpers import chat_jsonl

        self.url = f"sqlite:///{tmp / 'db.sqlite'}"
        self.server = LiveServer(
            tmp,
            self.url,
            POLYTUNE_RESUME_CHECKPOINT_STEPS="10",
            POLYTUNE_SCHEDULER_INTERVAL="0.1",
            POLYTUNE_WARM_WORKERS="true" if warm else "false",
        )
        self.client = openai.OpenAI(base_url=f"{self.server.url}/v1", api_key=self.server.create_key("bench"))
        self.file = self.client.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl(16))), purpose="fine-tune").id

    def run(self, hp: dict, kill_at: int | None = None) -> tuple[float, float]:
        """(seconds to the first step, seconds to the end) of one job."""
        import sqlalchemy as sa

        t0 = time.monotonic()
        job = self.client.fine_tuning.jobs.create(
            model="polytune-tiny", training_file=self.file, seed=1, hyperparameters=hp
        )
        first, killed = None, False
        while True:
            j = self.client.fine_tuning.jobs.retrieve(job.id)
            steps = j.model_extra.get("trained_steps") or 0
            if first is None and steps >= 1:
                first = time.monotonic() - t0
            if kill_at and not killed and steps >= kill_at:
                eng = sa.create_engine(self.url)
                with eng.connect() as c:
                    w = c.execute(sa.text("SELECT worker FROM jobs WHERE id=:i"), {"i": job.id}).scalar()
                eng.dispose()
                os.killpg(int(json.loads(w)["pid"]), signal.SIGKILL)
                killed = True
            if j.status in ("succeeded", "failed", "cancelled"):
                assert j.status == "succeeded", j.error
                took = time.monotonic() - t0
                if kill_at:  # the kill landed and the job resumed, or this measured nothing
                    messages = [e.message for e in self.client.fine_tuning.jobs.list_events(job.id, limit=500)]
                    assert killed and any("SIGKILL" in m for m in messages), "the worker was not killed"
                    assert any("Resuming from the checkpoint" in m for m in messages)
                return first or 0.0, took
            time.sleep(0.02)

    def start_latencies(self, runs: int = 3, settle: float = 3.0) -> list[float]:
        self.run(SHORT)  # builds polytune-tiny on disk and warms the server: "idle", not "new"
        time.sleep(settle)
        return [self.run(SHORT)[0] for _ in range(runs)]


def main() -> int:
    smoke = "--smoke" in sys.argv[1:]
    runs, settle, hp, kill_at = (1, 0.0, {**HP, "n_epochs": 3}, 12) if smoke else (3, 3.0, HP, 40)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results: dict[str, list[float]] = {}
        for name, warm in (("cold", False), ("warm", True)):
            b = Bench(tmp / name, warm)
            try:
                results[name] = b.start_latencies(runs, settle)
                if warm:
                    _, plain = b.run(hp)
                    _, killed = b.run(hp, kill_at=kill_at)
            finally:
                b.server.stop()
    cold, warm_ = statistics.median(results["cold"]), statistics.median(results["warm"])
    print("\n| measure | value |\n|---|---|")
    steps = hp["n_epochs"] * 8
    print(f"| POST -> first training step, cold workers (median of {runs}) | {cold:.2f} s |")
    print(f"| POST -> first training step, warm workers (median of {runs}) | {warm_:.2f} s |")
    print(f"| warm / cold | {warm_ / cold:.2f} |")
    print(f"| job wall time, uninterrupted ({steps} steps, warm) | {plain:.2f} s |")
    print(f"| job wall time, worker SIGKILLed at step {kill_at} | {killed:.2f} s |")
    print(f"| time lost per kill (resume overhead) | {killed - plain:.2f} s |")
    print("\nTarget for the first step: <= 2 s through a warm worker (see docs/benchmarks.md).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
