"""`polytune files upload|list|show|rm`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from polytune.cli.api import ApiKey, BaseUrl, Json, client, out, print_json, requesting, show, show_one, when

app = typer.Typer(help="training and result files", no_args_is_help=True)

FileId = Annotated[str, typer.Argument(help="a file id (file-…)")]
COLUMNS = [("id", lambda f: f.id), ("filename", lambda f: f.filename), ("purpose", lambda f: f.purpose),
           ("bytes", lambda f: f"{f.bytes:,}"), ("status", lambda f: f.status),
           ("created", lambda f: when(f.created_at))]


@app.command()
def upload(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
           purpose: Annotated[str, typer.Option(help="fine-tune, or any purpose the API accepts")] = "fine-tune",
           base_url: BaseUrl = None, api_key: ApiKey = None, json_out: Json = False) -> None:
    """Upload a file (streamed) and print its id; the server validates a fine-tune file on arrival."""
    with requesting(), path.open("rb") as f:
        uploaded = client(base_url, api_key).files.create(file=(path.name, f), purpose=purpose)
    if json_out:
        print_json(uploaded)
        return
    details = f" ({uploaded.status_details})" if uploaded.status_details else ""
    out.print(f"Uploaded {path.name}: {uploaded.id}, {uploaded.bytes:,} bytes, {uploaded.status}{details}")


@app.command("list")
def list_(purpose: Annotated[str | None, typer.Option(help="only files with this purpose")] = None,
          limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 100,
          base_url: BaseUrl = None, api_key: ApiKey = None, json_out: Json = False) -> None:
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
    show_one(f, [*COLUMNS, ("status details", lambda f: f.status_details),
                 ("validation", lambda _: extra.get("data_report") or extra.get("validation_report"))],
             json_out=json_out)


@app.command("rm")
def rm(file_id: FileId, base_url: BaseUrl = None, api_key: ApiKey = None) -> None:
    """Delete a file."""
    with requesting():
        deleted = client(base_url, api_key).files.delete(file_id)
    out.print(f"Deleted {deleted.id}")
