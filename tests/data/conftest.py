from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory):
    from polytune.catalog.models import Catalog

    catalog = Catalog(tmp_path_factory.mktemp("polytune-data"))
    return catalog.resolve_path(catalog.get("polytune-tiny"))
