"""What an operator runs to see the python grader's boundary on their machine (`polytune
graders check-sandbox`): the probe's answer, then a few escapes tried from inside a real
sandbox, each of which must fail."""

from __future__ import annotations

import json

from .boundary import Boundary

# Run inside the sandbox: each check is True when the boundary holds.
_CHECKS = r"""
import json, os, socket
def refused(f):
    try:
        f()
    except OSError:
        return True
    return False
print(json.dumps({
    "runs as uid 65534 (nobody)": os.getuid() == 65534,
    "in its own PID namespace": os.getpid() < 10,
    "sees no host files (/etc, /home, the data dir)": not any(os.path.exists(p) for p in ("/etc", "/home", DATA)),
    "cannot write outside its tmpfs": refused(lambda: open("/usr/polytune-check", "w")),
    "has no network": refused(lambda: socket.create_connection(("127.0.0.1", PORT), 1)),
    "cannot start processes (seccomp)": refused(os.fork),
    "cannot open other processes (seccomp)": refused(lambda: os.pidfd_open(1)),
}))
"""


def check(boundary: Boundary, data_dir: str, port: int) -> dict[str, bool]:
    """Each property of the boundary, checked from inside it."""
    script = _CHECKS.replace("DATA", repr(data_dir)).replace("PORT", str(int(port)))
    proc = boundary.run(["-c", script], capture_output=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace").strip()[-500:])
    return json.loads(proc.stdout)
