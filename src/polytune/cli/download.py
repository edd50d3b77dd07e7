"""Downloading to a file with a progress bar, resuming where an interrupted download stopped:
the bytes go to `<target>.part`, and a later run asks for the rest with `Range` (the models and
files content routes answer it with a 206; a server that answers 200 instead sends it all again
and the .part starts over)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from polytune.cli.api import EXIT_REQUEST_FAILED, err

# The first download of a merged or GGUF model is converted on the server before a byte comes.
TIMEOUT = httpx.Timeout(1800, connect=10)


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def fetch(
    url: str, api_key: str, target: Path, *, params: dict[str, Any] | None = None, total: int | None = None
) -> httpx.Headers:
    """Stream `url` into `target` (through `<target>.part`, resumed if one is there); returns the
    response's headers. A failed request is one line on stderr and exit code 5."""
    part = part_path(target)
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    headers = {"Authorization": f"Bearer {api_key}", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        with httpx.stream("GET", url, params=params, headers=headers, timeout=TIMEOUT) as response:
            if response.status_code == 416 and have:
                if _full_size(response.headers) == have:  # the .part is whole already
                    part.replace(target)
                    return response.headers
                # Longer than the content: not a piece of it (another file that had this name).
                part.unlink()
                return fetch(url, api_key, target, params=params, total=total)
            if response.status_code not in (200, 206):
                response.read()
                _fail(response)
            if response.status_code == 200:
                have = 0  # the server sent it all again (no range support, or the content changed)
            length = int(response.headers.get("content-length") or 0)
            size = have + length if length else total
            with part.open("ab" if have else "wb") as f, _progress() as progress:
                task = progress.add_task(target.name, total=size, completed=have)
                for chunk in response.iter_bytes(1 << 20):
                    f.write(chunk)
                    progress.advance(task, len(chunk))
            result = response.headers
    except httpx.HTTPError as e:
        err.print(f"error: cannot download from {url}: {e} (run the command again to resume)")
        raise typer.Exit(EXIT_REQUEST_FAILED) from None
    part.replace(target)
    return result


def _full_size(headers: httpx.Headers) -> int | None:
    """The content's size a 416's `Content-Range: bytes */SIZE` gives."""
    match = re.fullmatch(r"bytes \*/(\d+)", headers.get("content-range") or "")
    return int(match.group(1)) if match else None


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def _fail(response: httpx.Response) -> None:
    try:
        error = response.json()["error"]
        message = error["message"]
        param = error.get("param")
        if param and param not in message:
            message += f" (param: {param})"
    except (ValueError, KeyError, TypeError):
        message = response.text.strip() or f"HTTP {response.status_code}"
    err.print(f"error: {message}")
    raise typer.Exit(EXIT_REQUEST_FAILED)


def attachment_name(headers: httpx.Headers) -> str | None:
    """The file name a Content-Disposition header gives (filename*, else filename), base name only."""
    value = headers.get("content-disposition") or ""
    star = re.search(r"filename\*=UTF-8''([^;]+)", value)
    plain = re.search(r'filename="([^"]*)"', value)
    name = unquote(star.group(1)) if star else plain.group(1) if plain else None
    return Path(name).name if name else None
