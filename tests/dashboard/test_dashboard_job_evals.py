"""The job page's Evals table in headless Chromium: a short fine-tune that asked for an eval
(polytune_eval, each checkpoint too) shows, once its runs finish, one row per run — the
checkpoint's and the fine-tuned model's — with its pass rate and a link to the run's page."""

from __future__ import annotations

import io

import pytest

from tests.dashboard.browser import find, shot, sign_in_as, text_of
from tests.helpers import chat_jsonl, wait_done, wait_for
from tests.helpers import EXACT_GRADER as EXACT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.sqlite_only,
    pytest.mark.filterwarnings("ignore:The Evals API is deprecated:DeprecationWarning"),
]


def test_the_job_page_shows_its_eval_results(server, client, browser):
    ev = client.evals.create(
        name="job page eval",
        data_source_config={"type": "custom", "item_schema": {"type": "object"}, "include_sample_schema": True},
        testing_criteria=[EXACT],
    )
    items = [{"item": {"question": f"What is {i} + {i}?", "answer": str(2 * i)}} for i in range(3)]
    after = {
        "eval_id": ev.id,
        "checkpoints": True,
        "data_source": {
            "type": "completions",
            "source": {"type": "file_content", "content": items},
            "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{item.question}}"}]},
            "sampling_params": {"temperature": 0, "max_completion_tokens": 4},
        },
    }
    training = client.files.create(file=("train.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=training.id,
        hyperparameters={"n_epochs": 1, "batch_size": 4},
        extra_body={"polytune_eval": after},
    )
    job = wait_done(client, job.id, timeout=600)
    assert job.status == "succeeded", job.error
    checkpoints = [c.fine_tuned_model_checkpoint for c in client.fine_tuning.jobs.checkpoints.list(job.id)]
    # One result event per run: each checkpoint's and the fine-tuned model's.
    finished = wait_for(
        lambda: (lambda found: found if len(found) == len(set(checkpoints) | {job.fine_tuned_model}) else None)(
            [e for e in client.fine_tuning.jobs.list_events(job.id, limit=100) if e.data.get("run_id")]
        ),
        timeout=180,
    )
    assert {e.data["model"] for e in finished} == set(checkpoints) | {job.fine_tuned_model}

    sign_in_as(browser, server.url, server.key_a)
    browser.get(f"{server.url}/#/jobs/{job.id}")
    find(browser, "#job-evals-table")
    table = text_of(browser, "#job-evals-table")
    for e in finished:
        assert e.data["run_id"] in table and e.data["model"] in table
    assert "exact: " in table and "%" in table
    link = find(browser, f'#job-evals-table a[href="#/evals/{ev.id}/runs/{finished[0].data["run_id"]}"]')
    browser.execute_script("document.getElementById('job-evals').scrollIntoView()")
    shot(browser, "23-job-evals")
    link.click()
    wait_for(lambda: finished[0].data["run_id"] in text_of(browser, "main"))
