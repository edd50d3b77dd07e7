"""What each provider API costs per request, and what a checkpoint's weight archive costs.

1. Against a real `polytune serve` (scheduler idle, so jobs stay put): median and p95 latency
   of creating, retrieving and listing a job through OpenAI's `/v1`, TrueFoundry's `/api/llm`
   and SeekrFlow's `/v1/flow` routes, raw HTTP with the same data. The three share services
   and store; the difference is the dialect's parse-translate-render.
2. In-process: time and size of the tar written for each checkpoint (Nebius's
   `result_files`) beside copying the folder itself, for polytune-tiny.

    .venv/bin/python bench/dialect_overhead.py [--requests 40] [--smoke]

--smoke: 3 requests each, the smallest run through every part (the test suite runs it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timed(call, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def api_latency(tmp: Path, n: int) -> list[tuple[str, str, float, float]]:
    import httpx

    from tests.conftest import LiveServer
    from tests.helpers import chat_jsonl

    tmp.mkdir(parents=True, exist_ok=True)
    server = LiveServer(tmp, f"sqlite:///{tmp / 'polytune.db'}", POLYTUNE_SCHEDULER_INTERVAL="3600")
    try:
        key = server.create_key("bench")
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        fid = http.post("/v1/files", files={"file": ("t.jsonl", chat_jsonl(8))}, data={"purpose": "fine-tune"}).json()[
            "id"
        ]
        openai_body = {
            "model": "polytune-tiny",
            "training_file": fid,
            "hyperparameters": {"n_epochs": 2, "lora": True, "lora_r": 8},
        }
        seekr_body = {
            "project_id": None,
            "training_config": {
                "training_files": [fid],
                "model": "polytune-tiny",
                "n_epochs": 2,
                "lora_config": {"r": 8},
            },
            "infrastructure_config": {"accel_type": "A100", "n_accel": 1},
        }
        routes = {
            "OpenAI /v1": ("/v1/fine_tuning/jobs", openai_body, "/v1/fine_tuning/jobs"),
            "TrueFoundry /api/llm": ("/api/llm/fine_tuning/jobs", openai_body, "/api/llm/fine_tuning/jobs"),
            "SeekrFlow /v1/flow": ("/v1/flow/fine-tune", seekr_body, "/v1/flow/fine-tunes"),
        }
        rows = []
        for name, (create, body, read) in routes.items():
            ids = []

            def make():
                r = http.post(create, json=body)
                r.raise_for_status()
                ids.append(r.json()["id"])

            rows.append((name, "create", *_timed(make, n)))
            rows.append((name, "retrieve", *_timed(lambda: http.get(f"{read}/{ids[-1]}").raise_for_status(), n)))
            rows.append((name, "list", *_timed(lambda: http.get(read).raise_for_status(), max(5, n // 4))))
        return rows
    finally:
        server.stop()


def archive_cost(tmp: Path) -> tuple[int, float, int, float]:
    from polytune.store.blobs import BlobStore
    from polytune.catalog.tiny import ensure_tiny
    from polytune.store.worker import StoreReporter

    folder = ensure_tiny(tmp / "models")
    blobs = BlobStore(str(tmp / "blobs"))
    reporter = StoreReporter.__new__(StoreReporter)  # only its archive step, without a database
    reporter.blobs = blobs
    started = time.perf_counter()
    blobs.put_dir(folder, "models/bench/ckpt")
    copy_s = time.perf_counter() - started
    started = time.perf_counter()
    _, size = reporter._archive(folder, "ckpt")
    tar_s = time.perf_counter() - started
    folder_bytes = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return folder_bytes, copy_s, size, tar_s


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--smoke", action="store_true", help="smallest run through every part (for the tests)")
    args = parser.parse_args()
    if args.smoke:
        args.requests = 3
    with tempfile.TemporaryDirectory(prefix="polytune-bench-") as d:
        tmp = Path(d)
        rows = api_latency(tmp / "server", args.requests)
        folder_bytes, copy_s, tar_bytes, tar_s = archive_cost(tmp / "archive")
    print(f"\nPer-request latency through each provider API ({args.requests} requests each, loopback, SQLite)\n")
    print("| API | call | median ms | p95 ms |")
    print("|---|---|---|---|")
    for name, call, median, p95 in rows:
        print(f"| {name} | {call} | {median:.1f} | {p95:.1f} |")
    print("\nCheckpoint weights archive (Nebius result_files), polytune-tiny\n")
    print("| step | bytes | seconds |")
    print("|---|---|---|")
    print(f"| copy checkpoint folder to blobs | {folder_bytes} | {copy_s:.3f} |")
    print(f"| write its tar as a file | {tar_bytes} | {tar_s:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
