"""`polytune serve | keys create | models add/list | chat MODEL`."""

from __future__ import annotations

import argparse
import sys

from polytune.config import Settings


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from polytune.app import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    uvicorn.run(create_app(settings), host=host, port=port, log_level=args.log_level)
    return 0


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from polytune.app import build_services

    services, db = build_services(settings)
    org_id, key = services.keys.create_key(args.org)
    db.dispose()
    print(f"Created an API key for organization '{args.org}' ({org_id}). It is shown only once:")
    print(key)
    return 0


def _models_add(args: argparse.Namespace, settings: Settings) -> int:
    from polytune.training.models import Catalog

    entry = Catalog(settings.resolved_data_dir).add(args.name, args.path)
    print(f"Added model '{entry.name}' from {args.path}")
    return 0


def _models_list(args: argparse.Namespace, settings: Settings) -> int:
    from polytune.training.models import Catalog

    for e in Catalog(settings.resolved_data_dir).list():
        print(f"{e.name}\t{e.source}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="polytune", description="Self-hostable fine-tuning service")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=_serve)

    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    kc = keys.add_parser("create", help="create an API key for an organization (created if new)")
    kc.add_argument("--org", required=True)
    kc.set_defaults(func=_keys_create)

    models = sub.add_parser("models", help="the base model catalog").add_subparsers(dest="models_command", required=True)
    ma = models.add_parser("add", help="add a local Hugging Face model folder to the catalog")
    ma.add_argument("name")
    ma.add_argument("path")
    ma.set_defaults(func=_models_add)
    ml = models.add_parser("list", help="list the catalog")
    ml.set_defaults(func=_models_list)

    from polytune.cli import chat

    chat.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args, Settings())
    except Exception as e:  # a person reads this: one line, not a traceback
        from polytune.domain.errors import DomainError

        if isinstance(e, DomainError):
            print(f"error: {e.message}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
