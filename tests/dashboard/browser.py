"""The dashboard's browser tests' tools: one headless Chromium per test module (Debian's
`chromium` and `chromium-driver`, driven by Selenium, nothing downloaded), screenshots under
test-artifacts/dashboard/, and small waits on what the page shows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("POLYTUNE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "dashboard"


def start_browser(downloads: Path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "no headless browser: install Debian's packages `chromium` and `chromium-driver` (`make venv` does as root)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the `test` extra")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1100",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    # Both paths given: Selenium Manager has nothing to look up or download.
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)), options=options)
    # Headless Chromium saves downloads only when told where, through the DevTools protocol.
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.implicitly_wait(0)
    driver.downloads = downloads
    return driver


def shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def find(driver, css: str, timeout: float = 30):
    from selenium.webdriver.common.by import By

    return wait_for(lambda: next(iter(driver.find_elements(By.CSS_SELECTOR, css)), None), timeout=timeout)


def find_all(driver, css: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def text_of(driver, css: str) -> str:
    """The element's text; a page that redraws between the find and the read (a live table does)
    is read again."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(5):
        found = find_all(driver, css)
        try:
            return found[0].text if found else ""
        except StaleElementReferenceException:
            continue
    return ""


def points(driver, css: str) -> int:
    """The steps a chart holds, as the chart writes them on its container."""
    return int(
        driver.execute_script(
            "const c = document.querySelector(arguments[0]); return c ? Number(c.dataset.points) : 0;", css
        )
    )


def sign_in_as(driver, url: str, key: str) -> None:
    """Signed in without the form (the sign-in test has its own): the key where the page keeps it."""
    driver.get(f"{url}/")
    driver.execute_script("sessionStorage.setItem('polytune.apiKey', arguments[0]);", key)
