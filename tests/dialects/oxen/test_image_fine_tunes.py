"""Oxen image_generation fine-tunes over HTTP: a table of image paths and captions becomes a
held job with Oxen's documented defaults; every bad table is a 400 naming the row and column
(or the parameter), and creates nothing."""

from __future__ import annotations

import uuid

import pytest

from tests.training.image_support import COLOURS, shape_png

from .support import QA_CSV, assert_oxen_error, http, put_file

IMAGE = {"base_model": "polytune-tiny-diffusion", "script_type": "image_generation"}


@pytest.fixture(scope="module")
def image_repo(server):
    """Images under images/, tables that point at them (good and bad) under data/."""
    name = f"ada/img-{uuid.uuid4().hex[:8]}"
    with http(server, server.key_a) as c:
        ns, short = name.split("/")
        assert c.post("/api/repos", json={"namespace": ns, "name": short}).status_code == 200
        for colour in ("red", "blue"):
            put_file(c, name, f"images/{colour}.png", shape_png(COLOURS[colour], "circle"))
        put_file(c, name, "images/broken.png", b"\x89PNG\r\n\x1a\nnot really")
        put_file(c, name, "data/qa.csv", QA_CSV.encode())
        tables = {
            "good.csv": "image,caption\nimages/red.png,a red circle\n/images/blue.png,a blue circle\n",
            # paths relative to the table's own folder work too
            "relative.csv": "image,caption\n../images/red.png,a red circle\n",
            "missing.csv": "image,caption\nimages/red.png,a red circle\nimages/green.png,a green circle\n",
            "notimage.csv": "image,caption\ndata/qa.csv,some text\n",
            "broken.csv": "image,caption\nimages/broken.png,a broken file\n",
            "emptycap.csv": "image,caption\nimages/red.png,a red circle\nimages/blue.png,\n",
            "columns.csv": "picture,text\nimages/red.png,a red circle\n",
        }
        for table, text in tables.items():
            put_file(c, name, f"data/{table}", text.encode())
    return name


def _create(c, repo, resource="main/data/good.csv", **body):
    return c.post(f"/api/repos/{repo}/fine_tunes", json={"resource": resource, **IMAGE, **body})


def test_an_image_table_makes_a_held_job_with_oxens_defaults(server, image_repo, client):
    with http(server, server.key_a) as c:
        r = _create(c, image_repo)
        assert r.status_code == 201, r.text
        ft = r.json()["fine_tune"]
    assert ft["status"] == "created" and ft["script_type"] == "image_generation"
    assert ft["training_params"] == {
        "image_column": "image",
        "caption_column": "caption",
        "steps": 2000,
        "batch_size": 1,
        "learning_rate": 2e-4,
        "gradient_accumulation": 1,
        "use_lora": True,
        "lora_rank": 16,
        "lora_alpha": 16,
        "timestep_type": "sigmoid",
        "sample_every": 200,
        "samples": 2,
    }
    # The table became an ordinary fine-tune file of image/caption lines (images inline).
    job = client.fine_tuning.jobs.retrieve(ft["id"])
    lines = client.files.content(job.training_file).text.splitlines()
    assert len(lines) == 2 and '"caption":"a blue circle"' in lines[1] and "data:image/png;base64," in lines[0]


def test_sample_prompts_and_the_documented_parameters_are_kept(server, image_repo):
    params = {
        "image_column": "image",
        "caption_column": "caption",
        "steps": 30,
        "batch_size": 2,
        "learning_rate": 1e-3,
        "gradient_accumulation": 2,
        "lora_rank": 8,
        "lora_alpha": 8,
        "use_lora": False,
        "timestep_type": "weighted",
        "sample_every": 10,
        "samples": [{"prompt": "a red dot", "seed": 5}],
    }
    with http(server, server.key_a) as c:
        r = _create(c, image_repo, resource="main/data/relative.csv", training_params=params)
    assert r.status_code == 201, r.text
    assert r.json()["fine_tune"]["training_params"] == params


@pytest.mark.parametrize(
    "resource,body,param,words",
    [
        ("missing.csv", {}, "resource", ["row 2, column 'image'", "'images/green.png' is not a file"]),
        ("notimage.csv", {}, "resource", ["row 1, column 'image'", "not an image"]),
        ("broken.csv", {}, "resource", ["row 1, column 'image'", "images/broken.png"]),
        ("emptycap.csv", {}, "resource", ["row 2, column 'caption'", "empty"]),
        ("columns.csv", {}, "training_params.image_column", ["no column 'image'", "'picture', 'text'"]),
        (
            "columns.csv",
            {"training_params": {"image_column": "picture", "caption_column": "caption"}},
            "training_params.caption_column",
            ["no column 'caption'"],
        ),
        ("qa.csv", {}, "training_params.image_column", ["text table", "text_generation"]),
        (
            "good.csv",
            {"script_type": "text_generation", "base_model": "polytune-tiny"},
            "training_params.question_column",
            ["image table", "image_generation"],
        ),
        ("good.csv", {"base_model": "polytune-tiny"}, "base_model", ["text model", "polytune-tiny-diffusion"]),
        (
            "good.csv",
            {"script_type": "text_generation", "base_model": "polytune-tiny-diffusion"},
            "base_model",
            ["image model", "polytune-tiny"],
        ),
    ],
)
def test_bad_image_tables_name_the_row_and_column(server, image_repo, client, resource, body, param, words):
    before = len(client.fine_tuning.jobs.list(limit=1000).data), len(client.files.list().data)
    with http(server, server.key_a) as c:
        err = assert_oxen_error(_create(c, image_repo, resource=f"main/data/{resource}", **body), 400, param)
    for word in words:
        assert word in err["detail"], err["detail"]
    assert (len(client.fine_tuning.jobs.list(limit=1000).data), len(client.files.list().data)) == before


def test_seekrflows_api_leaves_image_jobs_out_and_names_them(server, image_repo):
    """One organization, two APIs: SeekrFlow's has no fine_tune_type for an image job, so its
    list skips it (instead of failing the whole list) and its id answers a clear 400."""
    with http(server, server.key_a) as c:
        job_id = _create(c, image_repo).json()["fine_tune"]["id"]
        listed = c.get("/v1/flow/fine-tunes", headers={"Authorization": server.key_a})
        assert listed.status_code == 200, listed.text
        assert job_id not in {j["id"] for j in listed.json()["data"]}
        one = c.get(f"/v1/flow/fine-tunes/{job_id}", headers={"Authorization": server.key_a})
        assert one.status_code == 400 and "image_generation" in one.text and "Oxen" in one.text


def test_a_unet_model_trains_and_an_untrained_family_is_a_400_on_base_model(server, image_repo):
    """polytune-tiny-unet (Stable Diffusion family) is accepted; a pipeline folder of a family
    polytune does not train (here FLUX's image-to-image class) is refused at creation, by name."""
    import json

    from polytune.catalog.models import Catalog

    folder = server.tmp / "flux-img2img"
    folder.mkdir(exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "FluxImg2ImgPipeline"}))
    Catalog(server.tmp / "data").add("flux-img2img", folder, kind="image")
    with http(server, server.key_a) as c:
        r = _create(c, image_repo, base_model="polytune-tiny-unet")
        assert r.status_code == 201, r.text
        err = assert_oxen_error(_create(c, image_repo, base_model="flux-img2img"), 400, "base_model")
    assert "FluxImg2ImgPipeline" in err["detail"] and "flow matching" in err["detail"], err["detail"]
