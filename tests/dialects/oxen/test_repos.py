"""The repository store through the `oxenai` client (RemoteRepo exists/create/upload/get_file)
and plain HTTP: what a user pushing a dataset does, and the clear errors everything else gets."""

from __future__ import annotations

import uuid

import pytest

from .support import assert_oxen_error, http, oxen_client


@pytest.fixture
def repo_name():
    return f"ada/data-{uuid.uuid4().hex[:8]}"


def test_remote_repo_create_upload_and_read_back(server, tmp_path, repo_name):
    table = tmp_path / "qa.csv"
    table.write_text("question,answer\nWhat colour is the sky?,Blue\n")
    newer = tmp_path / "newer.csv"
    newer.write_text("question,answer\nWhat colour is grass?,Green\n")
    results = oxen_client(
        server,
        server.key_a,
        tmp_path / "oxen",
        [
            {"op": "exists", "repo": repo_name},
            {"op": "create", "repo": repo_name},
            {"op": "exists", "repo": repo_name},
            {"op": "upload", "repo": repo_name, "src": str(table), "dst_dir": "data"},
            {"op": "get_file", "repo": repo_name, "path": "data/qa.csv"},
            # Uploading to the same path again replaces the file on the branch.
            {"op": "upload", "repo": repo_name, "src": str(newer), "file_name": "qa.csv", "dst_dir": "data"},
            {"op": "get_file", "repo": repo_name, "path": "data/qa.csv"},
        ],
    )
    assert results[0] is False and results[2] is True
    assert results[4] == {"bytes": table.stat().st_size, "head": table.read_text()}
    assert results[6]["head"] == newer.read_text()

    with http(server, server.key_a) as c:
        r = c.get(f"/api/repos/{repo_name}")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "success" and body["repository"]["is_empty"] is False
        assert body["repository"]["latest_commit"]["author"] == "Ada Lovelace"
        assert c.get(f"/api/repos/{repo_name}/file/main/data/qa.csv").content == newer.read_bytes()
        branch = c.get(f"/api/repos/{repo_name}/branches/main").json()["branch"]
        assert branch["commit_id"] == body["repository"]["latest_commit"]["id"]


def test_create_with_a_readme_seeds_main(server, tmp_path, repo_name):
    results = oxen_client(
        server,
        server.key_a,
        tmp_path / "oxen",
        [
            {"op": "create", "repo": repo_name, "empty": False},
            {"op": "get_file", "repo": repo_name, "path": "README.md"},
        ],
    )
    assert results[0] is None and results[1]["bytes"] > 0


def test_repositories_belong_to_their_organization(server, tmp_path, repo_name):
    oxen_client(server, server.key_a, tmp_path / "a", [{"op": "create", "repo": repo_name}])
    with http(server, server.key_b) as b:
        assert_oxen_error(b.get(f"/api/repos/{repo_name}"), 404)
    # The same name in another organization is another repository.
    results = oxen_client(
        server, server.key_b, tmp_path / "b", [{"op": "exists", "repo": repo_name}, {"op": "create", "repo": repo_name}]
    )
    assert results == [False, None]


def test_errors_use_oxens_envelope(server, tmp_path, repo_name):
    ns, name = repo_name.split("/")
    with http(server, server.key_a) as c:
        assert_oxen_error(c.post("/api/repos", json={"namespace": ns, "name": "../etc"}), 400, "name")
        assert c.post("/api/repos", json={"namespace": ns, "name": name}).status_code == 200
        assert_oxen_error(c.post("/api/repos", json={"namespace": ns, "name": name}), 409, "name")
        assert_oxen_error(c.post("/api/repos", content=b"{not json", headers={"content-type": "application/json"}), 400)
        assert_oxen_error(c.get(f"/api/repos/{ns}/nope-{name}"), 404)
        assert_oxen_error(c.get(f"/api/repos/{repo_name}/file/main/missing.csv"), 404, "path")
        assert_oxen_error(c.get(f"/api/repos/{repo_name}/branches/main"), 404, "branch")
        # An upload with no file, or a path that climbs out, commits nothing.
        assert_oxen_error(
            c.put(
                f"/api/repos/{repo_name}/file/main/data", data={"message": "m"}, files={"other": ("x.csv", b"a,b\n")}
            ),
            400,
            "other",
        )
        assert_oxen_error(
            c.put(f"/api/repos/{repo_name}/file/main/data", files={"files[]": ("../../x.csv", b"a\n")}), 400, "files[]"
        )
        assert c.get(f"/api/repos/{repo_name}").json()["repository"]["is_empty"] is True
        # The rest of Oxen's sync protocol answers clearly instead of crashing.
        for method, path in [
            ("GET", "workspaces"),
            ("PUT", "workspaces"),
            ("POST", "versions"),
            ("GET", "merkle/abc"),
            ("GET", "meta/main/x.csv"),
            ("DELETE", ""),
        ]:
            err = assert_oxen_error(c.request(method, f"/api/repos/{repo_name}/{path}".rstrip("/")), 404)
            assert err["type"] == "not_supported" and "not supported" in err["detail"]
    with http(server, "pt-wrong") as bad:
        assert_oxen_error(bad.get(f"/api/repos/{repo_name}"), 401)
