"""`polytune graders check-sandbox`: is the python graders' boundary set up on this machine?"""

from __future__ import annotations

import typer

from polytune.config import Settings

app = typer.Typer(help="graders on this machine", no_args_is_help=True)


@app.command("check-sandbox")
def check_sandbox() -> None:
    """Set up the python graders' sandbox as the server would and try escapes from inside it;
    exit status 1 when python graders would be refused here or a check fails."""
    from polytune.graders.boundary import probe
    from polytune.graders.sandbox_check import check
    from polytune.graders.settings import sandbox

    settings = Settings()
    boundary = probe(sandbox(settings))
    if not boundary.ok:
        typer.echo(f"python graders are DISABLED here: {boundary.error}")
        raise typer.Exit(1)
    typer.echo(f"bubblewrap: {boundary.bwrap}")
    typer.echo(f"seccomp: {boundary.seccomp_note}")
    for host, inside in boundary.mounts:
        typer.echo(f"read-only: {host} -> {inside}")
    results = check(boundary, str(settings.resolved_data_dir), settings.port)
    for name, holds in results.items():
        typer.echo(f"{'ok  ' if holds else 'FAIL'} {name}")
    raise typer.Exit(0 if all(results.values()) else 1)
