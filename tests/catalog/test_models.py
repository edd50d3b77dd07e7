from __future__ import annotations

import json
import shutil

import huggingface_hub.constants
import pytest

from polytune.domain.errors import InvalidRequest
from polytune.catalog.models import Catalog, CatalogEntry


def test_polytune_tiny_is_always_listed_with_its_measured_defaults(tmp_path):
    entry = Catalog(tmp_path).get("polytune-tiny")
    assert [e.name for e in Catalog(tmp_path).list()] == [
        "polytune-tiny",
        "polytune-tiny-diffusion",
        "polytune-tiny-unet",
    ]
    assert (entry.adapter_default, entry.base_learning_rate, entry.lr_scheduler) == ("full", 3e-3, "constant")
    assert entry.chat_template is None


def test_unknown_models_are_an_invalid_request_on_model(tmp_path):
    with pytest.raises(InvalidRequest) as caught:
        Catalog(tmp_path).get("gpt-17")
    assert caught.value.param == "model"
    assert "gpt-17" in caught.value.message and "polytune-tiny" in caught.value.message


def test_added_local_models_persist_and_resolve_to_their_folder(tmp_path, tiny):
    folder = tmp_path / "my-model"
    shutil.copytree(tiny[1], folder)
    entry = Catalog(tmp_path / "data").add("mine", folder, base_learning_rate=1e-4, adapter_default="full")
    # max_length: the model's context window, from its config (polytune-tiny's 2048), not a fixed 1024.
    assert entry == CatalogEntry(
        name="mine", source=str(folder), base_learning_rate=1e-4, adapter_default="full", max_length=2048
    )
    reopened = Catalog(tmp_path / "data")
    assert reopened.get("mine") == entry
    assert reopened.resolve_path(entry) == folder
    assert json.loads((tmp_path / "data" / "models.json").read_text())[0]["name"] == "mine"
    # Adding the same name again replaces the entry.
    reopened.add("mine", folder, max_length=256)
    assert [e.max_length for e in Catalog(tmp_path / "data").list() if e.name == "mine"] == [256]


def test_add_checks_the_folder(tmp_path, tiny):
    catalog = Catalog(tmp_path / "data")
    with pytest.raises(InvalidRequest, match="config.json"):
        catalog.add("empty", tmp_path)
    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    shutil.copy(tiny[1] / "config.json", no_tokenizer)
    with pytest.raises(InvalidRequest, match="tokenizer"):
        catalog.add("half", no_tokenizer)
    with pytest.raises(InvalidRequest, match="built in"):
        catalog.add("polytune-tiny", tiny[1])


def test_a_vanished_local_folder_is_an_invalid_request(tmp_path, tiny):
    folder = tmp_path / "gone"
    shutil.copytree(tiny[1], folder)
    catalog = Catalog(tmp_path / "data")
    entry = catalog.add("gone", folder)
    shutil.rmtree(folder)
    with pytest.raises(InvalidRequest) as caught:
        catalog.resolve_path(entry)
    assert caught.value.param == "model"


def test_an_unreachable_hub_model_is_an_invalid_request(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    (tmp_path / "models.json").write_text(json.dumps([{"name": "hubby", "source": "some-org/not-cached-model"}]))
    catalog = Catalog(tmp_path)
    entry = catalog.get("hubby")
    assert not entry.is_local
    with pytest.raises(InvalidRequest) as caught:
        catalog.resolve_path(entry)
    assert caught.value.param == "model" and "some-org/not-cached-model" in caught.value.message
