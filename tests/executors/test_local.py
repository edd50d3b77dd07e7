"""The local executor's two ways to start a worker: forked warm from the fork server, or cold."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from polytune.config import Settings
from polytune.executors.local import LocalExecutor
from polytune.store.db import Database

pytestmark = pytest.mark.live  # starts worker processes


def _settings(tmp: Path, warm: bool) -> Settings:
    settings = Settings(data_dir=tmp, warm_workers=warm)
    db = Database(settings.resolved_database_url)
    db.migrate()
    db.dispose()
    return settings


def _wait_exit(ex: LocalExecutor, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exits := ex.reap():
            return exits
        time.sleep(0.1)
    raise AssertionError("the worker did not exit")


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_worker_runs_the_runner_in_its_own_process_group(tmp_path, warm):
    ex = LocalExecutor(_settings(tmp_path, warm))
    try:
        # A job the store does not have: the runner says so and exits 0, through the whole path.
        info = ex.submit("ftjob-absent")
        assert info["start"] == ("warm" if warm else "cold")
        (exit_,) = _wait_exit(ex)
        assert exit_.job_id == "ftjob-absent" and exit_.returncode == 0
        assert ex.running() == []
        log = (tmp_path / "logs" / "ftjob-absent.log").read_text()
        assert "not running; nothing to do" in log
        pid, pgid, ppid = map(int, re.search(r"worker pid=(\d+) pgid=(\d+) ppid=(\d+)", log).groups())
        assert pid == info["pid"] == pgid  # its own process group: a stop takes all it started
        if warm:
            # Forked by the fork server, which had imported the training stack beforehand.
            assert ppid != os.getpid()
            assert "preloaded (warm start)" in log
            # ... and frozen it out of the collector's sight (a worker's full collections skip it).
            assert int(re.search(r"\((\d+) objects frozen", log).group(1)) > 100_000
        else:
            assert ppid == os.getpid()
            assert "not imported yet (cold start) (0 objects frozen" in log
    finally:
        ex.shutdown()
