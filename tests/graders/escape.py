"""Grader sources that attack the sandbox as an attacker with an API key would: first disarm
the in-process audit hook (find it with gc, swap its code), then try to get out. With the hook
gone, only the operating-system boundary stands in the way."""

from __future__ import annotations

DISARM = """
import gc


def _disarm():
    global _DISARMED
    if globals().get("_DISARMED"):  # an earlier sample of the batch did it
        return
    found = 0
    for f in gc.get_objects():
        code = getattr(f, "__code__", None)
        if code is None or code.co_name != "hook" or "boot" not in code.co_filename:
            continue
        names = code.co_freevars  # the swapped-in code must close over as many cells
        src = ("def outer():\\n" + "".join(f"    {n} = None\\n" for n in names) +
               "    def hook(event, args):\\n        return (" + "".join(f"{n}, " for n in names) + ")\\n"
               "    return hook\\n")
        ns = {}
        exec(src, ns)
        f.__code__ = ns["outer"]().__code__
        found += 1
    if not found:
        raise LookupError("no audit hook found")
    __import__("socket")  # the hook refuses this import: it is disarmed
    _DISARMED = True
"""


def attack(body: str) -> str:
    """A grader that disarms the hook, runs `body` (indented lines using `item`), and returns
    1.0 when the body got through."""
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"{DISARM}\n\ndef grade(sample, item):\n    _disarm()\n{lines}\n    return 1.0\n"


# name -> body; each must end in an error (or, for signals, hit nothing of the host's).
ATTACKS = {
    "read the data dir": "import os\nos.listdir(item['data_dir'])",
    "read secret.key": "open(item['data_dir'] + '/secret.key', 'rb').read()",
    "read the database": "open(item['db'], 'rb').read()",
    "read the host's files": "open('/etc/passwd').read()",
    "read the server's environment": "open('/proc/' + str(item['server_pid']) + '/environ').read()",
    "run a subprocess": "import subprocess\nsubprocess.run(['id'], check=True)",
    "os.system": "import os\nassert os.system('id') == 0",
    "posix_spawn": "import os\nos.posix_spawn('/usr/bin/id', ['id'], {})",
    "open a socket": "import socket\nsocket.socket()",
    "connect to the server's port": "import socket\nsocket.create_connection(('127.0.0.1', item['port']), 2)",
    "write into the data dir": "open(item['data_dir'] + '/planted', 'w').write('x')",
    "write outside its tmp": "open('/planted', 'w').write('x')",
    "write into /dev/shm (unbounded memory)": "open('/dev/shm/planted', 'w').write('x')",
    "write into the Python installation": "import sys\nopen(sys.base_prefix + '/planted', 'w').write('x')",
    "signal the server": "import os, signal\nos.kill(item['server_pid'], signal.SIGKILL)",
    "pidfd_send_signal the server": (
        "import os, signal\nfd = os.pidfd_open(item['server_pid'])\nsignal.pidfd_send_signal(fd, signal.SIGKILL)"
    ),
    "pidfd_send_signal any pid": (
        "import os, signal\nfor pid in range(1, 64):\n"
        "    try:\n        fd = os.pidfd_open(pid)\n    except ProcessLookupError:\n"
        "        continue\n    signal.pidfd_send_signal(fd, signal.SIGKILL)"
    ),
    "fork": "import os\nif os.fork() == 0:\n    os._exit(0)",
    "fork bomb": "import os\nfor _ in range(10000):\n    os.fork()",
    "leave a process behind": (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\n    os._exit(0)"
    ),
    "ptrace": "import ctypes\nassert ctypes.CDLL(None).ptrace(16, 1, 0, 0) == 0",
    "a new user namespace": "import ctypes\nassert ctypes.CDLL(None).unshare(0x10000000) == 0",
    "mount": "import ctypes\nassert ctypes.CDLL(None).mount(b'none', b'/tmp', b'tmpfs', 0, None) == 0",
}

# These need no error to be harmless: a signal sent inside the grader's PID namespace reaches
# nothing outside it. The server's survival is what they prove.
SIGNALS_INSIDE = {
    "signal the parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    "signal every process": "import os, signal\nos.kill(-1, signal.SIGKILL)",
}
