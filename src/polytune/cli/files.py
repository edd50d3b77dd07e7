"""`polytune files upload|download|list|show|rm`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from polytune.cli.api import ApiKey, BaseUrl, Json, client, err, out, print_json, requesting, show, show_one, when
from polytune.cli.download import fetch

app = typer.Typer(help="training and result files", no_args_is_help=True)

EXIT_FILE_ERROR = 1  # the upload arrived but the file failed validation

FileId = Annotated[str, typer.Argument(help="a file id (file-…)")]
COLUMNS = [
    ("id", lambda f: f.id),
    ("filename", lambda f: f.filename),
    ("purpose", lambda f: f.purpose),
    ("bytes", lambda f: f"{f.bytes:,}"),
    ("status", lambda f: f.status),
    ("created", lambda f: when(f.created_at)),
]


@app.command()
def upload(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    purpose: Annotated[str, typer.Option(help="fine-tune, or any purpose the API accepts")] = "fine-tune",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the file id")] = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: Json = False,
) -> None:
    """Upload a file (streamed) and print its id; the server validates a fine-tune file on arrival.
    Exits 1 when the file fails validation (status `error`), with the reason on stderr."""
    with requesting(), path.open("rb") as f:
        uploaded = client(base_url, api_key).files.create(file=(path.name, f), purpose=purpose)
    failed = uploaded.status == "error"
    if json_out:
        print_json(uploaded)
    elif quiet:
        print(uploaded.id)
    else:
        details = f" ({uploaded.status_details})" if uploaded.status_details and not failed else ""
        out.print(f"Uploaded {path.name}: {uploaded.id}, {uploaded.bytes:,} bytes, {uploaded.status}{details}")
    if failed:
        err.print(f"error: {path.name} failed validation: {uploaded.status_details or 'no details'}")
        raise typer.Exit(EXIT_FILE_ERROR)


@app.command()
def download(
    file_id: FileId,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="where to write it (default: the file's name, here; a folder: in it)"),
    ] = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Download a file's content (a training file, or a job's result file), with a progress bar;
    run it again to resume an interrupted download (it is kept in `<output>.part` until whole)."""
    api = client(base_url, api_key)
    with requesting():
        info = api.files.retrieve(file_id)
    target = output or Path(Path(info.filename).name or file_id)
    if target.is_dir():
        target = target / (Path(info.filename).name or file_id)
    fetch(f"{api.base_url}files/{file_id}/content", api.api_key, target, total=info.bytes)
    out.print(f"Saved {file_id} to {target}")


@app.command("list")
def list_(
    purpose: Annotated[str | None, typer.Option(help="only files with this purpose")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 100,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: Json = False,
) -> None:
    """List files, newest first."""
    kwargs = {"purpose": purpose} if purpose else {}
    with requesting():
        rows = client(base_url, api_key).files.list(limit=limit, **kwargs).data
    show(rows, COLUMNS, json_out=json_out)


@app.command("show")
def show_(file_id: FileId, base_url: BaseUrl = None, api_key: ApiKey = None, json_out: Json = False) -> None:
    """A file's details, with its validation report (examples, format, problems) when it has one."""
    with requesting():
        f = client(base_url, api_key).files.retrieve(file_id)
    extra = f.model_extra or {}
    show_one(
        f,
        [
            *COLUMNS,
            ("status details", lambda f: f.status_details),
            ("validation", lambda _: extra.get("data_report") or extra.get("validation_report")),
        ],
        json_out=json_out,
    )


@app.command("rm")
def rm(file_id: FileId, base_url: BaseUrl = None, api_key: ApiKey = None) -> None:
    """Delete a file."""
    with requesting():
        deleted = client(base_url, api_key).files.delete(file_id)
    out.print(f"Deleted {deleted.id}")
