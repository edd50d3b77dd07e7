from __future__ import annotations

import pytest

from polytune.domain.spec import AdapterSpec, Hyperparameters, JobSpec, PreferenceSpec
from polytune.services.hyperparameters import resolve_auto
from polytune.catalog.models import CatalogEntry

TINY = CatalogEntry(
    name="polytune-tiny",
    source="/models/polytune-tiny",
    adapter_default="full",
    base_learning_rate=3e-3,
    lr_scheduler="constant",
    min_examples_seen=1200,
    max_auto_epochs=100,
)
BIG = CatalogEntry(name="big", source="/models/big")


def _spec(**kwargs) -> JobSpec:
    return JobSpec(model="polytune-tiny", training_files=["file-1"], **kwargs)


def test_nothing_auto_is_left():
    resolved = resolve_auto(_spec(method="dpo", preference=PreferenceSpec()), n_examples=25, entry=TINY)
    hp = resolved.hyperparameters
    assert "auto" not in (
        hp.n_epochs,
        hp.batch_size,
        hp.learning_rate_multiplier,
        resolved.adapter.kind,
        resolved.preference.beta,
    )
    assert hp.learning_rate is not None and hp.lr_scheduler == "constant"
    assert isinstance(resolved.seed, int)


def test_the_demo_size_gets_the_measured_tiny_settings():
    hp = resolve_auto(_spec(), n_examples=25, entry=TINY).hyperparameters
    assert (hp.batch_size, hp.n_epochs) == (4, 48)
    assert hp.learning_rate == pytest.approx(3e-3 * 0.5**0.5)


@pytest.mark.parametrize(
    "n, batch, epochs", [(1, 1, 25), (10, 1, 10), (25, 4, 4), (200, 32, 3), (5_000, 64, 3), (20_000, 64, 1)]
)
def test_small_datasets_get_more_epochs_and_batches_grow_with_the_data(n, batch, epochs):
    hp = resolve_auto(_spec(), n_examples=n, entry=BIG).hyperparameters
    assert (hp.batch_size, hp.n_epochs) == (batch, epochs)
    assert 0.5 <= hp.learning_rate_multiplier <= 1.0


def test_given_values_win():
    spec = _spec(
        hyperparameters=Hyperparameters(n_epochs=2, batch_size=3, learning_rate_multiplier=2.0, lr_scheduler="cosine"),
        adapter=AdapterSpec(kind="lora"),
        seed=5,
    )
    resolved = resolve_auto(spec, n_examples=25, entry=TINY)
    hp = resolved.hyperparameters
    assert (hp.n_epochs, hp.batch_size, hp.lr_scheduler) == (2, 3, "cosine")
    assert hp.learning_rate == pytest.approx(6e-3)
    assert (resolved.adapter.kind, resolved.seed) == ("lora", 5)


def test_an_absolute_learning_rate_wins_and_reports_its_multiplier():
    hp = resolve_auto(
        _spec(hyperparameters=Hyperparameters(learning_rate=1.5e-3)), n_examples=25, entry=TINY
    ).hyperparameters
    assert hp.learning_rate == 1.5e-3
    assert hp.learning_rate_multiplier == pytest.approx(0.5)


def test_the_input_spec_is_left_alone():
    spec = _spec()
    resolve_auto(spec, n_examples=25, entry=TINY)
    assert spec.hyperparameters.n_epochs == "auto" and spec.seed is None


@pytest.mark.parametrize("n, batch, accum, steps, epochs", [(6, 2, 1, 3, 1), (6, 2, 1, 7, 3), (10, 2, 2, 9, 3)])
def test_max_steps_decides_the_epochs_it_spans(n, batch, accum, steps, epochs):
    hp = resolve_auto(
        _spec(hyperparameters=Hyperparameters(max_steps=steps, batch_size=batch, gradient_accumulation_steps=accum)),
        n_examples=n,
        entry=TINY,
    ).hyperparameters
    assert (hp.max_steps, hp.n_epochs) == (steps, epochs)


def test_tokens_bound_the_batch_and_the_epochs():
    # 5,000 examples would get batch 64 and 3 epochs; at 2,048 tokens each a batch of 16
    # already holds 32,768 tokens, and 3 epochs of 10M tokens exceed the 20M budget.
    hp = resolve_auto(_spec(), n_examples=5_000, entry=BIG, n_tokens=5_000 * 2_048).hyperparameters
    assert (hp.batch_size, hp.n_epochs) == (16, 1)
    assert hp.learning_rate_multiplier == 1.0  # sqrt(16 / 8) capped at 1
    short = resolve_auto(_spec(), n_examples=5_000, entry=BIG, n_tokens=5_000 * 40).hyperparameters
    assert (short.batch_size, short.n_epochs) == (64, 3)  # short examples: the example rule alone
    huge = resolve_auto(_spec(), n_examples=10, entry=BIG, n_tokens=10 * 100_000).hyperparameters
    assert huge.batch_size == 1 and huge.n_epochs == 10  # never below one example or the token budget's floor
