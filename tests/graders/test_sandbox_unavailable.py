"""A machine where the python grader's boundary cannot be set up (here: the bwrap setting names
a binary that does not exist) refuses python graders clearly, at validation, at job creation
and at run time, and never runs them unconfined. Other graders keep working."""

from __future__ import annotations

import io

import openai
import pytest

from polytune.domain.errors import InvalidRequest
from polytune.graders import GraderConfig, Grading, Sandbox, parse_grader
from polytune.graders.models import PythonGrader
from polytune.graders.python_grader import SandboxLimits, run_python
from tests.helpers import chat_jsonl

MISSING = Sandbox(bwrap="/nonexistent/bwrap")
PYTHON = {"type": "python", "name": "p", "source": "def grade(sample, item):\n    return 1.0\n"}


def test_validation_refuses_python_graders_naming_the_field():
    with pytest.raises(InvalidRequest) as e:
        parse_grader(PYTHON, config=GraderConfig(sandbox=MISSING))
    assert e.value.param == "grader.type" and e.value.code == "python_grader_unavailable"
    assert "/nonexistent/bwrap" in e.value.message and "sandbox" in e.value.message


def test_run_time_refuses_too_never_unconfined():
    grader = PythonGrader.model_validate(PYTHON)
    out = run_python(grader, [({}, {})] * 2, SandboxLimits(), MISSING)
    assert [o.flag for o in out] == ["python_grader_server_error"] * 2
    assert "disabled" in out[0].detail


def test_other_graders_still_run():
    config = GraderConfig(sandbox=MISSING)
    g = parse_grader(
        {"type": "string_check", "name": "s", "input": "{{sample.output_text}}", "reference": "a", "operation": "eq"},
        config=config,
    )
    assert Grading(config).grade(g, "a", {}).reward == 1.0


@pytest.fixture(scope="module")
def no_bwrap(tmp_path_factory):
    from tests.conftest import LiveServer

    tmp = tmp_path_factory.mktemp("no-bwrap")
    srv = LiveServer(
        tmp,
        f"sqlite:///{tmp / 'db.sqlite'}",
        POLYTUNE_WARM_WORKERS="false",
        POLYTUNE_GRADER_BWRAP_PATH="/nonexistent/bwrap",
    )
    srv.client = openai.OpenAI(base_url=f"{srv.url}/v1", api_key=srv.create_key("org"), max_retries=0)
    yield srv
    srv.stop()


def test_the_api_answers_400_in_openais_shape(no_bwrap):
    client = no_bwrap.client
    for call in (
        lambda: client.fine_tuning.alpha.graders.validate(grader=PYTHON),
        lambda: client.fine_tuning.alpha.graders.run(grader=PYTHON, model_sample="x"),
    ):
        with pytest.raises(openai.BadRequestError) as e:
            call()
        assert e.value.body["param"] == "grader.type" and e.value.body["code"] == "python_grader_unavailable"
        assert "cannot be set up" in e.value.body["message"]
    f = client.files.create(file=("rl.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(
            model="polytune-tiny",
            training_file=f.id,
            method={"type": "reinforcement", "reinforcement": {"grader": PYTHON}},
        )
    assert e.value.body["param"] == "method.reinforcement.grader.type"


def test_the_operators_check_command_says_python_graders_are_disabled():
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run(
        [str(Path(sys.executable).parent / "polytune"), "graders", "check-sandbox"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "POLYTUNE_GRADER_BWRAP_PATH": "/nonexistent/bwrap"},
    )
    assert out.returncode == 1 and "DISABLED" in out.stdout and "/nonexistent/bwrap" in out.stdout
