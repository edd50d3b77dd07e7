"""The operating-system boundary around a python grader: bubblewrap (`bwrap`), Debian's
unprivileged sandbox tool (the one Flatpak uses), plus a seccomp filter where the system has
libseccomp's Python bindings. docs/graders.md describes what the grader can and cannot see.

`probe(sandbox)` starts one real sandbox and checks it runs as the unprivileged uid; its answer
is cached per process (the server probes at start, a training worker at its first batch). When
the boundary cannot be set up, python graders are refused: `require()` at validation, and
`run_python` at run time, never run unconfined.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from polytune.domain.errors import InvalidRequest

BOOT = Path(__file__).with_name("sandbox_boot.py")
SECCOMP_SCRIPT = Path(__file__).with_name("seccomp_filter.py")
# Debian's own interpreter: python3-seccomp (libseccomp's bindings) is installed for it.
SYSTEM_PYTHON = "/usr/bin/python3"
NOBODY = "65534"
TMP_BYTES = 64 * 1024 * 1024
SITE = "/sandbox/site"


@dataclass(frozen=True)
class Sandbox:
    bwrap: str = "bwrap"  # the binary, a name on PATH or a path
    # Top-level packages of the server's environment a grader may import (read-only), besides
    # the standard library.
    packages: tuple[str, ...] = ("numpy", "rapidfuzz", "regex")


@dataclass(frozen=True)
class Boundary:
    bwrap: str | None
    error: str | None  # why python graders are refused here; None: they run
    seccomp: bytes | None  # the BPF program bwrap loads; None: no filter on this machine
    seccomp_note: str
    mounts: tuple[tuple[str, str], ...]  # (host path, sandbox path), read-only

    @property
    def ok(self) -> bool:
        return self.error is None

    def argv(self, python_args: list[str], seccomp_fd: int | None = None) -> list[str]:
        """The command that runs the sandbox's interpreter with `python_args`; bwrap reads the
        seccomp program from `seccomp_fd`."""
        assert self.bwrap is not None
        argv = [
            self.bwrap,
            "--unshare-all",
            "--unshare-user",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--uid",
            NOBODY,
            "--gid",
            NOBODY,
            "--cap-drop",
            "ALL",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--symlink",
            "usr/bin",
            "/bin",
        ]
        for host, inside in self.mounts:
            argv += ["--ro-bind", host, inside]
        # /dev is a tmpfs of bwrap's with no size bound: read-only, so a grader can't fill memory
        # through /dev/shm (device nodes still work). /tmp is bounded.
        argv += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--remount-ro",
            "/dev",
            "--size",
            str(TMP_BYTES),
            "--tmpfs",
            "/tmp",
            "--remount-ro",
            "/",
            "--chdir",
            "/tmp",
        ]
        for key, value in {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }.items():
            argv += ["--setenv", key, value]
        if seccomp_fd is not None:
            argv += ["--seccomp", str(seccomp_fd)]
        return [*argv, "--", _python(), "-I", "-S", *python_args]

    def run(self, python_args: list[str], **kwargs) -> subprocess.CompletedProcess:
        """subprocess.run of the sandbox, its seccomp program passed in a memory file."""
        if self.seccomp is None:
            return subprocess.run(self.argv(python_args), check=False, **kwargs)
        fd = os.memfd_create("polytune-seccomp")
        try:
            os.write(fd, self.seccomp)
            os.lseek(fd, 0, os.SEEK_SET)
            return subprocess.run(self.argv(python_args, fd), pass_fds=(fd,), check=False, **kwargs)
        finally:
            os.close(fd)


def _python() -> str:
    return os.path.realpath(sys.executable)


def _mounts(sandbox: Sandbox) -> tuple[tuple[str, str], ...]:
    """The Python installation (the interpreter and its standard library), the boot script and
    the allowed packages: nothing else of the host but /usr."""
    prefix = os.path.realpath(sys.base_prefix)
    mounts = [] if prefix.startswith("/usr/") or prefix == "/usr" else [(prefix, prefix)]
    exe = _python()
    if not exe.startswith(("/usr/", prefix + os.sep)):
        mounts.append((exe, exe))
    mounts.append((str(BOOT), "/sandbox/boot.py"))
    for name in sandbox.packages:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue  # not installed here: a grader that imports it gets ModuleNotFoundError
        where = Path(next(iter(spec.submodule_search_locations)))
        mounts.append((str(where), f"{SITE}/{name}"))
        libs = where.with_name(f"{name}.libs")  # a wheel's vendored shared libraries
        if libs.is_dir():
            mounts.append((str(libs), f"{SITE}/{name}.libs"))
    return tuple(mounts)


def _seccomp() -> tuple[bytes | None, str]:
    if not os.path.exists(SYSTEM_PYTHON):
        return None, f"no seccomp filter: {SYSTEM_PYTHON} is missing"
    proc = subprocess.run([SYSTEM_PYTHON, "-I", str(SECCOMP_SCRIPT)], capture_output=True, timeout=30, check=False)
    if proc.returncode != 0 or not proc.stdout:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        return None, f"no seccomp filter (install Debian's python3-seccomp): {last}"
    return proc.stdout, f"seccomp filter of {len(proc.stdout) // 8} BPF instructions"


@functools.lru_cache(maxsize=8)
def probe(sandbox: Sandbox) -> Boundary:
    """Set the boundary up once and check it from the inside."""
    bwrap = shutil.which(sandbox.bwrap)
    if bwrap is None:
        return Boundary(None, f"bubblewrap ({sandbox.bwrap}) is not installed on this server", None, "", ())
    try:
        seccomp, note = _seccomp()
    except (OSError, subprocess.SubprocessError) as e:
        seccomp, note = None, f"no seccomp filter: {e}"
    boundary = Boundary(bwrap, None, seccomp, note, _mounts(sandbox))
    check = "import os; print(os.getuid(), os.getpid(), os.path.exists('/sandbox/boot.py'))"
    try:
        proc = boundary.run(["-c", check], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return Boundary(bwrap, f"bubblewrap could not start: {e}", None, note, ())
    if proc.stdout.decode().split() != [NOBODY, "2", "True"]:
        why = (proc.stderr.decode(errors="replace").strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return Boundary(bwrap, f"bubblewrap could not set up the sandbox here: {why}", None, note, ())
    return boundary


def require(sandbox: Sandbox, param: str) -> None:
    """A 400 naming the grader's type when python graders cannot run confined on this server."""
    boundary = probe(sandbox)
    if not boundary.ok:
        raise InvalidRequest(
            f"{param}: python graders are disabled on this server because their sandbox cannot "
            f"be set up ({boundary.error}); see docs/graders.md.",
            param=f"{param}.type",
            code="python_grader_unavailable",
        )
