"""Inputs that used to be 5xx are 4xx in each dialect's shape: integers no database column can
hold in query, path and body parameters, and NUL characters in paths, queries, JSON fields,
form fields and the image paths of an Oxen table."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.dialects.oxen.support import assert_oxen_error, http, put_file

HUGE = 10**30


def _openai(server, path: str, **params) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", params=params, headers={"Authorization": f"Bearer {server.key_a}"})


def _seekr(server, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", headers={"Authorization": server.key_a}, **kw)


@pytest.mark.parametrize(
    "path,params,loc",
    [
        ("/v1/flow/files", {"offset": HUGE}, ["query", "offset"]),
        ("/v1/flow/files", {"limit": HUGE}, ["query", "limit"]),
        ("/v1/flow/projects", {"skip": HUGE}, ["query", "skip"]),
        ("/v1/flow/projects", {"skip": 2**63}, ["query", "skip"]),
        (f"/v1/flow/projects/{HUGE}", {}, ["path", "project_id"]),
        (f"/v1/flow/projects/{2**31}", {}, ["path", "project_id"]),
    ],
)
def test_seekr_huge_integers_are_422_with_loc(limited_server, path, params, loc):
    r = _seekr(limited_server, "GET", path, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc


def test_seekr_huge_project_id_in_a_body_is_422(limited_server):
    body = {
        "training_config": {"training_files": ["file-x"], "model": "polytune-tiny", "n_epochs": 1},
        "infrastructure_config": {"accel_type": "H100", "n_accel": 1},
        "project_id": HUGE,
    }
    r = _seekr(limited_server, "POST", "/v1/flow/fine-tunes", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "project_id"]


@pytest.mark.parametrize("params", [{"page": HUGE}, {"page": 2**62}, {"page_size": HUGE}])
def test_oxen_huge_page_is_400_in_its_envelope(limited_server, params):
    with http(limited_server, limited_server.key_a) as c:
        r = c.get("/api/users/ada/fine_tunes", params=params)
    assert_oxen_error(r, 400, param=next(iter(params)))


@pytest.mark.parametrize("path", ["/v1/files", "/v1/fine_tuning/jobs"])
def test_openai_huge_limit_is_400(limited_server, path):
    r = _openai(limited_server, path, limit=HUGE)
    assert r.status_code == 400 and r.json()["error"]["param"] == "limit", r.text


# -- NUL characters ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/v1/files/file-%00abc", "/v1/fine_tuning/jobs/ftjob-%00/events", "/api/llm/models/a%00b"]
)
def test_nul_in_an_openai_path_is_400(limited_server, path):
    r = httpx.get(f"{limited_server.url}{path}", headers={"Authorization": f"Bearer {limited_server.key_a}"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "path", r.text


def test_nul_in_a_query_is_400_naming_it(limited_server):
    r = _openai(limited_server, "/v1/files", purpose="fine\x00tune")
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose", r.text


def test_nul_in_a_seekr_path_is_400_in_its_shape(limited_server):
    r = _seekr(limited_server, "GET", "/v1/flow/files/file-%00x")
    assert r.status_code == 400 and "NUL" in r.json()["detail"], r.text


def test_nul_in_a_json_field_is_400_naming_it(limited_server):
    body = {"model": "polytune-tiny", "training_file": "file-x", "metadata": {"k": "v\x00"}}
    r = httpx.post(
        f"{limited_server.url}/v1/fine_tuning/jobs",
        json=body,
        headers={"Authorization": f"Bearer {limited_server.key_a}"},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "metadata.k", r.text


@pytest.fixture
def oxen_repo(limited_server):
    name = f"ada/nul-{uuid.uuid4().hex[:8]}"
    with http(limited_server, limited_server.key_a) as c:
        ns, short = name.split("/")
        assert c.post("/api/repos", json={"namespace": ns, "name": short}).status_code == 200
        yield c, name


def test_nul_in_oxen_repo_and_file_paths_is_400(oxen_repo):
    c, name = oxen_repo
    assert_oxen_error(c.get(f"/api/repos/{name}%00/file/main/a.csv"), 400, param="path")
    assert_oxen_error(c.get(f"/api/repos/{name}/file/main/a%00.csv"), 400, param="path")
    assert_oxen_error(
        c.put(f"/api/repos/{name}/file/main/d%00ir", files={"files[]": ("a.csv", b"x,y\n")}), 400, param="path"
    )


def test_nul_in_an_oxen_commit_message_is_400(oxen_repo):
    c, name = oxen_repo
    r = c.put(
        f"/api/repos/{name}/file/main/data", files={"files[]": ("a.csv", b"x,y\n")}, data={"message": "bad\x00message"}
    )
    assert_oxen_error(r, 400)


def test_nul_in_an_oxen_image_path_is_a_row_error(limited_server, oxen_repo):
    c, name = oxen_repo
    put_file(c, name, "data/nul.csv", b"image,caption\nimages/red\x00.png,a red circle\n")
    r = c.post(
        f"/api/repos/{name}/fine_tunes",
        json={
            "resource": "main/data/nul.csv",
            "base_model": "polytune-tiny-diffusion",
            "script_type": "image_generation",
        },
    )
    error = assert_oxen_error(r, 400)
    assert "row 1" in error["detail"], error
