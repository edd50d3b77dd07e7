"""The dashboard's evals pages in headless Chromium: the evals list, an eval's runs side by side
with their pass rates per criterion, and a run's output items (the sample next to the item it
answered), filtered to the failed ones; reached from the run's report_url."""

from __future__ import annotations

import pytest

from tests.dashboard.browser import find, shot, sign_in_as, text_of
from tests.helpers import wait_for
from tests.helpers import EXACT_GRADER as EXACT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.sqlite_only,
    pytest.mark.filterwarnings("ignore:The Evals API is deprecated:DeprecationWarning"),
]
CONFIG = {"type": "custom", "item_schema": {"type": "object"}, "include_sample_schema": True}


def _rows(outputs: list[str]) -> list[dict]:
    return [
        {"item": {"question": f"q{i}", "answer": "Quillon."}, "sample": {"output_text": out}}
        for i, out in enumerate(outputs)
    ]


def test_the_evals_pages_show_runs_side_by_side_and_their_items(server, client, browser):
    ev = client.evals.create(name="dashboard eval", data_source_config=CONFIG, testing_criteria=[EXACT])
    runs = [
        client.evals.runs.create(
            ev.id,
            name=name,
            data_source={"type": "jsonl", "source": {"type": "file_content", "content": _rows(outputs)}},
        )
        for name, outputs in (
            ("before", ["Paris.", "Rome.", "Quillon.", "Oslo."]),
            ("after", ["Quillon.", "Quillon.", "Quillon.", "Oslo."]),
        )
    ]
    for run in runs:
        wait_for(lambda r=run: client.evals.runs.retrieve(r.id, eval_id=ev.id).status == "completed", timeout=60)

    # Signed in the way the other dashboard tests are (the form has its own test): clicking the
    # form and navigating at once raced the key check in CI.
    sign_in_as(browser, server.url, server.key_a)
    browser.get(f"{server.url}/#/evals")
    find(browser, f'#evals-table tr[data-id="{ev.id}"]')
    assert "exact (string_check)" in text_of(browser, "#evals-table")
    shot(browser, "20-evals")

    browser.get(f"{server.url}/#/evals/{ev.id}")
    before, after = (f'#runs-table tr[data-id="{r.id}"]' for r in runs)
    find(browser, before)
    assert "25%" in text_of(browser, before) and "75%" in text_of(browser, after)
    shot(browser, "21-eval-runs")

    browser.get(runs[1].report_url + "?status=fail")
    find(browser, "#items-table tbody tr")
    wait_for(lambda: "Oslo." in text_of(browser, "#items-table"), timeout=30)
    assert 'Quillon."' in text_of(browser, "#items-table") and "pass" not in text_of(browser, "#items-table tbody")
    assert "75%" in text_of(browser, "#run-head")
    shot(browser, "22-eval-run")
