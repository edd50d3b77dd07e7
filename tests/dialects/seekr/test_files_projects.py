"""SeekrFlow files, projects and models through the `seekrai` SDK; bad bodies answer 422 with
the HTTPValidationError shape and create nothing; auth with and without 'Bearer'."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import chat_jsonl

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK on newer httpx/pydantic

seekrai = pytest.importorskip("seekrai", reason="`make venv` installs it into .venv-clients")
from seekrai.error import AuthenticationError, InvalidRequestError  # noqa: E402


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(chat_jsonl(6))
    return path


def _n_files(seekr) -> int:
    return len(seekr.files.list(limit=10000).data)


def test_upload_retrieve_content_rename_delete(seekr, client, data_file, tmp_path):
    up = seekr.files.upload(data_file, purpose="fine-tune")
    assert up.id.startswith("file-") and up.filename == "train.jsonl" and up.purpose.value == "fine-tune"
    assert up.bytes == data_file.stat().st_size and up.type.value == "jsonl"
    assert seekr.files.retrieve(up.id).id == up.id

    out = seekr.files.retrieve_content(up.id, output=tmp_path / "back.jsonl")
    assert (tmp_path / "back.jsonl").read_bytes() == data_file.read_bytes() and out.size == up.bytes

    renamed = seekr.files.rename(up.id, "renamed.jsonl")
    assert renamed.filename == "renamed.jsonl"
    assert client.files.retrieve(up.id).filename == "renamed.jsonl"  # one store, read through OpenAI

    gone = seekr.files.delete(up.id)
    assert gone.deleted and gone.id == up.id
    with pytest.raises(InvalidRequestError):
        seekr.files.retrieve(up.id)


def test_bulk_upload_and_offset_pagination(seekr, tmp_path):
    paths = []
    for name in ("a.jsonl", "b.jsonl", "c.jsonl"):
        (tmp_path / name).write_bytes(chat_jsonl(3))
        paths.append(tmp_path / name)
    made = seekr.files.bulk_upload(paths, purpose="fine-tune")
    assert [f.filename for f in made] == ["a.jsonl", "b.jsonl", "c.jsonl"]

    newest_first = [f.id for f in seekr.files.list(limit=3, offset=0, sort_by="created_at", sort_order="desc").data]
    assert newest_first == [f.id for f in made][::-1]
    second = seekr.files.list(limit=2, offset=1, sort_by="created_at", sort_order="desc").data
    assert [f.id for f in second] == newest_first[1:3]
    by_name = [f.filename for f in seekr.files.list(limit=10000, sort_by="filename", sort_order="asc").data]
    assert by_name == sorted(by_name)
    assert all(f.purpose.value == "fine-tune" for f in seekr.files.list(purpose="fine-tune").data)


def test_other_purposes_are_kept_and_shown_to_openai_as_the_nearest(seekr, client, tmp_path):
    path = tmp_path / "prefs.jsonl"
    path.write_bytes(b'{"input": {"messages": [{"role": "user", "content": "hi"}]}}\n')
    up = seekr.files.upload(path, purpose="preference-fine-tune")
    assert up.purpose.value == "preference-fine-tune"
    assert client.files.retrieve(up.id).purpose == "fine-tune"  # strict openai parsing accepts it


BAD_UPLOADS = [
    ({"purpose": "bogus"}, ["body", "purpose"]),
    ({"purpose": "fine-tune", "no_files": True}, ["body", "files"]),
]


@pytest.mark.parametrize("form,loc", BAD_UPLOADS)
def test_bad_upload_is_422_and_creates_nothing(server, seekr, headers, form, loc):
    form = dict(form)  # parametrized dicts are shared by both backends: never mutate them
    before = _n_files(seekr)
    files = (
        {"filename": (None, "x.jsonl")}
        if form.pop("no_files", False)
        else {"files": ("x.jsonl", chat_jsonl(2)), "filename": ("upload", b"x.jsonl")}
    )
    r = httpx.put(f"{server.url}/v1/flow/files", data=form, files=files, headers=headers)
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == loc and err["msg"] and err["type"]
    assert _n_files(seekr) == before


def test_auth_bare_key_bearer_and_wrong_key(server, seekr):
    assert seekr.files.list() is not None
    r = httpx.get(f"{server.url}/v1/flow/files", headers={"Authorization": f"Bearer {server.key_a}"})
    assert r.status_code == 200 and "data" in r.json()
    from seekrai import SeekrFlow

    with pytest.raises(AuthenticationError):
        SeekrFlow(api_key="pt-wrong", base_url=server.url).files.list()


def test_other_org_sees_nothing(seekr, seekr_b, data_file):
    up = seekr.files.upload(data_file)
    with pytest.raises(InvalidRequestError):
        seekr_b.files.retrieve(up.id)
    assert up.id not in {f.id for f in seekr_b.files.list(limit=10000).data}


def test_projects_create_list_retrieve(server, seekr, seekr_b, headers):
    made = seekr.projects.create(name="Support bot", description="Answers support tickets")
    assert isinstance(made.id, int) and made.name == "Support bot"
    assert seekr.projects.retrieve(made.id).description == "Answers support tickets"
    listed = {p.id: p for p in seekr.projects.list().data}
    assert listed[made.id].runs == 0 and listed[made.id].runs_deployed == 0
    with pytest.raises(InvalidRequestError):
        seekr_b.projects.retrieve(made.id)

    before = len(seekr.projects.list(limit=10000).data)
    r = httpx.post(
        f"{server.url}/v1/flow/projects", json={"name": "abc", "description": "long enough"}, headers=headers
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]
    r = httpx.get(f"{server.url}/v1/flow/projects/not-a-number", headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "project_id"]
    assert len(seekr.projects.list(limit=10000).data) == before


def test_models_list(seekr):
    models = {m.id: m for m in seekr.models.list().data}
    assert models["polytune-tiny"].name == "polytune-tiny" and models["polytune-tiny"].model_type == "chat"
