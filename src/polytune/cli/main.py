"""`polytune …`: the server (`serve`), its administration (`keys`, `integrations`, `models add`),
and a client for every step of fine-tuning (`files`, `jobs`, `models`, `chat`) that talks to a
server through the same HTTP API as everyone else (POLYTUNE_BASE_URL, POLYTUNE_API_KEY)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from polytune.cli import admin, evals, files, graders, jobs, models
from polytune.cli.chat import chat

app = typer.Typer(
    name="polytune",
    help="Self-hostable fine-tuning service",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default: POLYTUNE_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default: POLYTUNE_PORT")] = None,
    log_level: Annotated[str, typer.Option()] = "info",
) -> None:
    """Run the API server."""
    import uvicorn

    from polytune.app import create_app
    from polytune.config import Settings

    # The address it listens on is part of its settings: model graders reach the server's own
    # API through it (graders/settings.py internal_base_url).
    settings = Settings()
    settings = settings.model_copy(update={"host": host or settings.host, "port": port or settings.port})
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level)


def _print_version(value: bool) -> None:
    if value:
        from polytune import __version__

        print(f"polytune {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print polytune's version and exit"),
    ] = False,
) -> None:
    """Self-hostable fine-tuning service"""


app.add_typer(admin.keys_app, name="keys")
app.add_typer(admin.integrations_app, name="integrations")
app.add_typer(files.app, name="files")
app.add_typer(jobs.app, name="jobs")
app.add_typer(models.app, name="models")
app.add_typer(graders.app, name="graders")
app.add_typer(evals.app, name="evals")
app.command("chat")(chat)


EXIT_USAGE = 2


def usage_error(e: Exception) -> str:
    """One line: what was wrong, and where the command's help is."""
    message = e.format_message() if hasattr(e, "format_message") else str(e)
    ctx = getattr(e, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return f"error: {' '.join(message.split())}{hint}"


def main(argv: list[str] | None = None) -> int:
    from polytune.domain.errors import DomainError

    try:
        # Not standalone: a command's exit code comes back here (click returns it) instead of
        # leaving through sys.exit, so main() can be called from Python too.
        code = app(args=argv, prog_name="polytune", standalone_mode=False)
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        return 1
    except DomainError as e:  # a person reads this: one line, not a traceback
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    except typer.TyperException as e:
        if type(e).__name__ == "NoArgsIsHelpError":
            # `polytune` or `polytune files` alone: the help (already printed, on stdout) is the
            # answer asked for, as with --help; click counts it a usage error (exit 2, since
            # click 8.2), which would add an empty `error:` line. Matched by name, as typer's own
            # rich_utils does: typer raises its vendored copy or click's, depending on the path.
            return 0
        # A usage error (unknown option or command, missing argument, bad value): typer raises
        # its own copy of click's exceptions, so catch its base class, not click's.
        print(usage_error(e), file=sys.stderr)
        return int(getattr(e, "exit_code", EXIT_USAGE))
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
