"""Domain errors cross process boundaries (the engine process sends them to the API server
pickled) as themselves: the same class, message, param, code and extra fields, so a 400 stays a
400 naming the same field."""

from __future__ import annotations

import pickle

from polytune.domain.errors import InvalidRequest, RateLimited, Unavailable
from polytune.inference.backend import ModelTarget, NonFiniteModel


def test_errors_with_their_own_signatures_pickle_as_themselves():
    for error in (
        NonFiniteModel(ModelTarget("ft:polytune-tiny:org:abc", "/models/x")),
        RateLimited("Slow down.", retry_after=7, param="model"),
        InvalidRequest("max_tokens is too large.", param="max_tokens", code="context_length_exceeded"),
        Unavailable("The engine stopped; retry."),
    ):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error)
        assert (again.message, again.param, again.code, again.kind) == (
            error.message,
            error.param,
            error.code,
            error.kind,
        )
        assert again.args == error.args and str(again) == str(error)
        assert getattr(again, "retry_after", None) == getattr(error, "retry_after", None)
    assert NonFiniteModel(ModelTarget("m", "/x")).code == "model_not_finite"
