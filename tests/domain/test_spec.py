"""JobSpec.method: a union discriminated by `type`, each method with its own options, refused when
the spec is made without them (or with another method's); the flat form (a method name with its
block beside it) that dialects build and older stored jobs hold reads the same."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import (
    DpoMethod,
    ImageGenerationMethod,
    ImageSpec,
    JobSpec,
    PreferenceSpec,
    ReinforcementMethod,
    RewardSpec,
    SupervisedMethod,
    method_type,
)

GRADER = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "7",
    "operation": "eq",
}


def _spec(**kwargs) -> JobSpec:
    return JobSpec(model="polytune-tiny", training_files=["file-1"], **kwargs)


def test_each_method_carries_its_own_options():
    assert _spec().method == SupervisedMethod() and _spec().preference is None
    dpo = _spec(method="dpo", preference=PreferenceSpec(beta=0.2, loss_type="ipo"))
    assert dpo.method == DpoMethod(preference=PreferenceSpec(beta=0.2, loss_type="ipo"))
    assert dpo.preference.beta == 0.2 and dpo.reward is None and dpo.image is None
    # A dpo job given no preference settings gets the defaults (beta resolved when queued).
    assert _spec(method="dpo").preference == PreferenceSpec()
    rl = _spec(method="reinforcement", reward=RewardSpec(graders=[GRADER]))
    assert isinstance(rl.method, ReinforcementMethod) and rl.reward.graders == [GRADER] and rl.preference is None
    image = _spec(method="image_generation", image=ImageSpec(samples=1))
    assert isinstance(image.method, ImageGenerationMethod) and image.image.samples == 1


def test_the_flat_and_the_nested_form_are_one_spec_and_round_trip():
    flat = _spec(method="reinforcement", reward=RewardSpec(graders=[GRADER]))
    nested = _spec(method={"type": "reinforcement", "reward": {"graders": [GRADER]}})
    assert flat == nested
    stored = flat.model_dump(mode="json")
    assert stored["method"]["type"] == "reinforcement" and "reward" not in stored
    assert JobSpec.model_validate(stored) == flat
    # A job stored before the union: its method a name, its block beside it.
    legacy = {
        "model": "polytune-tiny",
        "training_files": ["file-1"],
        "method": "dpo",
        "preference": {"beta": 0.1, "loss_type": "sigmoid"},
        "reward": None,
        "image": None,
    }
    assert JobSpec.model_validate(legacy).preference == PreferenceSpec(beta=0.1)
    assert method_type(legacy) == "dpo" and method_type(stored) == "reinforcement" and method_type({}) == "supervised"


@pytest.mark.parametrize(
    "kwargs, param, words",
    [
        (dict(method="reinforcement"), "method.reinforcement.grader", "needs a grader"),
        (dict(method="reinforcement", reward=RewardSpec()), "method.reinforcement.grader", "needs a grader"),
        (
            dict(method={"type": "reinforcement", "reward": {"graders": []}}),
            "method.reinforcement.grader",
            "needs a grader",
        ),
        (dict(method="image_generation"), "method.type", "needs image settings"),
        (dict(image=ImageSpec()), "method.type", "takes no image settings"),
        (dict(method="dpo", reward=RewardSpec(graders=[GRADER])), "method.dpo", "takes no reward settings"),
        (dict(method="supervised", preference=PreferenceSpec()), "method.supervised", "takes no preference"),
        (dict(method={"type": "dpo"}, preference=PreferenceSpec()), "method", "belongs under method"),
    ],
)
def test_a_method_without_its_options_or_with_another_s_is_refused_when_made(kwargs, param, words):
    with pytest.raises(InvalidRequest) as refused:
        _spec(**kwargs)
    assert refused.value.param == param and words in refused.value.message


def test_an_unknown_method_or_a_nested_one_missing_its_block_is_a_validation_error():
    for method in ("kto", {"type": "kto"}, {"type": "image_generation"}, {"type": "reinforcement"}):
        with pytest.raises(ValidationError):
            _spec(method=method)
