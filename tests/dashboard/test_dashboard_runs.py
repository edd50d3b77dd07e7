"""Runs made and compared in the dashboard, in a real headless Chromium: a job created from the
New job page (an upload whose validation report keeps its line breaks, then a good file, a
model, a method, hyperparameters left at auto or set), followed to its end; its result file
downloaded, and a checkpoint's weights from its row; a failed job's page and row; the jobs
table's columns; two runs compared; the models table linking a model to its job, under its
organization's name, its weights downloaded in a format picked there and a format the model
cannot have refused with the API's message. Screenshots go under
test-artifacts/dashboard/."""

from __future__ import annotations

import io
import re

import httpx
import pytest

from tests.dashboard.browser import find, find_all, points, shot, sign_in_as, text_of
from tests.helpers import chat_jsonl, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]
By = pytest.importorskip("selenium.webdriver.common.by").By
Select = pytest.importorskip("selenium.webdriver.support.ui").Select


def status_on_page(driver) -> str:
    return find(driver, "#job-status").get_attribute("data-status") or ""


def visible_actions(driver) -> list[str]:
    return [b.text for b in find_all(driver, ".page-head .actions button") if b.is_displayed()]


def api_download(server, model: str, fmt: str | None = None) -> tuple[str, bytes]:
    """The weights as the API serves them, and the file name it gives them."""
    got = httpx.get(
        f"{server.url}/v1/models/{model}/content",
        params={"format": fmt} if fmt else None,
        headers={"Authorization": f"Bearer {server.key_a}"},
        timeout=300,
    )
    assert got.status_code == 200, got.text
    return re.search(r'filename="([^"]+)"', got.headers["content-disposition"]).group(1), got.content


def saved_as(driver, name: str, size: int) -> bytes:
    """A download the page started, once the browser has written all of it under `name`."""
    path = driver.downloads / name
    wait_for(lambda: path.exists() and path.stat().st_size == size, timeout=120)
    return path.read_bytes()


def test_create_a_job_from_the_dashboard_follow_it_and_compare_it(server, client, browser, tmp_path):
    # Beside it, made through the SDK: a run to compare with (one epoch, not two; a validation
    # file), and a job that fails (a reinforcement job needs prompts with a reference, not chat).
    other_file = client.files.create(file=("other.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune").id
    valid_file = client.files.create(file=("valid.jsonl", io.BytesIO(chat_jsonl(4))), purpose="fine-tune").id
    other = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=other_file,
        validation_file=valid_file,
        method={
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4, "lora": False}},
        },
    )
    grader = {
        "type": "string_check",
        "name": "g",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "operation": "eq",
    }
    failed = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=other_file,
        method={"type": "reinforcement", "reinforcement": {"grader": grader}},
    )

    sign_in_as(browser, server.url, server.key_a)
    browser.get(f"{server.url}/#/jobs/new")
    # Every hyperparameter starts at auto, with the rule auto follows beside it.
    epochs = find(browser, "#hp-n_epochs")
    assert epochs.get_attribute("value") == "auto" and "auto:" in text_of(browser, "#job-hp")
    offered = {o.get_attribute("value") for o in Select(find(browser, "#job-model")).options}
    assert "polytune-tiny" in offered and "polytune-tiny-diffusion" not in offered

    # A bad file: the report comes back with the upload, one problem a line.
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(chat_jsonl(3) + b"{not json\n" + chat_jsonl(1) + b"[1, 2]\n")
    find(browser, "#job-upload-file").send_keys(str(bad))
    browser.find_element(By.CSS_SELECTOR, "#job-upload button[type=submit]").click()
    report = find(browser, '#job-upload-report .file-report[data-status="error"] .report', timeout=60)
    lines = report.text.splitlines()
    assert len(lines) >= 3 and any("line 4" in x for x in lines) and any("line 6" in x for x in lines)
    assert report.value_of_css_property("white-space") == "pre-wrap"
    shot(browser, "09-new-job-bad-file")

    # A good one is picked as the training file; then the job, two epochs, with a suffix.
    good = tmp_path / "good.jsonl"
    good.write_bytes(chat_jsonl(12))
    find(browser, "#job-upload-file").send_keys(str(good))
    browser.find_element(By.CSS_SELECTOR, "#job-upload button[type=submit]").click()
    report = find(browser, '#job-upload-report .file-report[data-status="processed"]', timeout=60)
    train = browser.find_element(By.ID, "job-training-file").get_attribute("value")
    assert train.startswith("file-") and train in report.text and "12 examples" in report.text
    Select(browser.find_element(By.ID, "job-method")).select_by_value("supervised")
    epochs.clear()
    epochs.send_keys("2")
    browser.find_element(By.ID, "hp-batch_size").clear()
    browser.find_element(By.ID, "hp-batch_size").send_keys("4")
    browser.find_element(By.ID, "job-suffix").send_keys("dash")
    shot(browser, "10-new-job-form")
    browser.find_element(By.ID, "create-job").click()

    # Then the job's page; the API holds what the form sent, the rest at auto (resolved).
    job_id = wait_for(
        lambda: browser.execute_script(
            "const m = location.hash.match(/^#\\/jobs\\/(ftjob-[^/]+)$/); return m && m[1];"
        ),
        timeout=30,
    )
    job = client.fine_tuning.jobs.retrieve(job_id)
    assert (job.user_provided_suffix, job.training_file, job.hyperparameters.n_epochs) == ("dash", train, 2)
    wait_for(lambda: status_on_page(browser) == "succeeded", timeout=240)
    done = client.fine_tuning.jobs.retrieve(job_id)
    assert visible_actions(browser) == []  # a finished job offers no Cancel / Pause / Resume
    wait_for(lambda: points(browser, "#loss-chart") >= 6, timeout=30)
    axes = find(browser, "#loss-chart").get_attribute("data-axes")
    assert axes.startswith("step,loss")
    logged_accuracy = any(
        "train_mean_token_accuracy" in (e.data or {})
        for e in client.fine_tuning.jobs.list_events(job_id, limit=100).data
    )
    if logged_accuracy:  # the trainer logs token accuracy: drawn on its own axis
        assert "train accuracy" in text_of(browser, "#loss-chart") and axes.endswith("accuracy")
    shot(browser, "11-new-job-succeeded")

    # Its result file downloads through the page (the key goes in a header, not the link).
    results = done.result_files[0]
    find(browser, '#job-summary button.download[data-path^="/files/"]').click()
    saved = browser.downloads / f"{job_id}-results.csv"
    wait_for(lambda: saved.exists() and saved.stat().st_size > 0, timeout=30)
    assert saved.read_bytes() == client.files.content(results).read()

    # A checkpoint's weights download from its row (the model's default format), as the API's.
    ckpt = client.fine_tuning.jobs.checkpoints.list(job_id).data[0].fine_tuned_model_checkpoint
    find(browser, f'#checkpoints-table button.download[data-model="{ckpt}"]').click()
    name, weights = api_download(server, ckpt)
    assert saved_as(browser, name, len(weights)) == weights

    # A failed job: its error, no empty chart, no buttons.
    failed_error = wait_for(lambda: client.fine_tuning.jobs.retrieve(failed.id).error, timeout=120).message
    browser.get(f"{server.url}/#/jobs/{failed.id}")
    wait_for(lambda: status_on_page(browser) == "failed")
    # The error keeps its line breaks: a data error names one bad line a line.
    assert "\n".join(failed_error.splitlines()[:3]) in text_of(browser, "#job-summary")
    assert not browser.find_element(By.ID, "loss-chart").is_displayed()
    assert visible_actions(browser) == []
    shot(browser, "12-job-failed")

    # The jobs table: suffix, training file, last loss; the failed job's error.
    wait_for(lambda: client.fine_tuning.jobs.retrieve(other.id).status == "succeeded", timeout=240)
    other_model = client.fine_tuning.jobs.retrieve(other.id).fine_tuned_model
    browser.get(f"{server.url}/#/jobs")
    row = f'#jobs-table tr[data-id="{job_id}"]'
    wait_for(lambda: "succeeded" in text_of(browser, row))
    assert "dash" in text_of(browser, row) and train in text_of(browser, row)
    loss = wait_for(lambda: text_of(browser, f"{row} td.loss"), timeout=30)
    assert float(loss) > 0
    assert failed_error.splitlines()[0] in text_of(browser, f'#jobs-table tr[data-id="{failed.id}"] td.outcome')
    shot(browser, "13-jobs-table")

    # Compare the two runs: both loss curves on one chart, their settings side by side.
    for jid in (job_id, other.id):
        browser.find_element(By.CSS_SELECTOR, f'#jobs-table tr[data-id="{jid}"] input.pick').click()
    browser.find_element(By.ID, "compare-jobs").click()
    wait_for(lambda: points(browser, "#compare-loss") >= 6, timeout=30)
    legend = text_of(browser, "#compare-loss")
    assert f"{job_id} train" in legend and f"{other.id} train" in legend and f"{other.id} validation" in legend
    assert "differs" in find(browser, '#compare-settings tr[data-key="n_epochs"]').get_attribute("class")
    assert "differs" not in find(browser, '#compare-settings tr[data-key="batch_size"]').get_attribute("class")
    shot(browser, "14-compare")

    # Models: the fine-tuned model links to the job that made it, owned by org-a (its name).
    browser.get(f"{server.url}/#/models")
    model_row = find(browser, f'#models-table tr[data-id="{done.fine_tuned_model}"]')
    assert model_row.find_element(By.CSS_SELECTOR, f'a[href="#/jobs/{job_id}"]')
    assert "org-a" in model_row.text and job.organization_id not in model_row.text
    assert text_of(browser, "#org-name") == "org-a"

    # Its weights in the format picked beside it (merged: any fine-tune has it), as the API's.
    Select(model_row.find_element(By.CSS_SELECTOR, "select.download-format")).select_by_value("merged")
    model_row.find_element(By.CSS_SELECTOR, "button.download").click()
    name, weights = api_download(server, done.fine_tuned_model, "merged")
    assert name.endswith("-merged.tar") and saved_as(browser, name, len(weights)) == weights
    # The other run is a full fine-tune: no adapter, and the page says so with the API's words.
    other_row = find(browser, f'#models-table tr[data-id="{other_model}"]')
    Select(other_row.find_element(By.CSS_SELECTOR, "select.download-format")).select_by_value("adapter")
    other_row.find_element(By.CSS_SELECTOR, "button.download").click()
    refused = find(browser, f'#models-table tr[data-id="{other_model}"] .error').text
    assert "full fine-tune" in refused and "(param: format)" in refused
    shot(browser, "15-models")
