"""The house rule that keeps modules one job each: no file of the package over 400 lines
(docs/architecture.md). Counted as the files are on disk; `make format` (ruff format) makes
them longer, so a file near the limit is split before it is formatted, not after."""

from __future__ import annotations

from pathlib import Path

MAX_LINES = 400
SRC = Path(__file__).resolve().parents[1] / "src" / "polytune"


def test_no_module_of_the_package_is_over_400_lines():
    sizes = {
        path.relative_to(SRC.parent).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in SRC.rglob("*.py")
    }
    assert sizes, f"no Python files under {SRC}"
    over = {name: n for name, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not over, f"over {MAX_LINES} lines (split them into modules with one job each): {over}"
