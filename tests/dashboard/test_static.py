"""The dashboard's page and assets come from the server itself (no CDN): `/` is the page, every
script and stylesheet it names is served, and every module a script imports resolves."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.sqlite_only  # static files: the database plays no part

IMPORT = re.compile(r"""^import\s[^;]*?from\s+"(\.[^"]+)";""", re.M | re.S)


def test_page_and_every_asset_it_needs_are_served(server):
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', page.text)
    assert "/dashboard/vendor/uplot/uPlot.iife.min.js" in assets and "/dashboard/js/app.js" in assets
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text), "the page must not load anything remote"

    seen, todo = set(), list(assets)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        res = httpx.get(f"{server.url}{path}")
        assert res.status_code == 200, path
        if path.endswith(".js") and "/vendor/" not in path:
            assert "javascript" in res.headers["content-type"], path
            base = path.rsplit("/", 1)[0]
            for rel in IMPORT.findall(res.text):
                todo.append(str(httpx.URL(f"http://x{base}/").join(rel).path))
    # the module graph was walked, not just the entry point
    assert {"/dashboard/js/views/job.js", "/dashboard/js/chart.js", "/dashboard/js/api.js"} <= seen
    lic = httpx.get(f"{server.url}/dashboard/vendor/uplot/LICENSE")
    assert lic.status_code == 200 and "MIT" in lic.text


def test_the_api_still_answers_beside_the_dashboard(server):
    # the page's mount must not shadow the API or its error envelope
    res = httpx.get(f"{server.url}/v1/fine_tuning/jobs", headers={"Authorization": "Bearer nope"})
    assert res.status_code == 401 and "error" in res.json()
    assert httpx.get(f"{server.url}/dashboard/nope.js").status_code == 404
