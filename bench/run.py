"""Run every benchmark in bench/, one after another, each printing its own table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

if __name__ == "__main__":
    code = 0
    for script in sorted(HERE.glob("*.py")):
        if script.name == "run.py":
            continue
        print(f"\n=== {script.name} ===", flush=True)
        code |= subprocess.call([sys.executable, str(script)])
    sys.exit(code)
