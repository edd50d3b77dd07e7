"""The dashboard in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven
by Selenium): sign in, watch a running job's loss curve gain points, cancel the job from its
page, see the status change; the files and models pages, with a chat in the playground; a
reinforcement job's reward curve and its pause / resume / cancel buttons. A screenshot of each page is saved under test-artifacts/dashboard/."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import chat_jsonl, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("no headless browser: install Debian's packages `chromium` and `chromium-driver` "
                "(`make venv` does as root)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the `test` extra")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]
ARTIFACTS = Path(os.environ.get("POLYTUNE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "dashboard"


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1100"):
        options.add_argument(arg)
    # Both paths given: Selenium Manager has nothing to look up or download.
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def find(driver, css: str, timeout: float = 30):
    return wait_for(lambda: next(iter(driver.find_elements(By.CSS_SELECTOR, css)), None), timeout=timeout)


def text_of(driver, css: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else ""


def chart_points(driver) -> int:
    # What the page's loss chart holds: the steps in uPlot's data, as the chart writes them out.
    return int(driver.execute_script("const c = document.querySelector('#loss-chart');"
                                     " return c ? Number(c.dataset.points) : 0;"))


def upload(client, n: int) -> str:
    return client.files.create(file=("train.jsonl", io.BytesIO(chat_jsonl(n))), purpose="fine-tune").id


def test_dashboard_signs_in_follows_a_job_and_cancels_it(server, client, browser):
    train, valid = upload(client, 12), upload(client, 4)
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=train, validation_file=valid,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 30, "batch_size": 2}}})

    # Signed out, every page leads to the sign-in form; a wrong key is refused there.
    browser.get(f"{server.url}/#/jobs/{job.id}")
    key = find(browser, "#api-key")
    shot(browser, "01-sign-in")
    key.send_keys("sk-wrong")
    browser.find_element(By.CSS_SELECTOR, "#sign-in button").click()
    assert "not accepted" in find(browser, "#sign-in .error").text
    key.clear()
    key.send_keys(server.key_a)
    browser.find_element(By.CSS_SELECTOR, "#sign-in button").click()

    # The jobs table lists the job; the status filter hides it under another status.
    row = f'#jobs-table tr[data-id="{job.id}"]'
    find(browser, row)
    wait_for(lambda: "running" in text_of(browser, row), timeout=60)
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("succeeded")
    wait_for(lambda: not browser.find_elements(By.CSS_SELECTOR, row))
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("running")
    assert "polytune-tiny" in find(browser, row).text and "supervised" in text_of(browser, row)
    shot(browser, "02-jobs")

    # The job page: its loss curve gains points while it trains.
    browser.find_element(By.CSS_SELECTOR, f'{row} a[href="#/jobs/{job.id}"]').click()
    find(browser, "#loss-chart canvas")
    first = wait_for(lambda: chart_points(browser), timeout=60)
    wait_for(lambda: chart_points(browser) > first, timeout=60)
    # Validation runs each epoch (6 steps here): then the legend names both curves.
    wait_for(lambda: "validation loss" in text_of(browser, "#loss-chart"), timeout=60)
    assert "n_epochs" in text_of(browser, "#job-hyperparameters")
    assert find(browser, "#job-status").get_attribute("data-status") == "running"
    shot(browser, "03-job-running")

    # Cancel from the page: the status changes there and in the API, and the buttons follow.
    browser.find_element(By.ID, "cancel-job").click()
    wait_for(lambda: browser.find_element(By.ID, "job-status").get_attribute("data-status") == "cancelled")
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    assert not browser.find_element(By.ID, "cancel-job").is_enabled()
    assert not browser.find_element(By.ID, "pause-job").is_enabled()
    wait_for(lambda: "cancelled by request" in text_of(browser, "#job-events"))
    shot(browser, "04-job-cancelled")

    # Files: each file with its validation status and what validation found.
    browser.find_element(By.CSS_SELECTOR, '#nav a[data-page="files"]').click()
    file_row = find(browser, f'#files-table tr[data-id="{train}"]')
    details = client.files.retrieve(train).status_details
    assert "processed" in file_row.text and details and details in file_row.text
    shot(browser, "05-files")

    # Models and the playground: a chat with the base model through /v1/chat/completions.
    browser.find_element(By.CSS_SELECTOR, '#nav a[data-page="models"]').click()
    Select(find(browser, "#chat-model")).select_by_value("polytune-tiny")
    browser.find_element(By.ID, "chat-max-tokens").clear()
    browser.find_element(By.ID, "chat-max-tokens").send_keys("8")
    browser.find_element(By.ID, "chat-input").send_keys("Question number 3?")
    browser.find_element(By.ID, "chat-send").click()
    reply = find(browser, "#chat-log .msg-assistant", timeout=120)
    assert reply.text.startswith("assistant")
    assert not browser.find_elements(By.CSS_SELECTOR, "#chat-log .error")
    shot(browser, "06-models-playground")


def reward_points(driver) -> int:
    return int(driver.execute_script("const c = document.querySelector('#reward-chart');"
                                     " return c ? Number(c.dataset.points) : 0;"))


def status_on_page(driver) -> str:
    return driver.find_element(By.ID, "job-status").get_attribute("data-status")


def test_reinforcement_job_page_draws_rewards_and_pauses_resumes_cancels(server, client, browser):
    rows = [{"messages": [{"role": "user", "content": f"Question {i}: what is the magic number?"}], "answer": "7"}
            for i in range(12)]
    train = client.files.create(file=("rl.jsonl", io.BytesIO("\n".join(map(json.dumps, rows)).encode())),
                                purpose="fine-tune").id
    grader = {"type": "string_check", "name": "answer", "input": "{{sample.output_text}}",
              "reference": "{{item.answer}}", "operation": "like"}
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=train,
        method={"type": "reinforcement", "reinforcement": {"grader": grader, "hyperparameters": {
            "n_epochs": 10, "batch_size": 2, "compute_multiplier": 2, "max_completion_tokens": 8}}})

    # Signed in already (the sign-in form has its own test): the key put where the page keeps it.
    browser.get(f"{server.url}/")
    browser.execute_script("sessionStorage.setItem('polytune.apiKey', arguments[0]);", server.key_a)
    browser.get(f"{server.url}/#/jobs/{job.id}")
    first = wait_for(lambda: reward_points(browser), timeout=90)
    wait_for(lambda: reward_points(browser) > first, timeout=60)
    assert "reward max" in text_of(browser, "#reward-chart")
    assert "grader" in text_of(browser, "#job-hyperparameters")
    shot(browser, "07-job-reinforcement")

    # Pause: the worker saves a checkpoint and stops; Resume queues it again; then Cancel.
    browser.find_element(By.ID, "pause-job").click()
    wait_for(lambda: status_on_page(browser) == "paused", timeout=60)
    assert browser.find_element(By.ID, "resume-job").is_enabled()
    assert not browser.find_element(By.ID, "pause-job").is_enabled()
    browser.find_element(By.ID, "resume-job").click()
    wait_for(lambda: status_on_page(browser) in ("queued", "running"))
    browser.find_element(By.ID, "cancel-job").click()
    wait_for(lambda: status_on_page(browser) == "cancelled")
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    shot(browser, "08-job-reinforcement-cancelled")
