"""Run every benchmark in bench/, one after another, each printing its own table.

.venv/bin/python bench/run.py [--smoke]   (--smoke: each at its smallest setting)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

if __name__ == "__main__":
    extra = ["--smoke"] if "--smoke" in sys.argv[1:] else []
    code = 0
    for script in sorted(HERE.glob("*.py")):
        if script.name == "run.py" or script.name.startswith("_"):  # _name.py: a module the scripts import
            continue
        print(f"\n=== {script.name} ===", flush=True)
        code |= subprocess.call([sys.executable, str(script), *extra])
    sys.exit(code)
