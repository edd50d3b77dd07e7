"""Every number of the canonical job has a range (domain/bounds.py), refused outside it with a
400 naming the param in each dialect's own shape, before anything is created."""

from __future__ import annotations

import copy
import typing

import httpx
import pytest

from polytune.domain import spec as spec_module
from polytune.domain.bounds import BOUNDS, check_bounds
from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import JobSpec

BASE = {"model": "polytune-tiny", "training_files": ["file-x"]}


# A method's options exist only on a job of that method (JobSpec.method is a discriminated union).
_METHOD_OF = {
    "preference": {"type": "dpo"},
    "reward": {"type": "reinforcement", "reward": {"graders": [{"type": "string_check", "name": "g"}]}},
    "image": {"type": "image_generation", "image": {}},
}


def _spec_with(field: str, value) -> JobSpec:
    body: dict = dict(BASE)
    if field.startswith("method."):
        body["method"] = copy.deepcopy(_METHOD_OF[field.split(".")[1]])
    *parents, leaf = field.split(".")
    node = body
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return JobSpec.model_validate(body)


def _numeric_fields(model: type, prefix: str) -> typing.Iterator[str]:
    """Dotted paths of every int/float field of `model` and the spec models it holds."""
    for name, info in model.model_fields.items():
        hint = info.annotation
        args = set(typing.get_args(hint)) | {hint}
        if args & {int, float}:
            yield f"{prefix}{name}"
        for arg in args:
            if isinstance(arg, type) and arg.__module__ == spec_module.__name__:
                yield from _numeric_fields(arg, f"{prefix}{name}.")


def test_every_number_of_the_spec_is_bounded():
    """A new numeric field without a bound fails here."""
    bounded = {b.field for b in BOUNDS}
    missing = sorted(set(_numeric_fields(JobSpec, "")) - bounded)
    assert not missing, f"no bound for {missing}"


@pytest.mark.parametrize("bound", BOUNDS, ids=lambda b: b.field)
def test_each_bound_refuses_just_outside_and_accepts_its_edges(bound):
    inside_high = int(bound.high) - 1 if bound.integer and bound.high_open else bound.high
    if not bound.integer and bound.high_open:
        inside_high = bound.high * 0.999
    check_bounds(_spec_with(bound.field, int(inside_high) if bound.integer else inside_high))
    above = int(bound.high) + 1 if bound.integer else bound.high * 1.5 + 1
    below = int(bound.low) - 1 if bound.integer else bound.low - 1
    for bad in (above, below):
        with pytest.raises(InvalidRequest) as e:
            check_bounds(_spec_with(bound.field, bad))
        assert e.value.param == bound.param


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e300])
def test_non_finite_and_huge_rates_are_refused(value):
    with pytest.raises(InvalidRequest) as e:
        check_bounds(_spec_with("hyperparameters.learning_rate_multiplier", value))
    assert e.value.param == "hyperparameters.learning_rate_multiplier"


# -- through each dialect ------------------------------------------------------------------------
def _post(server, path: str, body: dict, *, bearer: bool = True) -> httpx.Response:
    auth = f"Bearer {server.key_a}" if bearer else server.key_a
    return httpx.post(f"{server.url}{path}", json=body, headers={"Authorization": auth}, timeout=30)


@pytest.mark.parametrize("prefix", ["/v1", "/api/llm"])  # OpenAI and Nebius; TrueFoundry
@pytest.mark.parametrize(
    "hp,param",
    [
        ({"learning_rate_multiplier": 101}, "learning_rate_multiplier"),
        ({"learning_rate_multiplier": 1e300}, "learning_rate_multiplier"),
        ({"n_checkpoints": 1001}, "n_checkpoints"),
        ({"n_checkpoints": 1_000_000_000}, "n_checkpoints"),
    ],
)
def test_openai_family_refuses_with_param(limited_server, prefix, hp, param):
    body = {
        "model": "polytune-tiny",
        "training_file": "file-x",
        "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
    }
    r = _post(limited_server, f"{prefix}/fine_tuning/jobs", body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == f"method.supervised.hyperparameters.{param}"


def test_nebius_extra_body_refuses_with_param(limited_server):
    body = {
        "model": "polytune-tiny",
        "training_file": "file-x",
        "hyperparameters": {"n_epochs": 1},
        "extra_body": {"n_checkpoints": 5000},
    }
    r = _post(limited_server, "/v1/fine_tuning/jobs", body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"].endswith("n_checkpoints")


@pytest.mark.parametrize("field,value", [("n_checkpoints", 1001), ("learning_rate", 5.0)])
def test_seekr_refuses_with_422_loc(limited_server, field, value):
    body = {
        "training_config": {"training_files": ["file-x"], "model": "polytune-tiny", "n_epochs": 1, field: value},
        "infrastructure_config": {"accel_type": "H100", "n_accel": 1, "n_node": 1},
    }
    r = _post(limited_server, "/v1/flow/fine-tunes", body, bearer=False)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "training_config", field]


def test_oxen_refuses_in_its_envelope(limited_server):
    body = {
        "resource": "main/data.csv",
        "base_model": "polytune-tiny",
        "script_type": "text_generation",
        "training_params": {"learning_rate": 1e300},
    }
    r = _post(limited_server, "/api/repos/org-a/any/fine_tunes", body)
    assert r.status_code == 400, r.text
    assert r.json()["status"] == "error" and r.json()["error"]["param"] == "training_params.learning_rate"
