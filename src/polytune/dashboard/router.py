"""Serves the dashboard: its page at `/` and its assets under `/dashboard/`. The pages hold no
server-side logic; they sign in with an API key and call the same /v1 API as the SDKs."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
ASSETS_PREFIX = "/dashboard"

router = APIRouter()


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    # no-cache: a browser revalidates the page, so an upgraded server's pages are picked up.
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def mount_dashboard(app: FastAPI) -> None:
    app.include_router(router)
    # html=True: /dashboard/ serves index.html as well, for anyone who bookmarks it.
    app.mount(ASSETS_PREFIX, StaticFiles(directory=STATIC, html=True), name="dashboard")
