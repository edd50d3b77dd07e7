"""Added base models and the catalog kept in blob storage: a worker on another node (its own data
dir) finds the entry and loads the model after the folder it was added from is gone."""

from __future__ import annotations

import os
import shutil

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from polytune.catalog.models import Catalog
from polytune.catalog.stored import CATALOG_KEY
from polytune.domain.errors import InvalidRequest
from polytune.domain.ids import new_id
from polytune.store.blobs import BlobStore
from polytune.training.recipes.sft import build_sft_trainer
from tests.training.support import resolved_spec


def _add_then_delete(tmp_path, tiny, blobs: BlobStore):
    folder = tmp_path / "added-from"
    shutil.copytree(tiny[1], folder)
    entry = Catalog(tmp_path / "server-data", blobs).add("mine", folder, max_length=256)
    shutil.rmtree(folder)  # the server's folder is not on the other node (nor on this one now)
    return entry


def _loads(path) -> None:
    model = AutoModelForCausalLM.from_pretrained(path)
    tokens = AutoTokenizer.from_pretrained(path)("hello", return_tensors="pt")
    assert model(**tokens).logits.shape[-1] == model.config.vocab_size


def test_a_file_system_store_is_read_in_place_by_another_node(tmp_path, tiny):
    blobs = BlobStore(str(tmp_path / "shared-store"))
    entry = _add_then_delete(tmp_path, tiny, blobs)
    assert entry.stored is not None and blobs.exists(CATALOG_KEY)
    assert not (tmp_path / "server-data" / "models.json").exists()  # one catalog: the stored one

    other_node = Catalog(tmp_path / "other-node-data", BlobStore(str(tmp_path / "shared-store")))
    found = other_node.get("mine")
    assert (found.max_length, found.stored) == (256, entry.stored)
    path = other_node.resolve_path(found)
    assert path == tmp_path / "shared-store" / entry.stored  # no copy
    assert not (tmp_path / "other-node-data" / "cache").exists()
    _loads(path)


def test_object_storage_is_fetched_once_per_node_and_trains(tmp_path, tiny, demo_rows):
    # fsspec's in-memory file system is not a local one: it stands for s3:// here (the moto
    # end-to-end test covers s3fs itself).
    url = f"memory://polytune-{new_id('t', 8)}"
    entry = _add_then_delete(tmp_path, tiny, BlobStore(url))

    node = Catalog(tmp_path / "node-b", BlobStore(url))
    path = node.resolve_path(node.get("mine"))
    assert path == tmp_path / "node-b" / "cache" / entry.stored
    first = os.stat(path / "model.safetensors").st_ino
    _loads(path)
    # Later loads on the node reuse its copy; a new Catalog (another process) too.
    again = Catalog(tmp_path / "node-b", BlobStore(url))
    assert again.resolve_path(again.get("mine")) == path
    assert os.stat(path / "model.safetensors").st_ino == first
    assert not list(path.parent.glob(".*"))  # no half-fetched folder left behind
    # The worker's recipe trains from the fetched copy (one step).
    trainer = build_sft_trainer(
        resolved_spec(n_epochs=1, batch_size=4), node.get("mine"), path, demo_rows[:4], None, tmp_path / "work", []
    )
    assert trainer.train().global_step == 1


def test_re_adding_a_name_stores_a_new_copy_and_drops_the_old(tmp_path, tiny):
    blobs = BlobStore(str(tmp_path / "store"))
    catalog = Catalog(tmp_path / "data", blobs)
    first = catalog.add("mine", tiny[1])
    second = catalog.add("mine", tiny[1], max_length=128)
    assert first.stored != second.stored
    assert not blobs.exists(first.stored) and blobs.exists(second.stored)
    assert [e.max_length for e in catalog.list() if e.name == "mine"] == [128]


def test_a_model_gone_from_storage_and_disk_is_an_invalid_request(tmp_path, tiny):
    blobs = BlobStore(str(tmp_path / "store"))
    entry = _add_then_delete(tmp_path, tiny, blobs)
    blobs.delete(entry.stored)
    with pytest.raises(InvalidRequest) as caught:
        Catalog(tmp_path / "node", blobs).resolve_path(entry)
    assert caught.value.param == "model"


def test_a_catalog_written_before_storage_is_carried_over(tmp_path, tiny):
    # models.json from a server without the store: read until the first add writes the stored one.
    Catalog(tmp_path / "data").add("old", tiny[1])
    blobs = BlobStore(str(tmp_path / "store"))
    catalog = Catalog(tmp_path / "data", blobs)
    assert catalog.get("old").stored is None and catalog.resolve_path(catalog.get("old")) == tiny[1]
    catalog.add("new", tiny[1])
    assert {"old", "new"} <= {e.name for e in Catalog(tmp_path / "elsewhere", blobs).list()}
