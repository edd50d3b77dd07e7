"""How a job's rows reach its recipe: the text methods read their files through the tokenizer
that validated them and train with trl (train.py); the image methods read image/caption lines and
train with the diffusers loop (image/loop.py). Each recipe (recipes/__init__.py) names its own."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from polytune.config import Settings, cpu_threads
from polytune.domain.spec import JobSpec
from polytune.store.blobs import BlobStore
from polytune.training.reporter import Reporter

if TYPE_CHECKING:
    from polytune.catalog.models import CatalogEntry
    from polytune.training.callback import ResumeEvery
    from polytune.training.train import TrainingResult


def fit_text(
    blobs: BlobStore,
    settings: Settings,
    spec: JobSpec,
    entry: CatalogEntry,
    model_path: Path | str,
    work: Path,
    reporter: Reporter,
    *,
    resume_from: Path | None,
    every: ResumeEvery,
) -> TrainingResult:
    from polytune.data.tokens import TokenCounter, load_tokenizer, measure_file
    from polytune.training.train import run_training

    # The rows the job's validation counted, with the same long-example policy applied
    # by the same code and tokenizer, so training drops exactly the lines it reported.
    counter = TokenCounter(load_tokenizer(model_path, entry.chat_template, **entry.load_options))

    def rows_of(fid: str, param: str) -> list[dict]:
        rows: list[dict] = []
        measure_file(
            blobs.get_file(f"files/{fid}", work / "data" / fid),
            counter,
            method=spec.method.type,
            context_length=spec.hyperparameters.context_length or entry.max_length,
            long_examples=spec.hyperparameters.long_examples,
            param=param,
            keep=rows,
        )
        return rows

    train_rows = [row for fid in spec.training_files for row in rows_of(fid, "training_file")]
    val_rows = rows_of(spec.validation_file, "validation_file") if spec.validation_file else None
    return run_training(
        spec,
        entry,
        model_path,
        train_rows,
        val_rows,
        work,
        reporter,
        resume_from=resume_from,
        resume_every=every,
        settings=settings,
    )


def fit_images(
    blobs: BlobStore,
    settings: Settings,
    spec: JobSpec,
    entry: CatalogEntry,
    model_path: Path | str,
    work: Path,
    reporter: Reporter,
    *,
    resume_from: Path | None,
    every: ResumeEvery,
) -> TrainingResult:
    """The image recipe: rows are image/caption lines (validated when the job was queued)."""
    from polytune.data.jsonl import iter_jsonl
    from polytune.training.image.loop import Stopped, run_image_training
    from polytune.training.train import TrainingResult, TrainingStopped

    rows = []
    for fid in spec.training_files:
        rows.extend(obj for _, obj in iter_jsonl(blobs.get_file(f"files/{fid}", work / "data" / fid)))
    threads = cpu_threads(settings.train_threads)
    try:
        result = run_image_training(
            spec, entry, model_path, rows, work, reporter, resume_from=resume_from, resume_every=every, threads=threads
        )
    except Stopped as stop:
        raise TrainingStopped(stop.reason, stop.step) from None
    return TrainingResult(
        final_dir=result.final_dir, metrics_rows=result.metrics_rows, trained_tokens=0, steps=result.steps
    )
