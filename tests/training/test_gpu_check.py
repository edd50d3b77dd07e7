"""bench/gpu_check.py's CPU path: the same code the GPU check runs, on tiny shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_check_runs_on_cpu_with_tiny_shapes(tmp_path):
    out = tmp_path / "rows.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--smoke", "--json", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert set(rows) == {"tiny-lora", "tiny-full", "tiny-dpo", "tiny-lora-vs-trl", "tiny-serving", "tiny-flux-lora"}
    # The throughput case runs both sides; on CPU polytune's path is the CPU's (no Liger, no
    # checkpointing, padding-free batches).
    versus = rows["tiny-lora-vs-trl"]
    assert versus["tokens_per_s"] > 0 and versus["plain_tokens_per_s"] > 0 and versus["speedup"] > 0
    assert versus["polytune_path"]["padding_free"] and not versus["polytune_path"]["liger"]
    assert "against plain TRL's" in proc.stdout
    for name in ("tiny-lora", "tiny-full", "tiny-dpo"):
        row = rows[name]
        assert row["tokens_per_s"] > 0 and 0 < row["mfu"] < 1 and row["estimate_gib"] > 0, row
        assert row["checkpoint_mib"] > 0 and row["micro_batch"] >= 1
    # A full fine-tune saves the whole model, LoRA only its adapter.
    assert rows["tiny-full"]["checkpoint_mib"] > rows["tiny-lora"]["checkpoint_mib"]
    assert rows["tiny-flux-lora"]["images_per_s"] > 0
    # Serving: the engine process made every token asked for, and both sides were timed.
    serving = rows["tiny-serving"]
    assert serving["serving_tokens"] == serving["requested_tokens"] == 4 * 8
    assert serving["serving_1_stream"] > 0 and serving["plain_1_stream"] > 0
    assert serving["serving_4_streams"] > 0 and serving["serving_4_ratio"] > 0
    assert "the engine process against plain `generate`" in proc.stdout
    assert "| tiny-full |" in proc.stdout and "matmul peak" in proc.stdout


def test_a_failing_case_becomes_a_row_saying_why_and_the_check_goes_on():
    sys.path.insert(0, str(ROOT))
    from bench.gpu_check import Row, measured

    def broken() -> Row:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    failed = measured("tiny-serving", broken)
    assert failed.case == "tiny-serving"
    assert failed.values == {"error": "RuntimeError: CUDA error: an illegal memory access was encountered"}
    assert measured("tiny-lora", lambda: Row("tiny-lora", {"tokens_per_s": 1.0})).values == {"tokens_per_s": 1.0}
