"""`polytune models list|rm` through the API, and `models add` / `models catalog` on this
server's own base model catalog."""

from __future__ import annotations

from typing import Annotated

import typer

from polytune.cli import admin
from polytune.cli.api import ApiKey, BaseUrl, Json, client, out, requesting, show, when

app = typer.Typer(help="models: base models and fine-tuned models", no_args_is_help=True)
app.command("add")(admin.models_add)
app.command("catalog")(admin.catalog_list)


@app.command("list")
def list_(fine_tuned: Annotated[bool, typer.Option("--fine-tuned", help="only fine-tuned models and checkpoints")] = False,
          base_url: BaseUrl = None, api_key: ApiKey = None, json_out: Json = False) -> None:
    """List the models the API serves: base models, your fine-tuned models and their checkpoints."""
    with requesting():
        rows = client(base_url, api_key).models.list().data
    if fine_tuned:
        rows = [m for m in rows if m.id.startswith("ft:")]
    show(rows, [("id", lambda m: m.id), ("owned by", lambda m: m.owned_by), ("created", lambda m: when(m.created))],
         json_out=json_out)


@app.command("rm")
def rm(model: Annotated[str, typer.Argument(help="a fine-tuned model or checkpoint id")],
       base_url: BaseUrl = None, api_key: ApiKey = None) -> None:
    """Delete a fine-tuned model (or checkpoint): its weights go; its job's history stays."""
    with requesting():
        deleted = client(base_url, api_key).models.delete(model)
    out.print(f"Deleted {deleted.id}")
