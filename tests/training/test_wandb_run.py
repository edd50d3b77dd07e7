"""W&B failures are warnings, never errors: an online run that can't reach W&B (here a local
HTTP server that answers every request with a 503) sends the worker's key to it, warns without
showing the key, and falls back to an offline run that still records the metrics."""

from __future__ import annotations

import http.server
import threading

from polytune.domain.spec import Integration, JobSpec, WandbIntegration
from polytune.training.wandb_run import WandbReporter, start_run
from tests.wandb_reader import read_run

KEY = "wb-test-key-0123456789abcdef0123456789abcdef"


class Events:
    """An in-memory Reporter: what the job would have written to the store."""

    def __init__(self):
        self.events: list[tuple[str, str]] = []
        self.metric_steps: list[int] = []

    def event(self, message, *, level="info", data=None):
        self.events.append((level, message))

    def metrics(self, step, metrics):
        self.metric_steps.append(step)


def test_unreachable_wandb_is_a_warning_and_the_run_goes_offline(tmp_path, monkeypatch):
    seen_auth: list[str] = []

    class Down(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen_auth.append(self.headers.get("Authorization", ""))
            self.send_response(503)
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Down)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{httpd.server_port}")
    for var in ("WANDB_API_KEY", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    spec = JobSpec(
        model="polytune-tiny",
        training_files=["file-x"],
        seed=1,
        integrations=[Integration(wandb=WandbIntegration(project="p"))],
    )
    reporter = Events()
    try:
        run = start_run(spec, "ftjob-down", tmp_path / "job", reporter, api_key=KEY, mode="online", init_timeout=3)
        assert run is not None
        WandbReporter(reporter, run).metrics(1, {"train_loss": 2.5})
        run.finish({"job_id": "ftjob-down"})
    finally:
        httpd.shutdown()

    warnings = [m for level, m in reporter.events if level == "warn"]
    assert warnings and "logging offline instead" in warnings[0]
    assert not [m for _, m in reporter.events if KEY in m]
    assert reporter.metric_steps == [1]  # the job's own metrics went on regardless
    # The key reached W&B from the worker's environment (HTTP basic auth, user "api").
    import base64

    assert any(base64.b64decode(a.split()[1]).decode() == f"api:{KEY}" for a in seen_auth if a)
    (run_file,) = (tmp_path / "job").glob("wandb/offline-run-*/run-*.wandb")
    logged = read_run(run_file)
    assert [h["train_loss"] for h in logged["history"]] == [2.5] and logged["summary"]["job_id"] == "ftjob-down"


def test_every_integration_gets_its_own_run_with_the_same_metrics(tmp_path, monkeypatch):
    # Two W&B integrations: two runs open at once, each logged every metrics event. The second
    # has no name: SeekrFlow's experiment_name names it (else the job id would).
    for var in ("WANDB_API_KEY", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    spec = JobSpec(
        model="polytune-tiny",
        training_files=["file-x"],
        seed=1,
        extras={"experiment_name": "exp-7"},
        integrations=[
            Integration(wandb=WandbIntegration(project="p1", name="first", tags=["a"])),
            Integration(wandb=WandbIntegration(project="p2")),
        ],
    )
    reporter = Events()
    runs = [
        start_run(spec, "ftjob-two", tmp_path / "job", reporter, api_key=None, mode="offline", init_timeout=10, index=i)
        for i in range(2)
    ]
    assert all(runs)
    both = WandbReporter(reporter, runs)
    both.metrics(1, {"train_loss": 2.5, "learning_rate": 1e-3})
    both.metrics(2, {"train_loss": 2.0, "learning_rate": 2e-3})
    for run in runs:
        run.finish({"job_id": "ftjob-two"})
    import wandb

    wandb.teardown()  # the service has written every run file out
    assert reporter.metric_steps == [1, 2] and not [m for level, m in reporter.events if level == "warn"]
    logged = {r["project"]: r for r in map(read_run, (tmp_path / "job").glob("wandb/offline-run-*/run-*.wandb"))}
    assert set(logged) == {"p1", "p2"}
    assert (logged["p1"]["name"], logged["p1"]["id"]) == ("first", "ftjob-two")
    assert (logged["p2"]["name"], logged["p2"]["id"]) == ("exp-7", "ftjob-two-1")
    for run in logged.values():
        assert [h["train_loss"] for h in run["history"]] == [2.5, 2.0]
        assert [h["learning_rate"] for h in run["history"]] == [1e-3, 2e-3]
