"""The python grader's operating-system boundary, attacked through a live server's graders/run
the way a tenant with an API key would: each grader first disarms the in-process audit hook
(so only bubblewrap's namespaces, uid and seccomp filter stand in the way), then tries to get
out. Every attempt fails, and the server stays healthy with nothing left running."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import openai
import pytest

from polytune.graders.boundary import Sandbox as SandboxSetup
from polytune.graders.boundary import probe
from tests.graders.escape import ATTACKS, SIGNALS_INSIDE, attack

pytestmark = pytest.mark.skipif(
    not probe(SandboxSetup()).ok,
    reason=f"no bubblewrap boundary on this machine: {probe(SandboxSetup()).error} (make venv installs it)",
)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from tests.conftest import LiveServer

    tmp = tmp_path_factory.mktemp("escape")
    srv = LiveServer(
        tmp,
        f"sqlite:///{tmp / 'data' / 'polytune.db'}",
        POLYTUNE_WARM_WORKERS="false",
        POLYTUNE_GRADER_RUNS_PER_MINUTE="1000",
    )
    srv.key = srv.create_key("attacker")
    srv.client = openai.OpenAI(base_url=f"{srv.url}/v1", api_key=srv.key, max_retries=0)
    srv.data_dir = tmp / "data"
    (srv.data_dir / "secret.key").write_bytes(b"not-for-graders")
    yield srv
    srv.stop()


def item(live) -> dict:
    return {
        "data_dir": str(live.data_dir),
        "db": str(live.data_dir / "polytune.db"),
        "port": live.port,
        "server_pid": live.proc.pid,
    }


def run(live, source: str):
    return live.client.fine_tuning.alpha.graders.run(
        grader={"type": "python", "name": "attack", "source": source}, model_sample="x", item=item(live)
    )


def assert_healthy(live) -> None:
    started = time.monotonic()
    assert httpx.get(f"{live.url}/health", timeout=5).status_code == 200
    assert time.monotonic() - started < 1.0
    assert live.proc.poll() is None


def sandbox_children(pid: int) -> list[str]:
    """Command lines of `pid`'s descendants that belong to a grader's sandbox."""
    children = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(proc.name))
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        todo += children.get(child, [])
        try:
            cmd = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "bwrap" in cmd or "boot.py" in cmd:
            found.append(cmd)
    return found


def test_the_hook_swap_itself_works_so_the_boundary_is_what_holds(live):
    out = run(live, attack("import sys\nassert sys.flags.isolated"))
    assert out.reward == 1.0, out.metadata.errors


@pytest.mark.parametrize("name", list(ATTACKS))
def test_an_attack_with_the_hook_disarmed_fails(live, name):
    out = run(live, attack(ATTACKS[name]))
    errors = out.metadata.errors
    assert out.reward == 0.0 and errors.python_grader_runtime_error, (name, errors)
    detail = errors.python_grader_runtime_error_details
    # The operating system refused it, not the (disarmed) audit hook.
    assert "sandbox:" not in detail and "no audit hook found" not in detail, (name, detail)
    assert not (live.data_dir / "planted").exists() and not Path("/planted").exists()
    assert_healthy(live)
    assert sandbox_children(live.proc.pid) == []


@pytest.mark.parametrize("name", list(SIGNALS_INSIDE))
def test_signals_reach_nothing_outside_the_grader(live, name):
    run(live, attack(SIGNALS_INSIDE[name]))
    assert_healthy(live)


def test_a_thread_left_running_ends_with_the_grader(live):
    started = time.monotonic()
    out = run(live, attack("import threading, time\nthreading.Thread(target=time.sleep, args=(600,)).start()"))
    assert out.reward == 1.0 and time.monotonic() - started < 5
    assert sandbox_children(live.proc.pid) == []


def test_the_grader_runs_as_nobody_in_its_own_namespaces(live):
    src = attack(
        "import os, socket\n"
        "assert (os.getuid(), os.getgid()) == (65534, 65534), os.getuid()\n"
        "assert os.getpid() < 10, os.getpid()\n"
        "assert set(os.listdir('/')) <= {'usr', 'bin', 'lib', 'lib64', 'proc', 'dev', 'tmp', 'root', "
        "'sandbox'}, os.listdir('/')\n"
        "assert not os.path.exists(os.path.expanduser('~root/.ssh'))\n"
        "assert not [k for k in os.environ if 'POLYTUNE' in k or 'KEY' in k]\n"
        "open('/tmp/scratch', 'w').write('ok')"
    )
    out = run(live, src)
    assert out.reward == 1.0, out.metadata.errors
    assert os.getuid() != 65534  # the test's own process is not the sandbox's user


def test_training_rewards_run_inside_the_same_boundary(monkeypatch):
    """A GRPO worker grades with the reward function built from its own settings: the same
    boundary, and no python grader at all where it cannot be set up."""
    from polytune.config import Settings
    from polytune.graders import Grading, parse_grader
    from polytune.graders.settings import grader_config
    from polytune.training.recipes.grpo import grader_reward

    source = attack("import os\nassert os.getuid() == 65534\nopen('/etc/passwd').read()")
    grader = parse_grader({"type": "python", "name": "p", "source": source})
    completions = [[{"role": "assistant", "content": "x"}]] * 2
    reward = grader_reward(grader, Grading(grader_config(Settings())))
    assert reward([[{"role": "user", "content": "q"}]] * 2, completions) == [0.0, 0.0]
    ok = parse_grader({"type": "python", "name": "ok", "source": attack("import os\nassert os.getuid() == 65534")})
    assert grader_reward(ok, Grading(grader_config(Settings())))(["q", "q"], ["x", "x"]) == [1.0, 1.0]
    monkeypatch.setenv("POLYTUNE_GRADER_BWRAP_PATH", "/nonexistent/bwrap")
    refused = grader_reward(ok, Grading(grader_config(Settings())))
    assert refused(["q"], ["x"]) == [0.0]


def test_the_operators_check_command_passes_here():
    import subprocess
    import sys

    out = subprocess.run(
        [str(Path(sys.executable).parent / "polytune"), "graders", "check-sandbox"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "FAIL" not in out.stdout and out.stdout.count("\nok ") >= 6 and "seccomp filter of" in out.stdout
