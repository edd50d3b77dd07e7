"""Did a supervised job fit its training data? A job can succeed and still give a model that
answers nonsense: too few epochs, or too low a learning rate, for what it had to learn. Said
in a last warning event, with what to try, instead of leaving the user to guess.

The test is what greedy decoding (temperature 0) needs to give the training answers back: the
right token must be the most likely one. TRL logs exactly that, the share of answer tokens the
model predicts (mean token accuracy); below one half, most answer tokens come out wrong.
Where no accuracy was logged, the loss stands in: a mean loss above ln 2 means the right token
has, on (geometric) average, less than even odds. Both are read over the last epoch's steps,
not the last step alone, which is one batch's noise."""

from __future__ import annotations

import math
from typing import Any

from polytune.domain.spec import JobSpec

GREEDY_ACCURACY = 0.5
GREEDY_LOSS = math.log(2)


def underfit_note(rows: list[dict[str, Any]], spec: JobSpec) -> tuple[str, dict[str, Any]] | None:
    """(message, data) for the warning event when the job did not fit; None when it did, or when
    the test does not apply (not a supervised text job, no losses logged)."""
    if spec.method.type != "supervised":
        return None
    train = [r for r in rows if r.get("train_loss") is not None]
    if not train:
        return None
    hp = spec.hyperparameters
    n_epochs = hp.n_epochs if isinstance(hp.n_epochs, int) and hp.n_epochs > 0 else 1
    last = train[-max(1, len(train) // n_epochs) :]
    loss = sum(r["train_loss"] for r in last) / len(last)
    accuracies = [r["train_accuracy"] for r in last if r.get("train_accuracy") is not None]
    accuracy = sum(accuracies) / len(accuracies) if accuracies else None
    fitted = accuracy >= GREEDY_ACCURACY if accuracy is not None else loss <= GREEDY_LOSS
    if fitted:
        return None
    first = train[0]["train_loss"]
    measured = (
        f"it predicted {accuracy:.0%} of the answer tokens of its training examples "
        f"(training loss {loss:.3f}, from {first:.3f} at the first step)"
        if accuracy is not None
        else f"its training loss is {loss:.3f} (from {first:.3f} at the first step), above ln 2 = 0.693"
    )
    multiplier = hp.learning_rate_multiplier
    # Both are resolved when the job is queued; the multiplier is the knob every dialect has.
    if isinstance(multiplier, (int, float)):
        knob = f"learning_rate_multiplier (was {multiplier:g}" + (
            f", a learning rate of {hp.learning_rate:g})" if hp.learning_rate is not None else ")"
        )
    else:
        knob = f"learning_rate (was {hp.learning_rate:g})" if hp.learning_rate is not None else "learning rate"
    message = (
        f"The model has not fitted its training data: in the last epoch {measured}, so its answers "
        f"at temperature 0 will mostly not follow the examples. Try more epochs (n_epochs was "
        f"{hp.n_epochs}), a higher {knob}, or more examples."
    )
    return message, {
        "train_loss": loss,
        "train_accuracy": accuracy,
        "first_train_loss": first,
        "n_epochs": hp.n_epochs,
        "learning_rate_multiplier": multiplier,
        "learning_rate": hp.learning_rate,
    }
