"""Helpers the training tests share: a recording Reporter and small resolved specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polytune
from polytune.domain.spec import AdapterSpec, Hyperparameters, JobSpec

DEMO_FILE = Path(polytune.__file__).parent / "examples" / "qa.jsonl"


class RecordingReporter:
    """A Reporter that keeps every call; stop_request() answers `stop_with` after `stop_after`
    steps."""

    def __init__(self, stop_after: int | None = None, stop_with: str = "cancel"):
        self.stop_after = stop_after
        self.stop_with = stop_with
        self.resume_checkpoints: list[tuple[int, Path]] = []
        self.events: list[str] = []
        self.event_data: list[dict[str, Any] | None] = []
        self.metrics_calls: list[tuple[int, dict[str, float]]] = []
        self.progress_calls: list[dict[str, Any]] = []
        self.checkpoints: list[tuple[int, Path, dict[str, float]]] = []
        self.sample_calls: list[tuple[int, list[Path], list[str]]] = []
        self.stop_checks = 0

    def event(self, message: str, *, level: str = "info", data: dict[str, Any] | None = None) -> None:
        self.events.append(message)
        self.event_data.append(data)

    def metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.metrics_calls.append((step, metrics))

    def progress(
        self, *, trained_steps: int, total_steps: int, trained_tokens: int, estimated_finish: int | None
    ) -> None:
        self.progress_calls.append(
            dict(
                trained_steps=trained_steps,
                total_steps=total_steps,
                trained_tokens=trained_tokens,
                estimated_finish=estimated_finish,
            )
        )

    def checkpoint(self, step: int, local_dir: Path, metrics: dict[str, float]) -> str:
        self.checkpoints.append((step, local_dir, metrics))
        return f"ckpt-{step}"

    def samples(self, step: int, files: list[Path], prompts: list[str], *, seconds: float) -> None:
        self.sample_calls.append((step, list(files), list(prompts)))

    def resume_checkpoint(self, step: int, trainer_dir: Path) -> None:
        self.resume_checkpoints.append((step, trainer_dir))

    def stop_request(self) -> str | None:
        self.stop_checks += 1
        if self.stop_after is not None and self.stop_checks > self.stop_after:
            return self.stop_with
        return None


def resolved_spec(
    *,
    n_epochs: int,
    batch_size: int = 4,
    learning_rate: float = 2e-3,
    kind: str = "full",
    seed: int = 7,
    **hyperparameters: Any,
) -> JobSpec:
    return JobSpec(
        model="polytune-tiny",
        training_files=["file-test"],
        seed=seed,
        adapter=AdapterSpec(kind=kind),
        hyperparameters=Hyperparameters(
            n_epochs=n_epochs,
            batch_size=batch_size,
            learning_rate_multiplier=1.0,
            learning_rate=learning_rate,
            **hyperparameters,
        ),
    )
