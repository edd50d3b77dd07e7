"""What every conformity walk shares: the real app in this process (one per test module, so a
walk of a hundred values costs a hundred requests, not a hundred apps), reached through
Starlette's TestClient, which the official SDKs take as their httpx client; no scheduler, so
no job trains (each one waits in its first status); and the walk over a table of fields.

A table row (`Field`) is data read off a provider's document: a field's path in the request
body, values it takes, its default when left out, and each bound just inside (accepted) and
just outside (refused, naming the field)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from polytune.app import create_app
from polytune.config import Settings

BASE = "http://polytune.test"
LEFT_OUT = object()  # a Field's `default` when the document gives none to check


@dataclass
class App:
    app: FastAPI
    http: TestClient
    key_a: str
    key_b: str

    def headers(self, key: str | None = None, *, bearer: bool = True) -> dict[str, str]:
        key = key or self.key_a
        return {"Authorization": f"Bearer {key}" if bearer else key}

    def set_status(self, job_id: str, status: str) -> None:
        """Put a job in `status` directly (nothing trains here), to read it in every status."""
        engine = self.app.state.services.files.db.engine
        with engine.begin() as c:
            c.execute(sa.text("UPDATE jobs SET status = :status WHERE id = :id"), {"status": status, "id": job_id})


@contextlib.contextmanager
def app_in_process(tmp: Path, database_url: str | None = None) -> Iterator[App]:
    """The app on `database_url` (the `database_url` fixture's, to run on PostgreSQL too), or on
    a SQLite file of its own."""
    settings = Settings(data_dir=tmp / "data", database_url=database_url or f"sqlite:///{tmp / 'polytune.db'}")
    app = create_app(settings, run_scheduler=False)
    # raise_server_exceptions: a 5xx anywhere in a walk fails the test with its traceback.
    with TestClient(app, base_url=BASE, raise_server_exceptions=True) as http:
        keys = app.state.services.keys
        _, key_a = keys.create_key("org-a")
        _, key_b = keys.create_key("org-b")
        yield App(app, http, key_a, key_b)


@dataclass(frozen=True)
class Field:
    """One request field, as its provider's document describes it."""

    path: str  # dotted path in the request body
    valid: tuple = ()  # values it takes: accepted, and echoed at `echo`
    inside: tuple = ()  # each bound, just inside: accepted, and echoed
    outside: tuple = ()  # just outside a bound, or of the wrong type: refused, naming `param`
    default: Any = LEFT_OUT  # what the response shows at `echo` when the field is left out
    echo: str | None = None  # where the response shows it; None: at `path`; "": not echoed
    param: str | None = None  # the field the refusal names; None: `path`
    base: dict[str, Any] = field(default_factory=dict)  # what else the body needs for this field
    required: bool = False  # leaving it out is refused, naming it

    @property
    def shown_at(self) -> str:
        return self.path if self.echo is None else self.echo

    @property
    def named(self) -> str:
        return self.param or self.path

    def id(self) -> str:
        return self.path


def cases(table: list[Field]) -> list[tuple[Field, str, Any]]:
    """(field, kind, value) for every value of every row: kind is valid, inside, outside, default
    or required. A flat list, so each value is its own test with its own id."""
    out: list[tuple[Field, str, Any]] = []
    for f in table:
        out += [(f, "valid", v) for v in f.valid] + [(f, "inside", v) for v in f.inside]
        out += [(f, "outside", v) for v in f.outside]
        if f.default is not LEFT_OUT:
            out.append((f, "default", f.default))
        if f.required:
            out.append((f, "required", None))
    return out


def case_id(case: tuple[Field, str, Any]) -> str:
    f, kind, value = case
    shown = repr(value) if not callable(value) else getattr(value, "__name__", "check")
    return f"{f.path}-{kind}-{shown[:40]}"


def put(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with `value` at the dotted `path` (objects made on the way)."""
    out = _copy(body)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


def drop(body: dict[str, Any], path: str) -> dict[str, Any]:
    out = _copy(body)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node.get(part, {})
    node.pop(last, None)
    return out


def get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[part]
    return obj


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = _copy(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def matches(expected: Any, got: Any) -> bool:
    """A default is a value, or a check (a type, or a function of the value shown)."""
    if isinstance(expected, type):
        return isinstance(got, expected) and not (expected is int and isinstance(got, bool))
    if callable(expected):
        return bool(expected(got))
    return got == expected


# Response fields: (path, the JSON types it may have). The check a strict SDK would make of
# presence and type, made on the raw body so a failure names the field.
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def check_response_fields(body: dict[str, Any], schema: dict[str, str]) -> list[str]:
    """The fields of `body` that are missing or of a type `schema` ("string|null") does not allow."""
    wrong = []
    for path, types in schema.items():
        try:
            value = get(body, path)
        except (KeyError, TypeError):
            wrong.append(f"{path}: missing")
            continue
        allowed = tuple(t for name in types.split("|") for t in JSON_TYPES[name])
        is_bool = isinstance(value, bool)
        if not isinstance(value, allowed) or (is_bool and bool not in allowed):
            wrong.append(f"{path}: {type(value).__name__} {value!r:.60} is not {types}")
    return wrong


Check = Callable[[Any], bool]
