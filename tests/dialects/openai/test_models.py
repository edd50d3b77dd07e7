"""Models API: the catalog's base models, visible to every organization."""

from __future__ import annotations

import openai
import pytest


def test_base_model_listed_and_retrievable(client):
    ids = [m.id for m in client.models.list().data]
    assert "polytune-tiny" in ids
    m = client.models.retrieve("polytune-tiny")
    assert m.object == "model" and m.owned_by == "polytune"


def test_unknown_model_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("ft:polytune-tiny:nobody::abc")
    assert e.value.body["code"] == "model_not_found"


def test_models_say_what_they_serve(client):
    # polytune's extras on the model object: chat or image, so a client offers chat only where it works.
    models = {m.id: m.model_dump() for m in client.models.list().data}
    assert models["polytune-tiny"]["model_type"] == "chat"
    assert models["polytune-tiny-diffusion"]["model_type"] == "image"
    assert models["polytune-tiny"]["fine_tuning_job_id"] is None and models["polytune-tiny"]["base_model"] is None
    assert client.models.retrieve("polytune-tiny-unet").model_dump()["model_type"] == "image"


def test_organization_is_the_keys_own(server):
    import httpx

    a = httpx.get(f"{server.url}/v1/organization", headers={"Authorization": f"Bearer {server.key_a}"}).json()
    b = httpx.get(f"{server.url}/v1/organization", headers={"Authorization": f"Bearer {server.key_b}"}).json()
    assert (a["object"], a["name"], b["name"]) == ("organization", "org-a", "org-b")
    assert a["id"].startswith("org") and a["id"] != b["id"]
    res = httpx.get(f"{server.url}/v1/organization", headers={"Authorization": "Bearer pt-nope"})
    assert res.status_code == 401 and "error" in res.json()
