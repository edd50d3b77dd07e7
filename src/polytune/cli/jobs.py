"""`polytune jobs create|list|show|events|checkpoints|follow|cancel|pause|resume`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from polytune.cli import follow as following
from polytune.cli.api import ApiKey, BaseUrl, Json, client, out, print_json, requesting, show, show_one, when

app = typer.Typer(help="fine-tuning jobs", no_args_is_help=True)

JobId = Annotated[str, typer.Argument(help="a job id (ftjob-…)")]
COLUMNS = [
    ("id", lambda j: j.id),
    ("status", lambda j: following.status_of(j)),
    ("model", lambda j: j.model),
    ("method", lambda j: (j.model_extra or {}).get("polytune_method") or (j.method.type if j.method else "supervised")),
    ("created", lambda j: when(j.created_at)),
    ("duration", lambda j: following.duration(j)),
    ("fine-tuned model", lambda j: j.fine_tuned_model),
]


def _auto(value: str | None) -> int | float | str | None:
    """A hyperparameter option: a number, or "auto"."""
    if value is None or value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            raise typer.BadParameter(f"'{value}' is neither a number nor 'auto'") from None


@app.command()
def create(
    model: Annotated[str, typer.Option(help="a base model or a fine-tuned model to continue")],
    training_file: Annotated[str, typer.Option("--training-file", "-t", help="a file id")],
    validation_file: Annotated[str | None, typer.Option("--validation-file", "-v")] = None,
    method: Annotated[str, typer.Option(help="supervised, dpo or reinforcement")] = "supervised",
    n_epochs: Annotated[str | None, typer.Option(help="a number or auto")] = None,
    batch_size: Annotated[str | None, typer.Option(help="a number or auto")] = None,
    learning_rate_multiplier: Annotated[str | None, typer.Option(help="a number or auto")] = None,
    hyperparameter: Annotated[
        list[str] | None,
        typer.Option("--hp", help="any other hyperparameter as NAME=JSON, e.g. --hp lora=true --hp warmup_ratio=0.1"),
    ] = None,
    suffix: Annotated[str | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    metadata: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable")] = None,
    wandb_project: Annotated[
        str | None, typer.Option(help="log the run to this W&B project (with the organization's W&B key)")
    ] = None,
    wandb_name: Annotated[str | None, typer.Option()] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="then follow it as `jobs follow` does")] = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: Json = False,
) -> None:
    """Create a fine-tuning job and print its id."""
    hp: dict[str, Any] = {
        k: v
        for k, v in (
            ("n_epochs", _auto(n_epochs)),
            ("batch_size", _auto(batch_size)),
            ("learning_rate_multiplier", _auto(learning_rate_multiplier)),
        )
        if v is not None
    }
    for item in hyperparameter or []:
        name, value = _pair(item, "--hp")
        try:
            hp[name] = json.loads(value)
        except json.JSONDecodeError:
            hp[name] = value
    body: dict[str, Any] = {
        "model": model,
        "training_file": training_file,
        "method": {"type": method, **({method: {"hyperparameters": hp}} if hp else {})},
    }
    for key, value in (("validation_file", validation_file), ("suffix", suffix), ("seed", seed)):
        if value is not None:
            body[key] = value
    if metadata:
        body["metadata"] = dict(_pair(m, "--metadata") for m in metadata)
    if wandb_project:
        body["integrations"] = [
            {"type": "wandb", "wandb": {"project": wandb_project, **({"name": wandb_name} if wandb_name else {})}}
        ]
    api = client(base_url, api_key)
    with requesting():
        job = api.fine_tuning.jobs.create(**body)
    if json_out:
        print_json(job)
    else:
        out.print(f"Created {job.id} ({job.status})")
    if follow:
        raise typer.Exit(following.follow(api, job.id))


def _pair(item: str, option: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise typer.BadParameter(f"'{item}' is not NAME=VALUE", param_hint=option)
    return name, value


@app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help="only jobs in this status")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 20,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: Json = False,
) -> None:
    """List jobs, newest first."""
    api = client(base_url, api_key)
    with requesting():
        rows = []
        # Filtering by status is the CLI's: page on until `limit` jobs match.
        for job in api.fine_tuning.jobs.list(limit=min(100, limit) if not status else 100):
            if status is None or following.status_of(job) == status:
                rows.append(job)
            if len(rows) >= limit:
                break
    show(rows, COLUMNS, json_out=json_out)


@app.command("show")
def show_(job_id: JobId, base_url: BaseUrl = None, api_key: ApiKey = None, json_out: Json = False) -> None:
    """A job's details: status, progress, hyperparameters, result files, error."""
    with requesting():
        job = client(base_url, api_key).fine_tuning.jobs.retrieve(job_id)
    extra = job.model_extra or {}
    show_one(
        job,
        [
            *COLUMNS,
            ("progress", lambda j: f"{extra.get('trained_steps') or 0}/{extra.get('total_steps') or '?'} steps"),
            ("hyperparameters", lambda j: j.hyperparameters.to_dict()),
            ("training file", lambda j: j.training_file),
            ("validation file", lambda j: j.validation_file),
            ("trained tokens", lambda j: j.trained_tokens),
            ("result files", lambda j: j.result_files),
            ("integrations", lambda j: [i.to_dict() for i in j.integrations or []]),
            ("error", lambda j: j.error.to_dict() if j.error and j.error.message else None),
        ],
        json_out=json_out,
    )


@app.command()
def events(
    job_id: JobId,
    limit: Annotated[int, typer.Option(help="the newest this many")] = 50,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: Json = False,
) -> None:
    """A job's events, oldest first."""
    with requesting():
        rows = list(reversed(client(base_url, api_key).fine_tuning.jobs.list_events(job_id, limit=limit).data))
    show(
        rows,
        [("time", lambda e: when(e.created_at)), ("level", lambda e: e.level), ("message", lambda e: e.message)],
        json_out=json_out,
    )


@app.command()
def checkpoints(job_id: JobId, base_url: BaseUrl = None, api_key: ApiKey = None, json_out: Json = False) -> None:
    """A job's checkpoints, oldest first: step, train loss, and the model id to chat with or
    download (`polytune models download ID`)."""
    with requesting():
        rows = sorted(
            client(base_url, api_key).fine_tuning.jobs.checkpoints.list(job_id, limit=100).data,
            key=lambda c: c.step_number,
        )
    show(
        rows,
        [
            ("step", lambda c: c.step_number),
            ("train loss", lambda c: _loss(c.metrics.train_loss if c.metrics else None)),
            ("model", lambda c: c.fine_tuned_model_checkpoint),
        ],
        json_out=json_out,
    )


def _loss(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@app.command()
def follow(
    job_id: JobId,
    interval: Annotated[float, typer.Option(help="seconds between polls")] = 1.0,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Follow a job: a live progress bar (step/total, epoch, loss, tokens/s, ETA) and its events as
    they come. Exits with the job's outcome: 0 succeeded, 1 failed, 3 cancelled, 4 paused."""
    raise typer.Exit(following.follow(client(base_url, api_key), job_id, interval=interval))


def _change(verb: str, job_id: str, base_url: str | None, api_key: str | None, json_out: bool) -> None:
    with requesting():
        job = getattr(client(base_url, api_key).fine_tuning.jobs, verb)(job_id)
    if json_out:
        print_json(job)
    else:
        out.print(f"{job.id}: {following.status_of(job)}")


@app.command()
def cancel(job_id: JobId, base_url: BaseUrl = None, api_key: ApiKey = None, json_out: Json = False) -> None:
    """Cancel a job (at once; a running worker stops at its next step)."""
    _change("cancel", job_id, base_url, api_key, json_out)


@app.command()
def pause(job_id: JobId, base_url: BaseUrl = None, api_key: ApiKey = None, json_out: Json = False) -> None:
    """Pause a job: it saves a checkpoint at its next step and frees its worker."""
    _change("pause", job_id, base_url, api_key, json_out)


@app.command()
def resume(job_id: JobId, base_url: BaseUrl = None, api_key: ApiKey = None, json_out: Json = False) -> None:
    """Resume a paused job from its checkpoint."""
    _change("resume", job_id, base_url, api_key, json_out)
