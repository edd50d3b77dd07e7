"""One headless browser per test module: starting Chromium costs seconds on a busy machine."""

from __future__ import annotations

import pytest

from tests.dashboard.browser import start_browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_browser(tmp_path_factory.mktemp("downloads"))
    yield driver
    driver.quit()
