"""polytune's extension `GET /v1/organization`: the organization the caller's key belongs to
(its id and name). Only ever the caller's own: the dashboard shows the name where the API's
objects carry the id (`owned_by`, `organization_id`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from polytune.dialects.common.deps import OrgId, Svc

router = APIRouter()


@router.get("/organization")
def current_organization(org: OrgId, svc: Svc) -> dict[str, Any]:
    return {"object": "organization", "id": org, "name": svc.keys.org_name(org)}
