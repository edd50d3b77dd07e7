"""Idempotency keys: a create retried with the same `Idempotency-Key` (the SDKs retry after a
timeout or a 5xx) gets the first answer back instead of making a second job or file."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from polytune.domain.errors import Conflict, InvalidRequest
from polytune.store import tables as t
from polytune.store.db import Database, now

MAX_KEY = 255
# How long a retry waits for the first request with its key to finish before answering 409
# (which the SDKs retry in turn).
_WAIT_SECONDS, _POLL = 10.0, 0.1


class IdempotencyService:
    def __init__(self, db: Database):
        self.db = db

    def _row(self, s, org_id: str, route: str, key: str) -> t.IdempotencyKey | None:
        return s.scalar(
            sa.select(t.IdempotencyKey).where(
                t.IdempotencyKey.org_id == org_id, t.IdempotencyKey.route == route, t.IdempotencyKey.key == key
            )
        )

    def begin(self, org_id: str, route: str, key: str, request_hash: str) -> dict[str, Any] | None:
        """The stored answer of an earlier request with this key, or None once the key is
        reserved for this request (then call finish() or abandon())."""
        if not key or len(key) > MAX_KEY:
            raise InvalidRequest(f"Idempotency-Key must be 1 to {MAX_KEY} characters.", param="Idempotency-Key")
        deadline = time.monotonic() + _WAIT_SECONDS
        while True:
            try:
                with self.db.session() as s:
                    s.add(
                        t.IdempotencyKey(
                            org_id=org_id,
                            route=route,
                            key=key,
                            request_hash=request_hash,
                            response=None,
                            created_at=now(),
                        )
                    )
                return None
            except IntegrityError:
                pass
            with self.db.session() as s:
                row = self._row(s, org_id, route, key)
                if row is not None and row.request_hash != request_hash:
                    raise InvalidRequest(
                        "This Idempotency-Key was already used with a different request; "
                        "use a new key for a new request.",
                        param="Idempotency-Key",
                        code="idempotency_key_reused",
                    )
                if row is not None and row.response is not None:
                    return row.response
            if time.monotonic() > deadline:
                raise Conflict(
                    "A request with this Idempotency-Key is still being handled; retry shortly.",
                    param="Idempotency-Key",
                    code="idempotency_in_progress",
                )
            time.sleep(_POLL)

    def finish(self, org_id: str, route: str, key: str, response: dict[str, Any]) -> None:
        with self.db.session() as s:
            s.execute(
                sa.update(t.IdempotencyKey)
                .where(t.IdempotencyKey.org_id == org_id, t.IdempotencyKey.route == route, t.IdempotencyKey.key == key)
                .values(response=response)
            )

    def abandon(self, org_id: str, route: str, key: str) -> None:
        """The request failed: free the key so a corrected retry can run."""
        with self.db.session() as s:
            s.execute(
                sa.delete(t.IdempotencyKey).where(
                    t.IdempotencyKey.org_id == org_id, t.IdempotencyKey.route == route, t.IdempotencyKey.key == key
                )
            )
