"""The dashboard in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven
by Selenium): sign in, watch a running job's loss curve gain points, cancel the job from its
page, see the status change; the files and models pages, with a chat in the playground; a
reinforcement job's reward curve and its pause / resume / cancel buttons. A screenshot of each
page is saved under test-artifacts/dashboard/. One browser for the module (conftest.py)."""

from __future__ import annotations

import io
import json

import pytest

from polytune.services.keys import KEY_PREFIX
from tests.dashboard.browser import find, find_all, points, shot, sign_in_as, text_of
from tests.helpers import chat_jsonl, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]
By = pytest.importorskip("selenium.webdriver.common.by").By
Select = pytest.importorskip("selenium.webdriver.support.ui").Select


def chart_points(driver) -> int:
    # What the page's loss chart holds: the steps in uPlot's data, as the chart writes them out.
    return points(driver, "#loss-chart")


def upload(client, n: int) -> str:
    return client.files.create(file=("train.jsonl", io.BytesIO(chat_jsonl(n))), purpose="fine-tune").id


def test_dashboard_signs_in_follows_a_job_and_cancels_it(server, client, browser):
    train, valid = upload(client, 12), upload(client, 4)
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=train,
        validation_file=valid,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 30, "batch_size": 2}}},
    )

    # Signed out, every page leads to the sign-in form; a wrong key is refused there. The form
    # shows the prefix real keys have, and no navigation (none of it works signed out).
    browser.get(f"{server.url}/")
    browser.execute_script("sessionStorage.clear();")
    browser.get(f"{server.url}/#/jobs/{job.id}")
    key = find(browser, "#api-key")
    assert key.get_attribute("placeholder").startswith(KEY_PREFIX)
    assert not browser.find_element(By.ID, "nav").is_displayed()
    assert not browser.find_element(By.ID, "sign-out").is_displayed()
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

    # The loss axis is labelled; only the actions a running job allows are shown.
    assert find(browser, "#loss-chart").get_attribute("data-axes").startswith("step,loss")
    assert browser.find_element(By.ID, "pause-job").is_displayed()
    assert not browser.find_element(By.ID, "resume-job").is_displayed()

    # Cancel from the page: the status changes there and in the API, and the buttons follow:
    # a finished job shows none.
    browser.find_element(By.ID, "cancel-job").click()
    wait_for(lambda: browser.find_element(By.ID, "job-status").get_attribute("data-status") == "cancelled")
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    assert not [b for b in find_all(browser, ".page-head .actions button") if b.is_displayed()]
    wait_for(lambda: "cancelled by request" in text_of(browser, "#job-events"))
    shot(browser, "04-job-cancelled")

    # Files: each file with its validation status and what validation found.
    browser.find_element(By.CSS_SELECTOR, '#nav a[data-page="files"]').click()
    file_row = find(browser, f'#files-table tr[data-id="{train}"]')
    details = client.files.retrieve(train).status_details
    assert "processed" in file_row.text and details and details in file_row.text
    shot(browser, "05-files")

    # Models and the playground: a chat with the base model through /v1/chat/completions. The
    # playground offers chat models only (the image models are in the table, not the picker).
    browser.find_element(By.CSS_SELECTOR, '#nav a[data-page="models"]').click()
    picker = Select(find(browser, "#chat-model"))
    offered = {o.get_attribute("value") for o in picker.options}
    assert "polytune-tiny" in offered and "polytune-tiny-diffusion" not in offered
    assert "polytune-tiny-diffusion" in text_of(browser, "#models-table")
    assert "Chat models only" in text_of(browser, "#chat-note")
    picker.select_by_value("polytune-tiny")
    browser.find_element(By.ID, "chat-max-tokens").clear()
    browser.find_element(By.ID, "chat-max-tokens").send_keys("8")
    browser.find_element(By.ID, "chat-input").send_keys("Question number 3?")
    browser.find_element(By.ID, "chat-send").click()
    reply = find(browser, "#chat-log .msg-assistant", timeout=120)
    assert reply.text.startswith("assistant")
    assert not browser.find_elements(By.CSS_SELECTOR, "#chat-log .error")
    shot(browser, "06-models-playground")

    # A reply with no text says so. The server's reply is real; the page's fetch blanks its
    # content on the way in, since the tiny model's sampled reply is empty only by chance.
    browser.execute_script("""
      const real = window.fetch;
      window.fetch = async (url, init) => {
        const res = await real(url, init);
        if (!String(url).endsWith('/chat/completions')) return res;
        const body = await res.json();
        body.choices[0].message.content = '';
        return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
      };""")
    browser.find_element(By.ID, "chat-input").send_keys("Say nothing.")
    browser.find_element(By.ID, "chat-send").click()
    assert "empty reply" in find(browser, "#chat-log .empty-reply", timeout=120).text


def reward_points(driver) -> int:
    return points(driver, "#reward-chart")


def status_on_page(driver) -> str:
    return driver.find_element(By.ID, "job-status").get_attribute("data-status")


def test_reinforcement_job_page_draws_rewards_and_pauses_resumes_cancels(server, client, browser):
    rows = [
        {"messages": [{"role": "user", "content": f"Question {i}: what is the magic number?"}], "answer": "7"}
        for i in range(12)
    ]
    train = client.files.create(
        file=("rl.jsonl", io.BytesIO("\n".join(map(json.dumps, rows)).encode())), purpose="fine-tune"
    ).id
    grader = {
        "type": "string_check",
        "name": "answer",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "operation": "like",
    }
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=train,
        method={
            "type": "reinforcement",
            "reinforcement": {
                "grader": grader,
                "hyperparameters": {
                    "n_epochs": 10,
                    "batch_size": 2,
                    "compute_multiplier": 2,
                    "max_completion_tokens": 8,
                },
            },
        },
    )

    # Signed in already (the sign-in form has its own test): the key put where the page keeps it.
    sign_in_as(browser, server.url, server.key_a)
    browser.get(f"{server.url}/#/jobs/{job.id}")
    first = wait_for(lambda: reward_points(browser), timeout=90)
    wait_for(lambda: reward_points(browser) > first, timeout=60)
    assert "reward max" in text_of(browser, "#reward-chart")
    assert "grader" in text_of(browser, "#job-hyperparameters")
    shot(browser, "07-job-reinforcement")

    # Pause: the worker saves a checkpoint and stops; Resume queues it again; then Cancel.
    browser.find_element(By.ID, "pause-job").click()
    wait_for(lambda: status_on_page(browser) == "paused", timeout=60)
    assert browser.find_element(By.ID, "resume-job").is_displayed()
    assert not browser.find_element(By.ID, "pause-job").is_displayed()
    browser.find_element(By.ID, "resume-job").click()
    wait_for(lambda: status_on_page(browser) in ("queued", "running"))
    browser.find_element(By.ID, "cancel-job").click()
    wait_for(lambda: status_on_page(browser) == "cancelled")
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    shot(browser, "08-job-reinforcement-cancelled")
