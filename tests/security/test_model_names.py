"""`polytune models add` refuses names that are empty, path-like or could not stand in a URL
or a fine-tuned model id, with a one-line error; plain and hub-style names are added."""

from __future__ import annotations

import os
import subprocess

import pytest

from polytune.domain.errors import InvalidRequest
from polytune.domain.names import check_model_name
from tests.conftest import BIN
from tests.model_folders import shaped_model_folder


@pytest.mark.parametrize(
    "name",
    [
        "",
        " ",
        "../evil",
        "/abs/path",
        "a/../b",
        "a//b",
        "a/b/c",
        "x/",
        ".hidden",
        "with space",
        "ft:base:org",
        "nul\x00",
        "new\nline",
        "x" * 129,
        "a/..",
    ],
)
def test_bad_names_are_refused(name):
    with pytest.raises(InvalidRequest) as e:
        check_model_name(name)
    assert e.value.param == "model"


@pytest.mark.parametrize("name", ["my-model", "Qwen2.5-0.5B-Instruct", "owner/model_v1.2"])
def test_good_names_pass(name):
    check_model_name(name)


def _models_add(tmp_path, name: str, folder) -> subprocess.CompletedProcess:
    env = {**os.environ, "POLYTUNE_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(BIN / "polytune"), "models", "add", name, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_refuses_empty_and_path_like_names(tmp_path):
    folder = shaped_model_folder(tmp_path / "model", {"model_type": "llama", "max_position_embeddings": 512})
    for name in ("", "../../etc/x"):
        result = _models_add(tmp_path, name, folder)
        assert result.returncode != 0
        assert "model name" in (result.stdout + result.stderr).lower(), result.stderr
        assert "Traceback" not in result.stderr
    result = _models_add(tmp_path, "local/my-model", folder)
    assert result.returncode == 0, result.stderr
    assert "Added model 'local/my-model'" in result.stdout
