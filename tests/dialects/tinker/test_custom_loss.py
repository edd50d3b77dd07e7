"""`forward_backward_custom` with the SDK: a loss the client computes from the logprobs of a
forward call, sent back as per-token weights (-dLoss/dlogprob) for a cross_entropy backward. A
custom negative log-likelihood must give the built-in cross_entropy's loss and, step for step, the
same weights; a loss unlike it, its own value."""

from __future__ import annotations

import math

import pytest

from tests.dialects.tinker.test_sdk import FACTS, datum, loss

pytestmark = [pytest.mark.live, pytest.mark.slow]


def _neg_ll(data, logprobs_list):
    """cross_entropy written as a custom loss: -sum(weights * logprobs)."""
    total = sum(-(d.loss_fn_inputs["weights"].to_torch() * lp).sum() for d, lp in zip(data, logprobs_list, strict=True))
    return total, {"custom/neg_ll:sum": float(total.detach())}


def _pair(service_a):
    """Two runs with the same seed (the same adapter) on the FACTS data."""
    from tinker import types

    runs = [service_a.create_lora_training_client(base_model="polytune-tiny", rank=4, seed=3).result() for _ in "ab"]
    tok = runs[0].get_tokenizer()
    return runs, [datum(types, tok, p, a) for p, a in FACTS]


def test_a_custom_nll_matches_the_builtin_cross_entropy(service_a):
    from tinker import types

    (custom, builtin), data = _pair(service_a)
    adam = types.AdamParams(learning_rate=5e-3)
    for _ in range(3):
        got = custom.forward_backward_custom(data, _neg_ll)
        custom.optim_step(adam)
        want = builtin.forward_backward(data, "cross_entropy")
        builtin.optim_step(adam).result()
        got_result, want_result = got.result(), want.result()
        assert math.isclose(loss(got_result), loss(want_result), rel_tol=1e-5), (loss(got_result), loss(want_result))
        assert math.isclose(got_result.metrics["custom/neg_ll:sum"], loss(want_result), rel_tol=1e-5)
        # The server's backward ran on the surrogate: its loss is the same sum here.
        assert math.isclose(got_result.metrics["surrogate_loss:sum"], loss(want_result), rel_tol=1e-5)
    # Same gradients, so the same weights after the steps: the same loss now.
    after = [loss(run.forward(data, "cross_entropy").result()) for run in (custom, builtin)]
    assert math.isclose(after[0], after[1], rel_tol=1e-5), after


def test_a_loss_of_its_own_and_a_traced_loss_handle(service_a):
    (run, _), data = _pair(service_a)
    forward = run.forward(data, "cross_entropy").result()
    logprobs = [out["logprobs"].to_torch() for out in forward.loss_fn_outputs]

    def squared(data, logprobs_list):
        total = sum((lp**2).sum() for lp in logprobs_list)
        return total, {}

    result = run.forward_backward_custom(data, squared).result()
    assert math.isclose(loss(result), float(sum((lp**2).sum() for lp in logprobs)), rel_tol=1e-5)

    def neg_ll(logprobs, weights):
        value = -(logprobs * weights).sum()
        return value, {"custom/neg_ll:sum": value}

    handle = service_a.create_custom_loss(neg_ll, input_ranks={"logprobs": 1, "weights": 1}).result()
    traced = run.forward_backward_custom(data, handle).result()
    # No optimizer step yet: the weights the first forward saw, so cross_entropy's loss then.
    assert math.isclose(loss(traced), loss(forward), rel_tol=1e-5), (loss(traced), loss(forward))
    assert math.isclose(traced.metrics["custom/neg_ll:sum"], loss(forward), rel_tol=1e-5)
