"""The database: one engine per process, sessions as context managers, migrations at start."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session, sessionmaker

from polytune.domain.errors import InvalidRequest

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant: two servers starting together on one PostgreSQL take turns migrating.
_MIGRATION_LOCK = 7_406_113


def now() -> int:
    return int(time.time())


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the server read while a worker process writes; busy_timeout makes writers wait
    # for each other instead of failing with "database is locked".
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


_INT64 = 2**63


def _refuse_unstorable(conn, cursor, statement, parameters, context, _executemany) -> None:
    """The last line behind every input check: a value no backend can store or compare (a NUL
    in text, which PostgreSQL refuses; an integer beyond 64 bits, which neither takes) is the
    caller's mistake, a 400, whatever route it came through, never a database error."""
    # Parameters come as a dict, a tuple, or (executemany, batched inserts) lists of either.
    pending = [parameters]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
        elif isinstance(value, str) and "\x00" in value:
            raise InvalidRequest("Text must not contain NUL (\\u0000) characters.", code="invalid_text")
        elif isinstance(value, int) and not -_INT64 <= value < _INT64:
            raise InvalidRequest(f"The number {value} is out of range.", code="invalid_value")


class Database:
    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        sa.event.listen(self.engine, "before_cursor_execute", _refuse_unstorable)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions() as s, s.begin():
            yield s

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        self.engine.dispose()
