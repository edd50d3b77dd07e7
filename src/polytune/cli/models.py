"""`polytune models list|download|rm` through the API, and `models add` / `models catalog` on this
server's own base model catalog."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from polytune.cli import admin
from polytune.cli.api import ApiKey, BaseUrl, Json, client, out, requesting, show, when
from polytune.cli.download import attachment_name, fetch

FORMATS = ("adapter", "merged", "gguf")

app = typer.Typer(help="models: base models and fine-tuned models", no_args_is_help=True)
app.command("add")(admin.models_add)
app.command("catalog")(admin.catalog_list)


@app.command("list")
def list_(
    fine_tuned: Annotated[bool, typer.Option("--fine-tuned", help="only fine-tuned models and checkpoints")] = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: Json = False,
) -> None:
    """List the models the API serves: base models, your fine-tuned models and their checkpoints."""
    with requesting():
        rows = client(base_url, api_key).models.list().data
    if fine_tuned:
        rows = [m for m in rows if m.id.startswith("ft:")]
    show(
        rows,
        [("id", lambda m: m.id), ("owned by", lambda m: m.owned_by), ("created", lambda m: when(m.created))],
        json_out=json_out,
    )


@app.command("rm")
def rm(
    model: Annotated[str, typer.Argument(help="a fine-tuned model or checkpoint id")],
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Delete a fine-tuned model (or checkpoint): its weights go; its job's history stays."""
    with requesting():
        deleted = client(base_url, api_key).models.delete(model)
    out.print(f"Deleted {deleted.id}")


Format = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="adapter (a LoRA's adapter: peft's folder, or diffusers' for an image model), merged "
        "(full weights in safetensors) or gguf (one file for llama.cpp / Ollama); default: adapter for a LoRA "
        "fine-tune, merged for a full one",
    ),
]


@app.command()
def download(
    model: Annotated[str, typer.Argument(help="a fine-tuned model or checkpoint id")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="the folder to write into (default: one named after the model and format)"),
    ] = None,
    fmt: Format = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Download a fine-tuned model's weights, with a progress bar; run it again to resume an
    interrupted download. adapter and merged unpack into the folder (load it with peft or
    transformers); gguf is written into it as one .gguf file."""
    if fmt is not None and fmt not in FORMATS:
        raise typer.BadParameter(f"'{fmt}' is not one of {', '.join(FORMATS)}", param_hint="--format")
    api = client(base_url, api_key)
    short = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-")
    folder = output or Path(f"{short}-{fmt or 'download'}")
    staging = folder / f".{short}-{fmt or 'default'}.download"
    headers = fetch(
        f"{api.base_url}models/{quote(model, safe=':/')}/content",
        api.api_key,
        staging,
        params={"format": fmt} if fmt else None,
    )
    name = attachment_name(headers) or f"{short}.bin"
    if name.endswith(".tar"):
        with tarfile.open(staging) as tar:
            tar.extractall(folder, filter="data")  # refuses absolute paths and ../ escapes
        staging.unlink()
        out.print(f"Saved {model} ({name.rsplit('-', 1)[-1].removesuffix('.tar')}) to {folder}/")
    else:
        staging.replace(folder / name)
        out.print(f"Saved {model} to {folder / name}")
