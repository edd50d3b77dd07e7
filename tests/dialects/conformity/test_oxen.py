"""Conformity walk of Oxen.ai's create-fine-tune document over plain HTTP (Oxen has no
fine-tune SDK): every field of oxen_fields.py, each refusal a 400 in Oxen's envelope naming
the field as sent, every response field present and typed (created_at and updated_at are
date-times), in every polytune status. In process; no job trains (each is held in
`created`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.training.image_support import COLOURS, shape_png

from .oxen_fields import IMAGE, OXEN_REQUEST, OXEN_RESPONSE, OXEN_STATUSES, TEXT
from .support import App, app_in_process, case_id, cases, check_response_fields, drop, get, matches, merge, put

REPO = "ada/data"
QA = "question,answer\n" + "".join(f"What is {i} times 7?,It is {i * 7}\n" for i in range(12))
IMAGES = "image,caption\nimages/red.png,a red circle\nimages/blue.png,a blue circle\n"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with app_in_process(tmp_path_factory.mktemp("oxen-conformity")) as app:
        made = app.http.post("/api/repos", json={"namespace": "ada", "name": "data"}, headers=app.headers())
        assert made.status_code == 200, made.text
        for path, data in (
            ("data/qa.csv", QA.encode()),
            ("data/images.csv", IMAGES.encode()),
            ("images/red.png", shape_png(COLOURS["red"], "circle")),
            ("images/blue.png", shape_png(COLOURS["blue"], "circle")),
        ):
            upload(app, REPO, path, data)
        yield app


def upload(api: App, repo: str, path: str, data: bytes, key: str | None = None) -> None:
    """What RemoteRepo.upload sends: multipart files[], name, email, message."""
    directory, _, filename = path.rpartition("/")
    r = api.http.put(
        f"/api/repos/{repo}/file/main/{directory}",
        files={"files[]": (filename, data)},
        data={"name": "Ada", "email": "ada@example.com", "message": f"add {path}"},
        headers=api.headers(key),
    )
    assert r.status_code == 200, r.text


def create(api: App, body: dict[str, Any], key: str | None = None, repo: str = REPO):
    return api.http.post(f"/api/repos/{repo}/fine_tunes", json=body, headers=api.headers(key))


@pytest.mark.parametrize("case", cases(OXEN_REQUEST), ids=case_id)
def test_oxen_request_field(api, case):
    f, kind, value = case
    body: dict[str, Any] = merge(TEXT, f.base)
    body = drop(body, f.path) if kind in ("default", "required") else put(body, f.path, value)
    r = create(api, body)
    if kind in ("outside", "required"):
        assert r.status_code == 400, (r.status_code, r.text)
        out = r.json()
        assert out["status"] == "error" and out["status_message"], out
        param = out["error"].get("param") or ""
        assert param == f.named or param.startswith((f.named + ".", f.named + "[")), (f.named, out)
        if param.startswith("training_params."):  # the message names the field as sent, too
            assert param.split(".", 1)[1] in out["error"]["detail"], out
        return
    assert r.status_code == 201, r.text
    out = r.json()
    assert check_response_fields(out, OXEN_RESPONSE) == [], out
    if f.echo != "":
        shown = get(out, f.shown_at)
        assert matches(value, shown) if kind == "default" else shown == value, (f.shown_at, shown)


def test_training_params_take_any_key_and_the_job_warns(api):
    r = create(api, merge(TEXT, {"training_params": {"epochs": 1, "warmup": 3, "scheduler": "cosine"}}))
    assert r.status_code == 201, r.text
    ft = r.json()["fine_tune"]
    assert "warmup" not in ft["training_params"]
    events = api.http.get(f"/v1/fine_tuning/jobs/{ft['id']}/events", headers=api.headers()).json()["data"]
    assert any("scheduler, warmup" in e["message"] for e in events), events


def _datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_every_response_field_in_every_status(api):
    from polytune.domain.job import JobStatus

    ids = [create(api, TEXT).json()["fine_tune"]["id"], create(api, IMAGE).json()["fine_tune"]["id"]]
    for job_id in ids:
        for status in JobStatus:
            api.set_status(job_id, status.value)
            for path in (f"/api/repos/{REPO}/fine_tunes/{job_id}", f"/api/repos/{REPO}/fine_tunes"):
                out = api.http.get(path, headers=api.headers()).json()
                ft = out["fine_tune"] if "fine_tune" in out else next(x for x in out["fine_tunes"] if x["id"] == job_id)
                assert check_response_fields({**out, "fine_tune": ft}, OXEN_RESPONSE) == [], out
                assert ft["status"] in OXEN_STATUSES and out["status"] == "success", ft
                _datetime(ft["created_at"]), _datetime(ft["updated_at"])
            listed = api.http.get(
                f"/api/repos/{REPO}/fine_tunes", params={"status": get(ft, "status")}, headers=api.headers()
            ).json()
            assert job_id in [x["id"] for x in listed["fine_tunes"]]


@pytest.fixture
def api_db(tmp_path, database_url):
    """An app of its own on every database backend (the public-fine-tune filter is SQL on the
    job's JSON spec, which SQLite and PostgreSQL spell differently)."""
    with app_in_process(tmp_path, database_url) as app:
        yield app


def test_a_public_fine_tune_of_a_private_repository_is_readable_by_other_organizations(api_db):
    """The document's `is_public` (the fine-tune's own, beside the repository's): another
    organization reads a public fine-tune of a private repository (its record, progress,
    checkpoints, and the folder its weights are published to), read-only; nothing else of it."""
    api = api_db
    repo = "ada/models"
    assert (
        api.http.post("/api/repos", json={"namespace": "ada", "name": "models"}, headers=api.headers()).status_code
        == 200
    )
    upload(api, repo, "data/qa.csv", QA.encode())
    public = create(api, {**TEXT, "is_public": True}, repo=repo).json()["fine_tune"]
    private = create(api, TEXT, repo=repo).json()["fine_tune"]
    assert public["is_public"] is True and private["is_public"] is False
    for job in (public, private):  # what the worker publishes when the job succeeds, in place
        upload(api, repo, f"models/{job['id']}/adapter_config.json", b"{}")
    b = api.headers(api.key_b)

    def read(path: str) -> int:
        return api.http.get(f"/api/repos/{repo}{path}", headers=b).status_code

    assert read("") == 404 and read("/file/main/data/qa.csv") == 404
    listed = api.http.get(f"/api/repos/{repo}/fine_tunes", headers=b).json()
    assert [ft["id"] for ft in listed["fine_tunes"]] == [public["id"]] and listed["total_entries"] == 1
    for suffix in ("", "/train_status", "/checkpoints"):
        assert read(f"/fine_tunes/{public['id']}{suffix}") == 200, suffix
        assert read(f"/fine_tunes/{private['id']}{suffix}") == 404, suffix
    got = api.http.get(f"/api/repos/{repo}/fine_tunes/{public['id']}", headers=b).json()["fine_tune"]
    assert got["is_public"] is True and got["repository"] == repo
    assert read(f"/file/main/models/{public['id']}/adapter_config.json") == 200
    assert read(f"/file/main/models/{private['id']}/adapter_config.json") == 404
    assert read(f"/file/main/models/{public['id']}/%2E%2E/%2E%2E/data/qa.csv") in (400, 404)
    # Read-only: org B can't run it, nor create in (or upload to) the repository.
    run = api.http.post(f"/api/repos/{repo}/fine_tunes/{public['id']}/actions/run", headers=b)
    assert run.status_code == 404 and create(api, TEXT, key=api.key_b, repo=repo).status_code == 404
    # Org A, the owner, still sees every one of its fine-tunes.
    mine = api.http.get(f"/api/repos/{repo}/fine_tunes", params={"page_size": 1000}, headers=api.headers()).json()
    assert {public["id"], private["id"]} <= {ft["id"] for ft in mine["fine_tunes"]}


@pytest.mark.parametrize(
    "params", [{}, {"use_lora": False}, {"gradient_accumulation": 2}], ids=["left-out", "full", "gradient_accumulation"]
)
def test_a_run_and_validated_fine_tune_shows_the_values_it_trains_with(api, params):
    """Run, then validated (the validation threads; nothing trains): what was left to polytune
    reads back as numbers, under the names sent."""
    from tests.helpers import wait_for

    ft = create(api, {**TEXT, "training_params": params}).json()["fine_tune"]
    path = f"/api/repos/{REPO}/fine_tunes/{ft['id']}"
    assert api.http.post(f"{path}/actions/run", headers=api.headers()).json()["fine_tune"]["status"] == "tokenizing"
    api.app.state.services.jobs.validate_pending()
    got = wait_for(
        lambda: (f := api.http.get(path, headers=api.headers()).json()["fine_tune"])["status"] != "tokenizing" and f,
        timeout=120,
    )
    assert got["status"] == "enqueued", got
    accumulation = "gradient_accumulation" if "gradient_accumulation" in params else "grad_accum"
    schema = {
        "epochs": "integer",
        "batch_size": "integer",
        "learning_rate": "number",
        accumulation: "integer",
        "seq_length": "integer",
        "use_lora": "boolean",
        "lora_rank": "integer",
        "lora_alpha": "integer",
    }
    assert check_response_fields(got["training_params"], schema) == [], got["training_params"]
    assert got["training_params"]["use_lora"] is params.get("use_lora", True)
    for key, value in params.items():
        assert got["training_params"][key] == value
