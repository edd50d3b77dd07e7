"""Commands that administer this server's own database and catalog (run them where the server's
settings are): API keys, an organization's W&B key, base models. Everything else goes through
the HTTP API (cli/api.py), because you need a key before you can call it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from polytune.cli.api import Json, err, out, print_json, show, when
from polytune.config import Settings

keys_app = typer.Typer(help="API keys (on this server's database)", no_args_is_help=True)
integrations_app = typer.Typer(help="an organization's integrations (on this server's database)", no_args_is_help=True)

Org = Annotated[str, typer.Option("--org", help="the organization's name")]


def _services():
    from polytune.app import build_services

    return build_services(Settings())


@keys_app.command("create")
def keys_create(
    org: Org,
    prefix: Annotated[
        str,
        typer.Option(
            "--prefix", help="how the key starts (the Tinker SDK wants 'tml-'); valid on every API whatever it is"
        ),
    ] = "pt-",
) -> None:
    """Create an API key for an organization (created if new). The key is printed once, on the
    last line; where it was written goes to stderr (a server with another data dir never sees it)."""
    from polytune.domain.errors import InvalidRequest

    settings = Settings()
    database = settings.resolved_database_url
    local = None if settings.database_url else settings.resolved_data_dir / "polytune.db"
    fresh = local is not None and not local.exists()
    services, db = _services()
    try:
        org_id, key = services.keys.create_key(org, prefix)
    except InvalidRequest as e:
        typer.echo(f"Error: --prefix: {e.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    if fresh:
        err.print(
            f"note: {settings.resolved_data_dir} held no polytune data: this made a new database there "
            f"({local}), and only a server started with this data dir accepts the key. If your server "
            "uses another one, run this again with POLYTUNE_DATA_DIR set to the server's (or "
            "POLYTUNE_DATABASE_URL to its database)."
        )
    else:
        err.print(f"Wrote the key to {local or _redacted(database)}.")
    print(f"Created an API key for organization '{org}' ({org_id}). It is shown only once:")
    print(key)


def _redacted(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@keys_app.command("list")
def keys_list(
    org: Annotated[str | None, typer.Option("--org", help="only this organization's")] = None, json_out: Json = False
) -> None:
    """List API keys: id, organization, prefix, created, revoked (the keys themselves are not stored)."""
    services, db = _services()
    try:
        rows = services.keys.list_keys(org)
    finally:
        db.dispose()
    show(
        rows,
        [
            ("id", lambda k: k["id"]),
            ("organization", lambda k: k["org"]),
            ("prefix", lambda k: k["prefix"] + "…"),
            ("created", lambda k: when(k["created_at"])),
            ("revoked", lambda k: when(k["revoked_at"])),
        ],
        json_out=json_out,
    )


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key's id (key-…), from `keys list`")]) -> None:
    """Revoke an API key; requests with it are refused from then on."""
    services, db = _services()
    try:
        revoked = services.keys.revoke(key_id)
    finally:
        db.dispose()
    out.print(f"Revoked {revoked['id']} ({revoked['prefix']}…)")


@integrations_app.command("set-wandb-key")
def set_wandb_key(
    org: Org,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="the key; better left out: it is then read from standard input "
            "(or prompted for), so it stays out of your shell history",
        ),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="remove the organization's key")] = False,
) -> None:
    """Set the W&B API key an organization's jobs log with (unless a job brings its own). It is
    stored encrypted and never shown again."""
    if not clear and not api_key:
        api_key = (typer.prompt("W&B API key", hide_input=True) if sys.stdin.isatty() else sys.stdin.readline()).strip()
        if not api_key:
            raise typer.BadParameter("no key given", param_hint="--api-key")
    from polytune.services.integrations import IntegrationService
    from polytune.store.secret_box import SecretBox

    settings = Settings()
    services, db = _services()
    try:
        IntegrationService(db, services.keys, SecretBox.from_settings(settings)).set_wandb_key(
            org, None if clear else api_key
        )
    finally:
        db.dispose()
    out.print(f"{'Removed' if clear else 'Set'} the W&B API key of organization '{org}'.")


def _catalog():
    """This server's catalog, kept in its blob storage (catalog/stored.py) so every node reads it."""
    from polytune.catalog.models import Catalog
    from polytune.store.blobs import BlobStore

    settings = Settings()
    return Catalog.for_settings(settings, BlobStore(settings.resolved_storage_url))


def models_add(
    name: Annotated[str, typer.Argument(help="the name jobs and requests use")],
    source: Annotated[str, typer.Argument(help="a local Hugging Face model folder, or a hub id (org/model)")],
    max_length: Annotated[
        int | None,
        typer.Option(
            "--max-length",
            min=1,
            help="the context length jobs train at by default (default: the model's context window, from its config)",
        ),
    ] = None,
    revision: Annotated[str | None, typer.Option("--revision", help="a hub id's branch, tag or commit to pin")] = None,
    trust_remote_code: Annotated[
        bool,
        typer.Option(
            "--trust-remote-code",
            help="allow a model that ships its own Python code "
            "(config.json's auto_map) to run it; refused without this",
        ),
    ] = False,
) -> None:
    """Add a model to this server's base model catalog. Only its config and tokenizer are read
    (never its weights), so this is quick for a model of any size."""
    from polytune.domain.errors import InvalidRequest

    try:
        entry = _catalog().add(
            name,
            source,
            revision=revision,
            trust_remote_code=trust_remote_code,
            **({"max_length": max_length} if max_length is not None else {}),
        )
    except InvalidRequest as e:
        hint = {"max_length": "--max-length", "revision": "--revision", "trust_remote_code": "--trust-remote-code"}.get(
            e.param or "", "SOURCE"
        )
        err.print(f"error: {e.message} ({hint})")
        raise typer.Exit(2) from None
    pinned = f" at {entry.revision}" if entry.revision else ""
    out.print(f"Added model '{entry.name}' from {entry.source}{pinned}; context length {entry.max_length}")


def catalog_list(json_out: Json = False) -> None:
    """List this server's base model catalog (name and where its weights come from)."""

    entries = _catalog().list()
    if json_out:
        print_json(
            [
                {
                    "name": e.name,
                    "source": str(e.source),
                    "revision": e.revision,
                    "max_length": e.max_length,
                    "trust_remote_code": e.trust_remote_code,
                }
                for e in entries
            ]
        )
        return
    show(
        entries,
        [
            ("name", lambda e: e.name),
            ("source", lambda e: e.source + (f"@{e.revision}" if e.revision else "")),
            ("context", lambda e: e.max_length),
        ],
        json_out=False,
    )
