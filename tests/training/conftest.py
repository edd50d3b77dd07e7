"""Fixtures for the training tests: polytune-tiny built once per session, the demo rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from polytune.data import to_trl_rows
from polytune.catalog.models import Catalog, CatalogEntry
from tests.training.support import DEMO_FILE


@pytest.fixture(scope="session")
def catalog(tmp_path_factory) -> Catalog:
    return Catalog(tmp_path_factory.mktemp("polytune-data"))


@pytest.fixture(scope="session")
def tiny(catalog) -> tuple[CatalogEntry, Path]:
    entry = catalog.get("polytune-tiny")
    return entry, catalog.resolve_path(entry)


@pytest.fixture(scope="session")
def tiny_diffusion(catalog) -> tuple[CatalogEntry, Path]:
    """polytune-tiny-diffusion (copied from the machine's build cache; built there once)."""
    entry = catalog.get("polytune-tiny-diffusion")
    return entry, catalog.resolve_path(entry)


@pytest.fixture(scope="session")
def demo_rows() -> list[dict[str, Any]]:
    return to_trl_rows(DEMO_FILE)


@pytest.fixture(scope="session")
def tiny_unet(catalog) -> tuple[CatalogEntry, Path]:
    """polytune-tiny-unet (built from polytune-tiny-diffusion's parts, once per machine)."""
    entry = catalog.get("polytune-tiny-unet")
    return entry, catalog.resolve_path(entry)
