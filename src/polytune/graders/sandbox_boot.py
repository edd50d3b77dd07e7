"""Runs inside the python grader's sandbox (bubblewrap, boundary.py) as `python -I -S
/sandbox/boot.py`; never imported by the server. Reads {"source", "cases", "limits"} as JSON
from stdin, sets the limits, installs an audit hook, then calls the user's
`grade(sample, item)` once per case and writes one JSON line of results to stdout.

The operating-system boundary is what confines the grader; what this file adds (see
docs/graders.md) is the limits, and an audit hook kept only as defence in depth (user code
can find and disarm it):
- resource limits: CPU seconds, address space, file size, open files, no core dumps;
- per case: a CPU-time and a wall-clock timer that raise GraderTimeout (a BaseException, so
  `except Exception` in user code doesn't swallow it);
- an audit hook (PEP 578) that refuses: opening or listing any path outside the sandbox's
  working directory and the Python installation (read-only), writing outside the working
  directory, starting processes, forking, sockets, signals to other processes, and calling
  foreign functions or touching raw memory through ctypes (loading libraries, which numpy's
  import does, is allowed).
"""

import io
import json
import os
import resource
import signal
import sys
import traceback


class GraderTimeout(BaseException):
    pass


def _limits(limits):
    cpu = int(limits["cpu_seconds"] * max(1, limits["n_cases"])) + 1
    memory = int(limits["memory_mb"]) * 1024 * 1024
    for res, value in (
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_FSIZE, 16 * 1024 * 1024),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(res, (value, value))


def _confine():
    home = os.path.realpath(os.getcwd())
    readable = {home}
    for p in [sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]:
        if p and os.path.isdir(p):
            readable.add(os.path.realpath(p))
    readable = tuple(readable)
    denied_prefixes = (
        "subprocess.",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.system",
        "os.kill",
        "os.killpg",
        "pty.",
        "socket.",
        "ctypes.",
        "os.startfile",
        "webbrowser.",
        "sys.remote_exec",
    )
    path_events = {
        "os.listdir": False,
        "os.scandir": False,
        "glob.glob": False,
        "os.chdir": False,
        "os.mkdir": True,
        "os.remove": True,
        "os.rmdir": True,
        "os.rename": True,
        "os.replace": True,
        "os.symlink": True,
        "os.link": True,
        "os.truncate": True,
        "os.chmod": True,
        "os.chown": True,
        "os.utime": True,
        "shutil.rmtree": True,
        "shutil.copyfile": True,
        "shutil.move": True,
    }

    def inside(path, roots):
        if isinstance(path, int):  # an already open descriptor
            return True
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        real = os.path.realpath(os.fspath(path))
        return any(real == r or real.startswith(r + os.sep) for r in roots)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if path is None:
                return
            writing = (mode and any(c in mode for c in "wax+")) or (
                flags and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
            )
            if not inside(path, (home,) if writing else readable):
                raise PermissionError(
                    f"sandbox: {'writing' if writing else 'reading'} {path} is not allowed "
                    "(a python grader may only use its working directory)"
                )
        elif event in path_events and args:
            write = path_events[event]
            if not inside(args[0], (home,) if write else readable):
                raise PermissionError(f"sandbox: {event} on {args[0]} is not allowed")
        elif event.startswith(denied_prefixes) and event != "ctypes.dlopen":
            raise PermissionError(f"sandbox: {event} is not allowed in a python grader")
        elif event == "import" and args[0] in ("_posixsubprocess", "socket", "_socket"):
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed in a python grader")

    sys.addaudithook(hook)


def _timer_handler(signum, frame):
    kind = "CPU" if signum == signal.SIGPROF else "wall-clock"
    raise GraderTimeout(f"grade() exceeded its {kind} time limit")


# The packages the server lets graders import are mounted here (boundary.py); -S left the
# interpreter without site-packages.
SITE = "/sandbox/site"


def main():
    if os.path.isdir(SITE):
        sys.path.append(SITE)
    request = json.loads(sys.stdin.read())
    limits = request["limits"]
    out = sys.stdout
    _limits({**limits, "n_cases": len(request["cases"])})
    signal.signal(signal.SIGPROF, _timer_handler)
    signal.signal(signal.SIGALRM, _timer_handler)
    sys.stdout = io.StringIO()  # the user's prints stay out of the result line
    _confine()
    results = []
    namespace = {"__name__": "grader"}
    try:
        exec(compile(request["source"], "<grader>", "exec"), namespace)
        grade = namespace.get("grade")
        if not callable(grade):
            raise NameError("the source defines no function grade(sample, item)")
    except BaseException as e:  # noqa: BLE001 - any failure of the user's module is its error
        results = [{"error": _describe(e)} for _ in request["cases"]]
        grade = None
    for case in request["cases"] if grade else ():
        try:
            signal.setitimer(signal.ITIMER_PROF, limits["cpu_seconds"])
            signal.setitimer(signal.ITIMER_REAL, limits["timeout_seconds"])
            try:
                value = grade(case["sample"], case["item"])
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
                signal.setitimer(signal.ITIMER_REAL, 0)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"grade() must return a number, got {type(value).__name__}")
            results.append({"reward": float(value)})
        except BaseException as e:  # noqa: BLE001
            results.append({"error": _describe(e), "timeout": isinstance(e, GraderTimeout)})
    out.write(request["marker"] + json.dumps(results) + "\n")
    out.flush()
    # Now, whatever threads the grader left running: the result is out.
    os._exit(0)


def _describe(e):
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == "<grader>"]
    where = f" (line {frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{where}"


if __name__ == "__main__":
    main()
