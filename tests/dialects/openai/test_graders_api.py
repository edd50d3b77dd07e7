"""graders/run and graders/validate through the official openai SDK (strict parsing) against a
live server: known rewards, the metadata the SDK requires, and 400s naming the field."""

from __future__ import annotations

import openai
import pytest
from tests.helpers import EXACT_GRADER as EXACT


def test_validate_returns_the_grader(client):
    out = client.fine_tuning.alpha.graders.validate(grader=EXACT)
    assert out.grader.type == "string_check" and out.grader.reference == "{{item.answer}}"
    multi = {"type": "multi", "name": "m", "graders": EXACT, "calculate_output": "exact * 2"}
    assert client.fine_tuning.alpha.graders.validate(grader=multi).grader.calculate_output == "exact * 2"


@pytest.mark.parametrize(
    "grader,param",
    [
        ({"type": "regex", "name": "x"}, "grader.type"),
        ({**EXACT, "input": "{{sample.output_text"}, "grader.input"),
        ({**EXACT, "operation": "startswith"}, "grader.operation"),
        ({"type": "python", "name": "p", "source": "def nope(:"}, "grader.source"),
        ({"type": "multi", "name": "m", "graders": EXACT, "calculate_output": "open('x')"}, "grader.calculate_output"),
    ],
)
def test_validate_rejects_bad_graders_naming_the_field(client, grader, param):
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.alpha.graders.validate(grader=grader)
    assert e.value.body["param"] == param, e.value.body


def test_run_string_check(client):
    hit = client.fine_tuning.alpha.graders.run(grader=EXACT, model_sample="Paris", item={"answer": "Paris"})
    miss = client.fine_tuning.alpha.graders.run(grader=EXACT, model_sample="Rome", item={"answer": "Paris"})
    assert (hit.reward, miss.reward) == (1.0, 0.0)
    assert hit.sub_rewards == {"exact": 1.0}
    assert hit.metadata.name == "exact" and hit.metadata.type == "string_check"
    assert hit.metadata.execution_time >= 0 and not hit.metadata.errors.invalid_variable_error
    # A missing item field is a flagged 0, as OpenAI answers it.
    gap = client.fine_tuning.alpha.graders.run(grader=EXACT, model_sample="Paris", item={})
    assert gap.reward == 0.0 and gap.metadata.errors.invalid_variable_error


def test_run_multi_and_python(client):
    grader = {
        "type": "multi",
        "name": "m",
        "calculate_output": "0.5 * exact + 0.5 * length",
        "graders": {
            "exact": EXACT,
            "length": {
                "type": "python",
                "name": "length",
                "source": "def grade(sample, item):\n    return min(1.0, len(sample['output_text']) / 10)\n",
            },
        },
    }
    out = client.fine_tuning.alpha.graders.run(grader=grader, model_sample="Paris", item={"answer": "Paris"})
    assert out.sub_rewards == {"exact": 1.0, "length": 0.5}
    assert out.reward == pytest.approx(0.75)


def test_run_python_that_breaks_out_fails_clearly(client):
    grader = {
        "type": "python",
        "name": "peek",
        "source": "def grade(sample, item):\n    return float(len(open('/etc/passwd').read()) > 0)\n",
    }
    out = client.fine_tuning.alpha.graders.run(grader=grader, model_sample="x")
    assert out.reward == 0.0 and out.metadata.errors.python_grader_runtime_error
    assert "sandbox" in out.metadata.errors.python_grader_runtime_error_details


def test_run_score_model_asks_polytunes_own_chat_endpoint(client):
    grader = {
        "type": "score_model",
        "name": "judge",
        "model": "polytune-tiny",
        "range": [0, 1],
        "sampling_params": {"max_completions_tokens": 8, "seed": 1},
        "input": [{"role": "user", "content": "Score this answer from 0 to 1: {{sample.output_text}}"}],
    }
    out = client.fine_tuning.alpha.graders.run(grader=grader, model_sample="Paris")
    errors = out.metadata.errors
    # The tiny model's words are random: whether they hold a score is up to them, but the call
    # reached the server's own chat endpoint with the caller's key and was answered.
    assert not errors.api_model_grader_server_error, errors.api_model_grader_server_error_details
    assert errors.api_model_grader_parse_error or 0.0 <= out.reward <= 1.0
    bad = {**grader, "model": "no-such-model"}
    out = client.fine_tuning.alpha.graders.run(grader=bad, model_sample="Paris")
    assert out.metadata.errors.api_model_grader_server_error


@pytest.mark.parametrize(
    "method,param",
    [
        ({"type": "reinforcement", "reinforcement": {}}, "method.reinforcement.grader"),
        (
            {"type": "reinforcement", "reinforcement": {"grader": {**EXACT, "reference": "{{item.answer"}}},
            "method.reinforcement.grader.reference",
        ),
        (
            {"type": "reinforcement", "reinforcement": {"grader": {"type": "nope", "name": "x"}}},
            "method.reinforcement.grader.type",
        ),
        (
            {"type": "reinforcement", "reinforcement": {"grader": EXACT, "hyperparameters": {"compute_multiplier": 0}}},
            "method.reinforcement.hyperparameters.compute_multiplier",
        ),
        (
            {
                "type": "reinforcement",
                "reinforcement": {"grader": EXACT, "hyperparameters": {"reasoning_effort": "max"}},
            },
            "method.reinforcement.hyperparameters.reasoning_effort",
        ),
        (
            {"type": "reinforcement", "reinforcement": {"grader": EXACT, "hyperparameters": {"beta": 0.1}}},
            "method.reinforcement.hyperparameters.beta",
        ),
    ],
)
def test_reinforcement_job_with_a_bad_grader_is_refused(client, method, param):
    import io

    train = client.files.create(
        file=("rl.jsonl", io.BytesIO(b'{"messages": [{"role": "user", "content": "hi"}], "answer": "x"}\n')),
        purpose="fine-tune",
    ).id
    before = len(client.fine_tuning.jobs.list(limit=100).data)
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(model="polytune-tiny", training_file=train, method=method)
    assert e.value.body["param"] == param, e.value.body
    assert len(client.fine_tuning.jobs.list(limit=100).data) == before
