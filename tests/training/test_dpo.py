"""The dpo recipe on polytune-tiny: it learns which answer is preferred, each loss type's
first-step loss equals the formula computed by hand from the policy's and the reference's
log-probabilities, and the reward metrics reach the reporter."""

from __future__ import annotations

import math

import pytest
import torch

from polytune.data.preference import preference_to_canonical
from polytune.domain.spec import DpoMethod, PreferenceSpec
from polytune.training.recipes import get_recipe
from polytune.training.recipes.dpo import build_dpo_trainer
from polytune.training.recipes.kto_pair import kto_pair_loss
from polytune.training.reporter import PREFERENCE_METRICS
from polytune.training.train import TrainingStopped, run_training
from tests.helpers import preference_rows
from tests.training.support import RecordingReporter, resolved_spec

BETA = 0.5


def _pairs(n: int) -> list[dict]:
    return [preference_to_canonical(r) for r in preference_rows(n)]


def _dpo_spec(loss_type: str = "sigmoid", *, beta: float = BETA, **kwargs):
    spec = resolved_spec(**kwargs)
    return spec.model_copy(update={"method": DpoMethod(preference=PreferenceSpec(beta=beta, loss_type=loss_type))})


def test_the_recipe_is_registered_for_preference_data():
    recipe = get_recipe("dpo")
    assert recipe.build_trainer is build_dpo_trainer and recipe.formats == ("preference",)


@pytest.mark.slow
def test_a_dpo_job_learns_to_prefer_the_chosen_answers(tiny, tmp_path):
    """rewards/accuracies on the training pairs: 0 at step 1 (the policy is the reference,
    so every pair ties) and at least 0.9 after 30 steps, measured by evaluating on the
    training pairs themselves (given as the validation set, evaluated once at the end)."""
    entry, model_path = tiny
    pairs = _pairs(12)
    spec = _dpo_spec(
        beta=0.1, n_epochs=10, batch_size=4, learning_rate=3e-3, max_steps=30, eval_interval=30, n_checkpoints=1
    )
    reporter = RecordingReporter()
    result = run_training(spec, entry, model_path, pairs, pairs, tmp_path, reporter)

    train = [m for _, m in reporter.metrics_calls if "train_loss" in m]
    valid = [m for _, m in reporter.metrics_calls if "valid_loss" in m]
    assert len(train) == 30 and len(valid) == 1
    assert all(set(PREFERENCE_METRICS) <= set(m) for m in train)
    assert train[0]["rewards/accuracies"] == 0.0 and train[0]["rewards/margins"] == 0.0
    assert train[0]["train_loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert valid[0]["valid_rewards/accuracies"] >= 0.9
    assert valid[0]["valid_rewards/margins"] > 0
    assert valid[0]["valid_rewards/chosen"] > valid[0]["valid_rewards/rejected"]
    # Checkpoints and the final model as for supervised jobs.
    assert [step for step, _, _ in reporter.checkpoints] == [30]
    assert (result.final_dir / "config.json").is_file()


def test_a_full_dpo_job_from_a_checkpoint_is_referenced_to_the_checkpoint(tiny, tmp_path):
    """A full fine-tune from a LoRA checkpoint starts from the adapter merged into the base, in
    memory: its reference must be that merged model, not the base its config still names. At
    step 1 the policy is the reference, so every pair ties: loss log 2, margins 0 (a base-model
    reference gives neither, the adapter having moved the model)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from polytune.domain.spec import FROM_CHECKPOINT

    entry, model_path = tiny
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_path)
    # init_lora_weights=False: a random B as well, so the adapter really changes the model.
    adapter = get_peft_model(base, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter.save_pretrained(tmp_path / "start")
    spec = _dpo_spec(n_epochs=1, batch_size=4, learning_rate=1e-3, max_steps=1, n_checkpoints=0)
    spec = spec.model_copy(
        update={"extras": {FROM_CHECKPOINT: {"model": "ft:start", "local_dir": str(tmp_path / "start")}}}
    )
    reporter = RecordingReporter()
    run_training(spec, entry, model_path, _pairs(4), None, tmp_path / "out", reporter)

    (first,) = [m for _, m in reporter.metrics_calls if "train_loss" in m]
    assert first["train_loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert first["rewards/margins"] == pytest.approx(0.0, abs=1e-5)


def test_a_cancel_stops_a_dpo_job_as_it_stops_a_supervised_one(tiny, tmp_path):
    entry, model_path = tiny
    spec = _dpo_spec(n_epochs=5, batch_size=2, learning_rate=1e-3)
    reporter = RecordingReporter(stop_after=2)
    with pytest.raises(TrainingStopped) as stopped:
        run_training(spec, entry, model_path, _pairs(6), None, tmp_path, reporter)
    assert stopped.value.reason == "cancel" and stopped.value.step == 3
    assert not reporter.checkpoints and not (tmp_path / "final").exists()


def test_a_paused_dpo_job_resumes_to_the_uninterrupted_result(tiny, tmp_path):
    entry, model_path = tiny
    # 6 pairs, batch 2: 3 steps an epoch, 6 in all; pausing after step 4 is mid-epoch 2.
    spec = _dpo_spec(n_epochs=2, batch_size=2, learning_rate=1e-3, n_checkpoints=0, seed=11)
    pairs = _pairs(6)
    whole = run_training(spec, entry, model_path, pairs, None, tmp_path / "whole", RecordingReporter())
    first = RecordingReporter(stop_after=3, stop_with="pause")
    with pytest.raises(TrainingStopped):
        run_training(spec, entry, model_path, pairs, None, tmp_path / "first", first)
    ((step, folder),) = first.resume_checkpoints
    second = RecordingReporter()
    resumed = run_training(spec, entry, model_path, pairs, None, tmp_path / "second", second, resume_from=folder)
    assert step == 4 and resumed.steps == whole.steps == 6
    assert [s for s, _ in second.metrics_calls] == [5, 6]
    assert second.metrics_calls[-1][1]["train_loss"] == pytest.approx(whole.metrics_rows[-1]["train_loss"], abs=1e-5)
    assert second.metrics_calls[-1][1]["rewards/margins"] == pytest.approx(
        whole.metrics_rows[-1]["rewards/margins"], abs=1e-5
    )


# -- the loss formulas, by hand ----------------------------------------------------------------
def _completion_logps(model, prompt_ids: list[int], completion_ids: list[int]) -> float:
    """log π(completion | prompt): a plain forward pass, log-softmax, summed over the completion."""
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    targets = ids[0, 1:]
    per_token = logprobs[torch.arange(len(targets)), targets]
    return float(per_token[len(prompt_ids) - 1 :].sum())


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _hand_loss(
    loss_type: str,
    chosen: list[float],
    rejected: list[float],
    chosen_len: list[int],
    rejected_len: list[int],
    beta: float,
) -> float:
    """Each loss type's formula (docs/methods.md) in plain arithmetic over the pairs'
    log-ratios c_i and r_i (policy minus reference log-probabilities)."""
    n = len(chosen)
    if loss_type == "sigmoid":
        return sum(-math.log(_sigmoid(beta * (c - r))) for c, r in zip(chosen, rejected)) / n
    if loss_type == "hinge":
        return sum(max(0.0, 1 - beta * (c - r)) for c, r in zip(chosen, rejected)) / n
    if loss_type == "ipo":  # per-token averages, as trl computes IPO
        return (
            sum(
                (c / lc - r / lr - 1 / (2 * beta)) ** 2
                for c, r, lc, lr in zip(chosen, rejected, chosen_len, rejected_len)
            )
            / n
        )
    if loss_type == "kto_pair":
        kl_c, kl_r = max(0.0, sum(chosen) / n), max(0.0, sum(rejected) / n)
        halves = [1 - _sigmoid(beta * (c - kl_r)) for c in chosen] + [1 - _sigmoid(beta * (kl_c - r)) for r in rejected]
        return sum(halves) / (2 * n)
    raise AssertionError(loss_type)


def _perturb(params, seed: int) -> None:
    """Move the policy and the reference apart, so the log-ratios are not all zero."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)


@pytest.mark.parametrize(
    "loss_type,kind",
    [("sigmoid", "full"), ("hinge", "full"), ("ipo", "full"), ("kto_pair", "full"), ("sigmoid", "lora")],
)
def test_first_step_loss_equals_the_hand_computed_value(tiny, tmp_path, loss_type, kind):
    entry, model_path = tiny
    n = 4
    # One step over one batch holding every pair: the step's loss covers exactly these pairs.
    spec = _dpo_spec(loss_type, n_epochs=1, batch_size=n, learning_rate=1e-3, kind=kind)
    trainer = build_dpo_trainer(spec, entry, model_path, _pairs(n), None, tmp_path, [])
    policy = trainer.model
    if kind == "lora":
        # The reference is the policy with its adapter disabled; the adapter starts as a no-op.
        assert trainer.ref_model is None
        _perturb([p for name, p in policy.named_parameters() if "lora_B" in name], seed=1)
        reference = policy.get_base_model()
    else:
        reference = trainer.ref_model
        assert reference is not None and reference is not policy
        # Noise on the reference makes it worse than the policy, so the mean log-ratios are
        # positive and kto_pair's KL terms (floored at 0) take part.
        _perturb(reference.parameters(), seed=1)

    chosen, rejected, chosen_len, rejected_len = [], [], [], []
    for row in trainer.train_dataset:
        p = row["prompt_ids"]
        for ids, logratios, lengths in (
            (row["chosen_ids"], chosen, chosen_len),
            (row["rejected_ids"], rejected, rejected_len),
        ):
            if kind == "lora":
                with policy.disable_adapter():
                    ref = _completion_logps(reference, p, ids)
            else:
                ref = _completion_logps(reference, p, ids)
            logratios.append(_completion_logps(policy, p, ids) - ref)
            lengths.append(len(ids))
    assert any(abs(c - r) > 1e-3 for c, r in zip(chosen, rejected))  # a real test of the formula
    if kind == "full":
        assert sum(chosen) > 0 and sum(rejected) > 0 and sum(chosen) != sum(rejected)
    expected = _hand_loss(loss_type, chosen, rejected, chosen_len, rejected_len, BETA)

    trainer.args.max_steps = 1
    trainer.train()
    logged = [log for log in trainer.state.log_history if "loss" in log][0]
    assert logged["loss"] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    # The rewards trl reports are β times the same log-ratios, whichever loss trained.
    assert logged["rewards/chosen"] == pytest.approx(BETA * sum(chosen) / n, rel=1e-4, abs=1e-6)
    assert logged["rewards/margins"] == pytest.approx(BETA * (sum(chosen) - sum(rejected)) / n, rel=1e-4, abs=1e-6)


def test_kto_pair_loss_on_known_log_ratios():
    # c = (1.0, -0.5), r = (0.2, 0.4), β = 0.5: KL_c = max(0, 0.25), KL_r = max(0, 0.3).
    chosen, rejected = torch.tensor([1.0, -0.5]), torch.tensor([0.2, 0.4])
    halves = [
        1 - _sigmoid(0.5 * (1.0 - 0.3)),
        1 - _sigmoid(0.5 * (-0.5 - 0.3)),
        1 - _sigmoid(0.5 * (0.25 - 0.2)),
        1 - _sigmoid(0.5 * (0.25 - 0.4)),
    ]
    assert float(kto_pair_loss(chosen, rejected, 0.5)) == pytest.approx(sum(halves) / 4, rel=1e-6)
    # Negative mean log-ratios floor the KL terms at 0.
    got = float(kto_pair_loss(torch.tensor([-1.0]), torch.tensor([-2.0]), 1.0))
    assert got == pytest.approx(((1 - _sigmoid(-1.0)) + (1 - _sigmoid(2.0))) / 2, rel=1e-6)


def test_unresolved_preference_is_refused(tiny, tmp_path):
    entry, model_path = tiny
    spec = _dpo_spec(n_epochs=1).model_copy(update={"method": DpoMethod(preference=PreferenceSpec())})  # beta "auto"
    with pytest.raises(ValueError, match="preference"):
        build_dpo_trainer(spec, entry, model_path, _pairs(2), None, tmp_path, [])
