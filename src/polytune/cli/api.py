"""What every API command shares: the client (the `openai` SDK pointed at a polytune server by
POLYTUNE_BASE_URL and POLYTUNE_API_KEY), printing (a rich table, or JSON with --json), and
turning a failed request into one line and exit code 5."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

# Exit codes; `jobs follow` also exits with its job's outcome (cli/follow.py).
EXIT_REQUEST_FAILED = 5

BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="POLYTUNE_BASE_URL",
        show_envvar=True,
        help="the server, e.g. http://127.0.0.1:8000 (/v1 is added)",
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="POLYTUNE_API_KEY",
        show_envvar=True,
        help="an API key (`polytune keys create --org NAME` makes one)",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]

# Columns that hold an id (or a model name used as one), printed whole on one line.
ID_COLUMNS = frozenset({"id", "model", "fine-tuned model", "training file", "organization"})

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line, however long


def openai_base_url(base_url: str | None) -> str:
    """The OpenAI base URL of a server: its address with /v1, whether or not it was given."""
    from polytune.config import Settings

    if not base_url:
        settings = Settings()
        base_url = f"http://{settings.host}:{settings.port}"
    base_url = base_url.rstrip("/")
    return base_url if base_url.endswith("/v1") else f"{base_url}/v1"


def client(base_url: str | None, api_key: str | None):
    from openai import OpenAI

    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        err.print(
            "error: no API key; pass --api-key or set POLYTUNE_API_KEY (`polytune keys create --org NAME` makes one)"
        )
        raise typer.Exit(2)
    return OpenAI(base_url=openai_base_url(base_url), api_key=key, max_retries=2)


@contextmanager
def requesting() -> Iterator[None]:
    """A failed request is one line on stderr and exit code 5, not a traceback."""
    import openai

    try:
        yield
    except openai.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        param = body.get("param")
        message = body.get("message") or e.message
        err.print(f"error: {message}" + (f" (param: {param})" if param and param not in message else ""))
        raise typer.Exit(EXIT_REQUEST_FAILED) from None
    except openai.APIConnectionError as e:
        url = getattr(e.request, "url", None)
        where = f" at {url.scheme}://{url.netloc.decode()}" if url is not None else ""
        err.print(f"error: cannot reach the server{where}: {e.__cause__ or e}")
        raise typer.Exit(EXIT_REQUEST_FAILED) from None


def as_dict(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, list):
        return [as_dict(o) for o in obj]
    return obj


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(as_dict(obj), indent=2, default=str) + "\n")


def when(ts: int | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def show(
    rows: Sequence[Any],
    columns: Sequence[tuple[str, Callable[[Any], Any]]],
    *,
    json_out: bool,
    title: str | None = None,
) -> None:
    """A list as a table (one column per (header, getter)), or as a JSON array."""
    if json_out:
        print_json(list(rows))
        return
    cells = [["" if (v := get(row)) is None else str(v) for _, get in columns] for row in rows]
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, (header, _) in enumerate(columns)]
    # An id is copied whole into the next command: never wrapped; the other columns give way,
    # down to a few characters each (3 for the separator and padding around every column).
    whole = [header in ID_COLUMNS for header, _ in columns]
    need = sum(w if keep else min(w, 8) for w, keep in zip(widths, whole, strict=True)) + 3 * len(columns)
    if cells and need > out.width:
        # Too narrow for the ids side by side with the rest: one block of lines per object.
        for row in cells:
            for (header, _), value in zip(columns, row, strict=True):
                if value:
                    out.print(f"[bold]{header}[/bold]: {value}", overflow="ignore", crop=False)
            out.print()
        return
    table = Table(title=title, show_edge=False, header_style="bold")
    for (header, _), width, keep in zip(columns, widths, whole, strict=True):
        table.add_column(header, no_wrap=keep, min_width=width if keep else None, overflow="fold")
    for row in cells:
        table.add_row(*row)
    out.print(table)


def show_one(obj: Any, fields: Sequence[tuple[str, Callable[[Any], Any]]], *, json_out: bool) -> None:
    """One object as `name  value` lines, or as JSON."""
    if json_out:
        print_json(obj)
        return
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, get in fields:
        value = get(obj)
        if value not in (None, "", [], {}):
            table.add_row(name, value if isinstance(value, str) else json.dumps(value, default=str))
    out.print(table)
