"""The store's tests that fetch a real model folder use the training tests' polytune-tiny (one
build per session)."""

from __future__ import annotations

from tests.training.conftest import catalog, tiny  # noqa: F401 - fixtures shared with the training tests
