"""The catalog's tests use the training tests' tiny-model fixtures (one build per session)."""

from __future__ import annotations

from tests.training.conftest import catalog, demo_rows, tiny  # noqa: F401 - fixtures shared with the training tests
