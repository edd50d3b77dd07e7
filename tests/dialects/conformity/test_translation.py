"""The translation layer itself, called as the routes call it, for what the walks beside this
file (test_openai.py, test_seekr.py, test_oxen.py, driven by the field tables) can't see from
outside: the exact default max_length for a model's context, which keys a warning names, the
spec a request becomes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from polytune.dialects.common.body import validation_error
from polytune.dialects.openai import translate as openai_tr
from polytune.dialects.openai.protocol import CreateJobRequest
from polytune.dialects.oxen import render as oxen_render
from polytune.dialects.oxen import translate as oxen_tr
from polytune.dialects.oxen.protocol import CreateFineTuneRequest
from polytune.dialects.seekr import translate as seekr_tr
from polytune.dialects.seekr.protocol import FinetuneRequestIn
from polytune.domain.errors import InvalidRequest
from polytune.domain.validation import check_spec

GRADER = {"type": "string_check", "name": "g", "input": "{{sample.output_text}}", "reference": "7", "operation": "eq"}


# -- SeekrFlow ----------------------------------------------------------------------------------
def _seekr(training: dict[str, Any] | None = None, infra: dict[str, Any] | None = None, context: int = 4096):
    body = {
        "training_config": {"training_files": ["file-x"], "model": "m", "n_epochs": 1, **(training or {})},
        "infrastructure_config": {"accel_type": "A100", "n_accel": 1, **(infra or {})},
    }
    req = FinetuneRequestIn.model_validate(body)
    spec = seekr_tr.to_spec(req, model_max_length=context)
    check_spec(spec)
    return req, spec


@pytest.mark.parametrize(
    "training,context,expect",
    [
        ({}, 4096, 2500),  # the document's default
        ({}, 1024, 1024),  # ... bounded by the model's context
        ({"max_length": 1}, 4096, 1),  # just inside (> 0)
        ({"max_length": 3000}, 4096, 3000),  # sent: kept as sent
    ],
)
def test_seekr_max_length(training, context, expect):
    _, spec = _seekr(training, context=context)
    assert spec.hyperparameters.context_length == expect


@pytest.mark.parametrize("lora,expect", [({}, 0.1), ({"dropout": 0}, 0.0), ({"dropout": 1}, 1.0)])
def test_seekr_lora_dropout_inside(lora, expect):
    _, spec = _seekr({"lora_config": lora})
    assert spec.adapter.kind == "lora" and spec.adapter.lora.dropout == expect


@pytest.mark.parametrize(
    "training,loc",
    [
        ({"max_length": 0}, ("training_config", "max_length")),
        ({"lora_config": {"dropout": -0.01}}, ("training_config", "lora_config", "dropout")),
        ({"lora_config": {"dropout": 1.01}}, ("training_config", "lora_config", "dropout")),
        ({"lora_config": {"r": 0}}, ("training_config", "lora_config", "r")),
        ({"batch_size": 0}, ("training_config", "batch_size")),
        ({"batch_size": 1025}, ("training_config", "batch_size")),
        (
            {
                "reward_components": {"format_reward_weight": 0, "graders": [{"type": "math_accuracy"}]},
                "fine_tune_type": "GRPO",
            },
            ("training_config", "reward_components", "format_reward_weight"),
        ),
    ],
)
def test_seekr_bounds_outside(training, loc):
    with pytest.raises(ValidationError) as e:
        _seekr(training)
    assert e.value.errors()[0]["loc"][: len(loc)] == loc


def test_seekr_batch_size_bounds_inside_and_open_objects():
    for size in (1, 1024):
        assert _seekr({"batch_size": size})[1].hyperparameters.batch_size == size
    req, spec = _seekr(
        {
            "fine_tune_type": "GRPO",
            "typo": 1,
            "lora_config": {"x": 1, "extras": {"y": 2}},
            "reward_components": {"graders": [{"type": "math_accuracy"}], "z": 3},
        },
        {"zone": "eu"},
    )
    assert spec.extras["fine_tune_type"] == "GRPO" and spec.method.type == "reinforcement"
    (warning,) = [w for w in seekr_tr.warnings(req) if w.startswith("Ignored")]
    for key in (
        "training_config.typo",
        "infrastructure_config.zone",
        "training_config.lora_config.x",
        "training_config.lora_config.extras.y",
        "training_config.reward_components.z",
    ):
        assert key in warning
    assert "z" not in spec.extras["reward_components"]


# -- OpenAI / Nebius / TrueFoundry -----------------------------------------------------------------
def _openai(**body: Any):
    req = CreateJobRequest.model_validate({"model": "m", "training_file": "file-x", **body})
    spec, _ = openai_tr.to_spec(req)
    check_spec(spec)
    return spec


def _openai_error(**body: Any) -> str:
    try:
        _openai(**body)
    except ValidationError as e:
        return validation_error(e).param
    except InvalidRequest as e:
        return e.param
    raise AssertionError("accepted")


def test_openai_defaults_when_left_out():
    spec = _openai(method={}, integrations=[{}], hyperparameters={}, metadata={})
    assert spec.method.type == "supervised" and spec.integrations == [] and spec.hyperparameters.n_epochs == "auto"
    rl = _openai(method={"type": "reinforcement", "reinforcement": {"grader": GRADER}})
    assert rl.reward.eval_samples == "auto" and rl.reward.compute_multiplier == "auto"


@pytest.mark.parametrize(
    "key,inside,outside",
    [("eval_samples", 1, 0), ("eval_interval", 1, 0), ("compute_multiplier", 0.01, 0), ("max_completion_tokens", 1, 0)],
)
def test_openai_reinforcement_bounds(key, inside, outside):
    def body(value):
        return {
            "method": {"type": "reinforcement", "reinforcement": {"grader": GRADER, "hyperparameters": {key: value}}}
        }

    _openai(**body(inside))
    assert _openai_error(**body(outside)) == f"method.reinforcement.hyperparameters.{key}"


@pytest.mark.parametrize(
    "body,param",
    [
        (
            {"method": {"type": "reinforcement", "reinforcement": {"grader": GRADER, "n_epochs": 2}}},
            "method.reinforcement.n_epochs",
        ),
        (
            {
                "hyperparameters": {"n_epochs": 2},
                "method": {"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 3}}},
            },
            "hyperparameters.n_epochs",
        ),
        ({"integrations": [{"wandb": {"project": "p"}}]}, "integrations[0].type"),
        ({"method": {"supervised": {}}}, "method.type"),
        ({"hyperparameters": {"warmup_ratio": 1.0}}, "hyperparameters.warmup_ratio"),
        ({"hyperparameters": {"lora_dropout": 1.01}}, "hyperparameters.lora_dropout"),
    ],
)
def test_openai_refusals_name_the_field(body, param):
    assert _openai_error(**body) == param


def test_openai_inside_bounds_and_agreeing_duplicates():
    spec = _openai(
        hyperparameters={"warmup_ratio": 0.0, "lora_dropout": 1.0, "n_epochs": 2},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
    )
    assert spec.hyperparameters.warmup_ratio == 0.0 and spec.adapter.lora.dropout == 1.0


# -- Oxen ---------------------------------------------------------------------------------------------
def _oxen(**params: Any):
    req = CreateFineTuneRequest.model_validate(
        {"resource": "main/qa.csv", "base_model": "m", "script_type": "text_generation", "training_params": params}
    )
    spec, _ = oxen_tr.to_spec(req, "repo")
    return req, spec


@pytest.mark.parametrize(
    "params,name",
    [({}, "grad_accum"), ({"gradient_accumulation": 2}, "gradient_accumulation"), ({"grad_accum": 2}, "grad_accum")],
)
def test_oxen_accumulation_name_and_default(params, name):
    _, spec = _oxen(**params)
    shown = oxen_render._training_params(spec)
    assert shown[name] == params.get(name, 1)
    assert {"grad_accum", "gradient_accumulation"} - {name} & set(shown) == set()


def test_oxen_unknown_training_params_are_ignored_and_listed():
    req, spec = _oxen(epochs=1, warmup=3, scheduler="cosine")
    expected = (
        "Ignored unknown training_params (Oxen's schema allows any key; polytune has no use for them): "
        "scheduler, warmup"
    )
    assert oxen_tr.warnings(req) == [expected]
    assert "warmup" not in spec.extras["training_params"]
