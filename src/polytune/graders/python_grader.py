"""python graders: the user's `grade(sample, item) -> float` run in a separate process inside
an operating-system boundary (boundary.py: bubblewrap namespaces, an unprivileged uid, a
read-only minimal root, seccomp), never in the server or the training worker.

One process grades a batch of samples (a GRPO step's completions), so the interpreter's start
is paid once per batch. Inside, sandbox_boot.py sets the limits of `SandboxLimits` and an audit
hook (defence in depth only: user code can disarm it; the boundary is what holds). A case that
raises, times out or runs out of memory fails alone; a process that outlives every limit is
killed, and with it its whole PID namespace.
"""

from __future__ import annotations

import ast
import json
import secrets
import subprocess
from dataclasses import dataclass
from typing import Any

from polytune.domain.errors import InvalidRequest

from .boundary import Sandbox, probe
from .models import PythonGrader
from .result import GradeFailed

MAX_SOURCE_BYTES = 256 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: float = 5.0  # CPU time per sample
    timeout_seconds: float = 10.0  # wall-clock time per sample
    memory_mb: int = 512  # address space of the whole process


def check_source(grader: PythonGrader, param: str) -> None:
    if len(grader.source.encode()) > MAX_SOURCE_BYTES:
        raise InvalidRequest(
            f"{param}.source is over {MAX_SOURCE_BYTES} bytes.", param=f"{param}.source", code="invalid_grader"
        )
    try:
        tree = ast.parse(grader.source)
    except SyntaxError as e:
        raise InvalidRequest(
            f"{param}.source does not compile: {e.msg} (line {e.lineno}).",
            param=f"{param}.source",
            code="invalid_grader",
        ) from None
    if not any(isinstance(n, ast.FunctionDef) and n.name == "grade" for n in tree.body):
        raise InvalidRequest(
            f"{param}.source must define a function grade(sample, item) returning a number.",
            param=f"{param}.source",
            code="invalid_grader",
        )


def run_python(
    grader: PythonGrader,
    cases: list[tuple[dict[str, Any], dict[str, Any]]],
    limits: SandboxLimits,
    sandbox: Sandbox | None = None,
) -> list[float | GradeFailed]:
    """One reward or failure per (sample, item)."""
    boundary = probe(sandbox or Sandbox())
    if not boundary.ok:  # never unconfined
        return [
            _server_error("SandboxUnavailable", f"python graders are disabled on this server: {boundary.error}")
        ] * len(cases)
    marker = f"@@polytune-{secrets.token_hex(8)}@@"
    request = {
        "source": grader.source,
        "marker": marker,
        "limits": vars(limits),
        "cases": [{"sample": s, "item": i} for s, i in cases],
    }
    # Enough for every case to use its whole allowance, plus the interpreter's start.
    backstop = 5.0 + len(cases) * max(limits.timeout_seconds, limits.cpu_seconds)
    try:
        # On timeout subprocess kills bwrap; --die-with-parent and the PID namespace take
        # everything inside with it.
        proc = boundary.run(
            ["/sandbox/boot.py"],
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=backstop,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        return [_server_error("TimeoutError", f"the grader process ran past {backstop:.0f} s and was killed")] * len(
            cases
        )
    line = next((ln for ln in proc.stdout.decode(errors="replace").splitlines() if ln.startswith(marker)), None)
    if line is None:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        kind = "MemoryError" if "MemoryError" in tail[0] else "ProcessError"
        return [_server_error(kind, f"the grader process ended without a result: {tail[0]}")] * len(cases)
    out: list[float | GradeFailed] = []
    for r in json.loads(line[len(marker) :]):
        if "reward" in r:
            out.append(r["reward"])
        elif r.get("timeout"):
            out.append(_server_error("TimeoutError", r["error"]))
        else:
            out.append(GradeFailed("python_grader_runtime_error", r["error"]))
    return out


def _server_error(kind: str, detail: str) -> GradeFailed:
    e = GradeFailed("python_grader_server_error", detail, detail_key="python_grader_runtime_error_details")
    e.kind = kind  # type: ignore[attr-defined]
    return e
