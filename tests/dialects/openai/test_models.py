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
