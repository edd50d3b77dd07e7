"""The Tinker losses of the primitives worker (training/primitives/), each checked against the
same value computed by hand from a plain transformers forward pass of polytune-tiny.

A fresh LoRA adapter is a no-op (peft starts its B matrices at zero), so the run's logprobs are
the base model's: that is what the hand computation uses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polytune.domain.errors import InvalidRequest
from polytune.domain.primitives import AdamSettings, Datum, LoraSettings, check_datum
from polytune.training.primitives.model import PrimitiveModel, lora_targets

pytestmark = pytest.mark.trains

TOKENS = [[5, 17, 42, 8, 99], [7, 3, 250]]


@pytest.fixture(scope="module")
def model(tiny):
    return PrimitiveModel(tiny[1], "polytune-tiny", LoraSettings(rank=4, seed=0), device="cpu")


@pytest.fixture(scope="module")
def base_logprobs(tiny) -> list[np.ndarray]:
    """log p(target_t | tokens[:t+1]) per datum, from the base model itself (not the worker)."""
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny[1], dtype=torch.float32)
    out = []
    with torch.no_grad():
        for tokens in TOKENS:
            logits = base(torch.tensor([tokens[:-1]])).logits[0]
            targets = tokens[1:]
            out.append(np.array([float(torch.log_softmax(logits[t], -1)[targets[t]]) for t in range(len(targets))]))
    return out


def data(**extra) -> list[Datum]:
    rows = []
    for i, tokens in enumerate(TOKENS):
        inputs = {"target_tokens": np.array(tokens[1:], dtype=np.int64)}
        inputs.update({k: np.asarray(v[i], dtype=np.float32) for k, v in extra.items()})
        rows.append(Datum(tokens[:-1], inputs))
    return rows


def test_cross_entropy_is_the_weighted_sum_of_target_logprobs(model, base_logprobs):
    weights = [np.array([1.0, 0.5, 0.0, 2.0]), np.array([1.0, 1.0])]
    result = model.forward_backward(data(weights=weights), "cross_entropy", {}, forward_only=True)
    expected = -sum(float((lp * w).sum()) for lp, w in zip(base_logprobs, weights))
    assert result.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5)
    for out, lp in zip(result.outputs, base_logprobs):
        np.testing.assert_allclose(out["logprobs"], lp, rtol=1e-5)


def test_importance_sampling(model, base_logprobs):
    old = [lp + np.array([0.1, -0.2, 0.0, 0.3])[: len(lp)] for lp in base_logprobs]
    adv = [np.array([1.0, -1.0, 0.5, 2.0]), np.array([-0.5, 1.5])]
    result = model.forward_backward(data(logprobs=old, advantages=adv), "importance_sampling", {}, forward_only=True)
    expected = -sum(float((np.exp(lp - o) * a).sum()) for lp, o, a in zip(base_logprobs, old, adv))
    assert result.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5)


def test_ppo_clips_the_ratio(model, base_logprobs):
    # Ratios of e^0.5 and e^-0.5 fall outside [0.8, 1.2]: the clipped objective must show.
    old = [lp + np.array([-0.5, 0.5, 0.0, 0.05])[: len(lp)] for lp in base_logprobs]
    adv = [np.array([1.0, -1.0, 1.0, -1.0]), np.array([1.0, -1.0])]
    result = model.forward_backward(data(logprobs=old, advantages=adv), "ppo", {}, forward_only=True)
    expected = 0.0
    for lp, o, a in zip(base_logprobs, old, adv):
        ratio = np.exp(lp - o)
        expected -= float(np.minimum(ratio * a, np.clip(ratio, 0.8, 1.2) * a).sum())
    assert result.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5)
    unclipped = -sum(float((np.exp(lp - o) * a).sum()) for lp, o, a in zip(base_logprobs, old, adv))
    assert not math.isclose(expected, unclipped, rel_tol=1e-3)
    custom = model.forward_backward(
        data(logprobs=old, advantages=adv),
        "ppo",
        {"clip_low_threshold": 0.5, "clip_high_threshold": 2.0},
        forward_only=True,
    )
    assert custom.metrics["loss:sum"] == pytest.approx(unclipped, rel=1e-5)


def test_gspo_clips_the_sequence_ratio(model, base_logprobs):
    # Token log-ratios whose mean over the masked tokens puts the first sequence's ratio above
    # 1.2 (clipped where its advantage is positive) and leaves the second's inside the bounds.
    shifts = [np.array([-0.6, -0.4, 2.0, 0.1]), np.array([0.05, -0.05])]
    old = [lp + s for lp, s in zip(base_logprobs, shifts)]
    adv = [np.array([1.0, -1.0, 1.0, 0.5]), np.array([1.0, -1.0])]
    mask = [np.array([1.0, 1.0, 0.0, 1.0]), np.array([1.0, 1.0])]  # the 2.0 shift is left out
    result = model.forward_backward(
        data(logprobs=old, advantages=adv, sequence_ratio_mask=mask), "gspo", {}, forward_only=True
    )
    expected = 0.0
    for lp, o, a, m in zip(base_logprobs, old, adv, mask):
        s = np.exp((lp - o)[m != 0].mean())  # every token carries the sequence's ratio
        expected -= float(np.minimum(s * a, np.clip(s, 0.8, 1.2) * a).sum())
    assert result.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5)
    assert np.exp(0.5 - 0.1 / 3) > 1.2  # the first sequence's ratio is clipped: a real test
    # Without the mask every token counts, which moves the first sequence's ratio.
    unmasked = model.forward_backward(data(logprobs=old, advantages=adv), "gspo", {}, forward_only=True)
    assert not math.isclose(unmasked.metrics["loss:sum"], expected, rel_tol=1e-3)
    # A mask of the wrong length is a 400 naming it, before the worker sees it.
    bad = data(logprobs=old, advantages=adv, sequence_ratio_mask=[np.ones(2), np.ones(2)])[0]
    with pytest.raises(InvalidRequest, match="sequence_ratio_mask"):
        check_datum(0, bad, "gspo")


def test_cispo_and_dro(model, base_logprobs):
    old = [lp + 0.1 for lp in base_logprobs]
    adv = [np.array([1.0, -1.0, 0.5, 2.0]), np.array([-0.5, 1.5])]
    cispo = model.forward_backward(data(logprobs=old, advantages=adv), "cispo", {}, forward_only=True)
    expected = -sum(
        float((np.clip(np.exp(lp - o), 0.8, 1.2) * lp * a).sum()) for lp, o, a in zip(base_logprobs, old, adv)
    )
    assert cispo.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5)
    dro = model.forward_backward(data(logprobs=old, advantages=adv), "dro", {"beta": 0.5}, forward_only=True)
    expected = -sum(float((lp * a - 0.25 * (lp - o) ** 2).sum()) for lp, o, a in zip(base_logprobs, old, adv))
    assert dro.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(InvalidRequest, match="beta"):
        model.forward_backward(data(logprobs=old, advantages=adv), "dro", {}, forward_only=True)


def test_gradients_add_up_until_the_optimizer_step(tiny):
    """Two forward_backward calls then one step equal one call on both halves (Tinker's
    accumulate-then-step contract), with torch's AdamW doing the step."""

    def run(batches):
        m = PrimitiveModel(tiny[1], "polytune-tiny", LoraSettings(rank=4, seed=1), device="cpu")
        for batch in batches:
            m.forward_backward(batch, "cross_entropy", {})
        m.optim_step(AdamSettings(learning_rate=1e-2))
        return m.forward_backward(data(), "cross_entropy", {}, forward_only=True).metrics["loss:sum"]

    rows = data()
    assert run([rows[:1], rows[1:]]) == pytest.approx(run([rows]), rel=1e-5)


def test_lora_targets_follow_the_flags(tiny):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny[1])
    assert set(lora_targets(base, LoraSettings(train_mlp=False, train_unembed=False))) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
    }
    assert set(lora_targets(base, LoraSettings(train_attn=False, train_unembed=False))) == {
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert lora_targets(base, LoraSettings(train_attn=False, train_mlp=False)) == ["lm_head"]
    with pytest.raises(InvalidRequest):
        lora_targets(base, LoraSettings(train_attn=False, train_mlp=False, train_unembed=False))
