"""Every script in bench/ still runs: each at its smallest setting (`--smoke`), as a real
subprocess, so a benchmark broken by a change elsewhere fails here instead of on the day
someone wants its numbers. `make bench` runs them at full size.

The smoke runs take minutes (a Ray start, cold worker starts), so they are marked `bench`:
`make test` leaves them to `make bench-smoke`, which CI (.ci/run) runs after it. gpu_check.py's
CPU path is tests/training/test_gpu_check.py, in the suite itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A leading underscore marks a module the scripts import (bench/_gpu_vs_trl.py), not a script.
SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if p.name != "run.py" and not p.name.startswith("_"))
SMOKED = [p for p in SCRIPTS if p.name != "gpu_check.py"]


def test_every_benchmark_has_a_smoke_setting():
    missing = [p.name for p in SCRIPTS if "--smoke" not in p.read_text()]
    assert not missing, f"bench scripts without --smoke: {missing}"


@pytest.mark.slow
@pytest.mark.bench
@pytest.mark.parametrize("script", SMOKED, ids=lambda p: p.stem)
def test_benchmark_runs_at_smoke_size(script: Path, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, f"{script.name} --smoke failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    # Each prints its figures as a table (markdown rows, or aligned columns with a header).
    assert out.stdout.strip(), f"{script.name} printed nothing"
