"""An organization's integration settings: its W&B API key, sealed at rest, which its jobs use
when they don't bring their own (OpenAI's style, where keys are set per organization)."""

from __future__ import annotations

from polytune.services.keys import KeyService
from polytune.store.db import Database
from polytune.store.secret_box import SecretBox
from polytune.store.secrets import WANDB_API_KEY, org_secret, set_org_secret


class IntegrationService:
    def __init__(self, db: Database, keys: KeyService, box: SecretBox):
        self.db, self.keys, self.box = db, keys, box

    def set_wandb_key(self, org_name: str, api_key: str | None) -> str:
        """Set the organization's W&B key (None removes it); returns the organization id."""
        org_id = self.keys.org_id(org_name)
        with self.db.session() as s:
            set_org_secret(s, self.box, org_id, WANDB_API_KEY, api_key)
        return org_id

    def has_wandb_key(self, org_name: str) -> bool:
        org_id = self.keys.org_id(org_name)
        with self.db.session() as s:
            return org_secret(s, self.box, org_id, WANDB_API_KEY) is not None
