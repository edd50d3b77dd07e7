"""Organizations and API keys. A key is shown once; only its sha256 is stored."""

from __future__ import annotations

import hashlib
import re
import secrets

import sqlalchemy as sa

from polytune.domain.errors import InvalidRequest, NotFound, Unauthorized
from polytune.domain.ids import new_id
from polytune.store import tables as t
from polytune.store.db import Database, now

KEY_PREFIX = "pt-"
# A key's prefix is only its look: every key is valid on every API. Some SDKs check it (Tinker's
# requires "tml-"), hence `keys create --prefix`.
_PREFIX_RE = re.compile(r"[A-Za-z0-9_]{1,12}-?")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyService:
    def __init__(self, db: Database):
        self.db = db

    def create_key(self, org_name: str, prefix: str = KEY_PREFIX) -> tuple[str, str]:
        """Create the organization if new, and a key for it that starts with `prefix`.
        Returns (org_id, key)."""
        if not _PREFIX_RE.fullmatch(prefix):
            raise InvalidRequest(
                f"Invalid key prefix '{prefix}': up to 12 letters, digits or underscores, "
                "optionally ending in '-' (e.g. 'tml-').",
                param="prefix",
            )
        key = prefix + secrets.token_urlsafe(32)
        with self.db.session() as s:
            org = s.scalar(sa.select(t.Organization).where(t.Organization.name == org_name))
            if org is None:
                org = t.Organization(id=new_id("org"), name=org_name, created_at=now())
                s.add(org)
                s.flush()
            s.add(t.ApiKey(id=new_id("key"), org_id=org.id, key_hash=hash_key(key), prefix=key[:8], created_at=now()))
            return org.id, key

    def org_id(self, org_name: str) -> str:
        with self.db.session() as s:
            org_id = s.scalar(sa.select(t.Organization.id).where(t.Organization.name == org_name))
        if org_id is None:
            raise NotFound(f"No organization named '{org_name}'.", param="org")
        return org_id

    def list_keys(self, org_name: str | None = None) -> list[dict]:
        """Every key (or one organization's): id, organization, prefix, created, revoked — never
        the key itself, which is not stored."""
        with self.db.session() as s:
            stmt = (
                sa.select(t.ApiKey, t.Organization.name)
                .join(t.Organization, t.Organization.id == t.ApiKey.org_id)
                .order_by(t.ApiKey.seq)
            )
            if org_name is not None:
                stmt = stmt.where(t.Organization.id == self.org_id(org_name))
            return [
                {
                    "id": k.id,
                    "org": name,
                    "org_id": k.org_id,
                    "prefix": k.prefix,
                    "created_at": k.created_at,
                    "revoked_at": k.revoked_at,
                }
                for k, name in s.execute(stmt)
            ]

    def revoke(self, key_id: str) -> dict:
        """Revoke a key by its id; it stops working at once. Revoking twice changes nothing."""
        with self.db.session() as s:
            key = s.scalar(sa.select(t.ApiKey).where(t.ApiKey.id == key_id))
            if key is None:
                raise NotFound(f"No API key with id '{key_id}'.", param="key_id")
            key.revoked_at = key.revoked_at or now()
            return {"id": key.id, "prefix": key.prefix, "revoked_at": key.revoked_at}

    def authenticate(self, key: str | None) -> str:
        """The organization id the key belongs to, or Unauthorized."""
        if not key:
            raise Unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.")
        with self.db.session() as s:
            org_id = s.scalar(
                sa.select(t.ApiKey.org_id).where(t.ApiKey.key_hash == hash_key(key), t.ApiKey.revoked_at.is_(None))
            )
        if org_id is None:
            raise Unauthorized("Incorrect API key provided.")
        return org_id

    def org_name(self, org_id: str) -> str:
        with self.db.session() as s:
            return s.scalar(sa.select(t.Organization.name).where(t.Organization.id == org_id)) or org_id
