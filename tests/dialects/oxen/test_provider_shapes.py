"""Oxen's own request shapes (issue 18): training_params is `additionalProperties: true`, so an
unknown key is accepted and listed in a warning event; gradient accumulation reads back under
the name that was sent; a public repository's fine-tunes are readable (read-only) by another
organization of the server, a private one's are not."""

from __future__ import annotations

import uuid

import pytest

from .support import QA_CSV, assert_oxen_error, http, put_file

TEXT = {"base_model": "polytune-tiny", "script_type": "text_generation", "resource": "main/data/qa.csv"}


@pytest.fixture
def oxen(server):
    with http(server, server.key_a) as c:
        yield c


@pytest.fixture
def oxen_b(server):
    with http(server, server.key_b) as c:
        yield c


def _repo(c, *, public: bool = False) -> str:
    name = f"ada/shapes-{uuid.uuid4().hex[:8]}"
    ns, short = name.split("/")
    assert c.post("/api/repos", json={"namespace": ns, "name": short, "is_public": public}).status_code == 200
    put_file(c, name, "data/qa.csv", QA_CSV.encode())
    return name


def _fine_tune(c, repo: str, **params) -> dict:
    r = c.post(f"/api/repos/{repo}/fine_tunes", json={**TEXT, "training_params": params})
    assert r.status_code == 201, r.text
    return r.json()["fine_tune"]


def test_unknown_training_params_are_accepted_and_named_in_a_warning(oxen, client):
    repo = _repo(oxen)
    ft = _fine_tune(oxen, repo, epochs=1, warmup=3, lr_schedule="cosine")
    assert "warmup" not in ft["training_params"] and ft["training_params"]["epochs"] == 1
    warned = [e.message for e in client.fine_tuning.jobs.list_events(ft["id"], limit=50) if e.level == "warn"]
    assert [w for w in warned if "Ignored unknown training_params" in w and "lr_schedule, warmup" in w]
    client.fine_tuning.jobs.cancel(ft["id"])


@pytest.mark.parametrize(
    "sent,echoed,absent",
    [
        ({"gradient_accumulation": 4}, "gradient_accumulation", "grad_accum"),
        ({"grad_accum": 4}, "grad_accum", "gradient_accumulation"),
    ],
)
def test_gradient_accumulation_reads_back_under_the_name_sent(oxen, client, sent, echoed, absent):
    repo = _repo(oxen)
    ft = _fine_tune(oxen, repo, epochs=1, **sent)
    assert ft["training_params"][echoed] == 4 and absent not in ft["training_params"]
    again = oxen.get(f"/api/repos/{repo}/fine_tunes/{ft['id']}").json()["fine_tune"]
    assert again["training_params"][echoed] == 4
    client.fine_tuning.jobs.cancel(ft["id"])


def test_a_public_repository_is_readable_by_another_organization_and_a_private_one_is_not(oxen, oxen_b, client):
    public, private = _repo(oxen, public=True), _repo(oxen)
    shown = _fine_tune(oxen, public, epochs=1)
    hidden = _fine_tune(oxen, private, epochs=1)

    # Organization B reads the public repository: its list, one fine-tune, progress, checkpoints, files.
    listed = oxen_b.get(f"/api/repos/{public}/fine_tunes")
    assert listed.status_code == 200 and [f["id"] for f in listed.json()["fine_tunes"]] == [shown["id"]]
    got = oxen_b.get(f"/api/repos/{public}/fine_tunes/{shown['id']}")
    assert got.status_code == 200 and got.json()["fine_tune"]["repository"] == public
    assert oxen_b.get(f"/api/repos/{public}/fine_tunes/{shown['id']}/train_status").status_code == 200
    assert oxen_b.get(f"/api/repos/{public}/fine_tunes/{shown['id']}/checkpoints").status_code == 200
    assert oxen_b.get(f"/api/repos/{public}").json()["repository"]["is_public"] is True
    assert oxen_b.get(f"/api/repos/{public}/file/main/data/qa.csv").content == QA_CSV.encode()

    # ... read-only: no run, no new fine-tune, no upload in it.
    assert_oxen_error(oxen_b.post(f"/api/repos/{public}/fine_tunes/{shown['id']}/actions/run"), 404)
    assert_oxen_error(oxen_b.post(f"/api/repos/{public}/fine_tunes", json={**TEXT, "training_params": {}}), 404)
    r = oxen_b.put(
        f"/api/repos/{public}/file/main/data",
        files={"files[]": ("x.csv", b"question,answer\n")},
        data={"name": "B", "email": "b@example.com", "message": "no"},
    )
    assert_oxen_error(r, 404)
    assert oxen.get(f"/api/repos/{public}/fine_tunes/{shown['id']}").json()["fine_tune"]["status"] == "created"

    # The private repository is not there for B, in any of its routes.
    for path in (
        "",
        "/fine_tunes",
        f"/fine_tunes/{hidden['id']}",
        f"/fine_tunes/{hidden['id']}/train_status",
        f"/fine_tunes/{hidden['id']}/checkpoints",
        "/file/main/data/qa.csv",
    ):
        assert_oxen_error(oxen_b.get(f"/api/repos/{private}{path}"), 404)
    # And B's own lists don't include A's jobs.
    assert shown["id"] not in {f["id"] for f in oxen_b.get("/api/users/b/fine_tunes").json()["fine_tunes"]}
    for ft in (shown, hidden):
        client.fine_tuning.jobs.cancel(ft["id"])
