"""A job's results file: one CSV row per step, read back from its metrics events in the store."""

from __future__ import annotations

import csv
import io

from polytune.store import worker as worker_store
from polytune.store.db import Database
from polytune.training.reporter import PREFERENCE_METRICS

RESULT_COLUMNS = ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy", "learning_rate"]
# Columns after those, present when a job logged them: a dpo job's implicit rewards; a
# reinforcement job's rewards (and one sub_reward_<grader> column per sub-grader).
REWARD_COLUMNS = [
    "reward",
    "reward_std",
    "reward_min",
    "reward_max",
    "kl",
    "completion_length",
    "grader_errors",
    "valid_reward",
]
EXTRA_RESULT_COLUMNS = [*PREFERENCE_METRICS, *(f"valid_{k}" for k in PREFERENCE_METRICS), *REWARD_COLUMNS]


def metrics_rows(db: Database, job_id: str) -> list[dict]:
    """One row per step from the job's metrics events: the store, not the worker's memory,
    so steps trained before a crash or a pause are in the results of the run that finishes.
    A step trained twice (after resuming from an earlier checkpoint) keeps its latest values."""
    rows: dict[int, dict] = {}
    for data in worker_store.metrics_events(db, job_id):
        step = int(data["step"])
        row = rows.setdefault(step, {"step": step})
        if "train_loss" in data:
            row.update(
                train_loss=data["train_loss"],
                train_accuracy=data.get("train_mean_token_accuracy"),
                learning_rate=data.get("learning_rate"),
            )
        if "valid_loss" in data:
            row.update(valid_loss=data["valid_loss"], valid_mean_token_accuracy=data.get("valid_mean_token_accuracy"))
        row.update({k: v for k, v in data.items() if k in EXTRA_RESULT_COLUMNS or k.startswith("sub_reward_")})
    return [rows[k] for k in sorted(rows)]


def results_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    present = {k for r in rows for k in r}
    columns = (
        RESULT_COLUMNS
        + [k for k in EXTRA_RESULT_COLUMNS if k in present]
        + sorted(k for k in present if k.startswith("sub_reward_"))
    )
    w = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return out.getvalue().encode()
