"""Job latency and resume overhead, on an idle local server with the tiny model.

- start latency: POST /v1/fine_tuning/jobs -> the first training step (median of 3);
- resume overhead: wall time of a job whose worker is SIGKILLed half way (then retried from
  its last resume checkpoint) minus the wall time of the same job uninterrupted.

    .venv/bin/python bench/job_latency.py
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


def main() -> int:
    import openai
    import sqlalchemy as sa

    from tests.conftest import LiveServer
    from tests.helpers import chat_jsonl

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        url = f"sqlite:///{tmp / 'db.sqlite'}"
        server = LiveServer(tmp, url, POLYTUNE_RESUME_CHECKPOINT_STEPS="10", POLYTUNE_SCHEDULER_INTERVAL="0.1")
        try:
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key("bench"))
            fid = client.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl(16))), purpose="fine-tune").id

            def run(kill_at: int | None = None) -> tuple[float, float]:
                t0 = time.monotonic()
                job = client.fine_tuning.jobs.create(model="polytune-tiny", training_file=fid, seed=1,
                                                     hyperparameters=HP)
                first = None
                killed = False
                while True:
                    j = client.fine_tuning.jobs.retrieve(job.id)
                    steps = j.model_extra.get("trained_steps") or 0
                    if first is None and steps >= 1:
                        first = time.monotonic() - t0
                    if kill_at and not killed and steps >= kill_at:
                        eng = sa.create_engine(url)
                        with eng.connect() as c:
                            w = c.execute(sa.text("SELECT worker FROM jobs WHERE id=:i"), {"i": job.id}).scalar()
                        eng.dispose()
                        os.killpg(int(json.loads(w)["pid"]), signal.SIGKILL)
                        killed = True
                    if j.status in ("succeeded", "failed", "cancelled"):
                        assert j.status == "succeeded", j.error
                        return first or 0.0, time.monotonic() - t0
                    time.sleep(0.05)

            latencies = [run()[0] for _ in range(3)]
            _, plain = run()
            _, killed = run(kill_at=40)
        finally:
            server.stop()
    print("\n| measure | value |\n|---|---|")
    print(f"| POST -> first training step (median of 3) | {statistics.median(latencies):.2f} s |")
    print(f"| job wall time, uninterrupted (80 steps) | {plain:.2f} s |")
    print(f"| job wall time, worker SIGKILLed at step 40 | {killed:.2f} s |")
    print(f"| time lost per kill (resume overhead) | {killed - plain:.2f} s |")
    print("\nTarget for the first step: <= 2 s through a warm worker (see docs/benchmarks.md).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
