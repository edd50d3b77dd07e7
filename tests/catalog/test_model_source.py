"""`polytune models add`: the model's config and tokenizer are read, never its weights (a sharded
index whose shards hold garbage adds fine), the default context length is the model's window,
and --max-length, --revision and --trust-remote-code do what they say."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from polytune.catalog.model_source import context_window
from polytune.catalog.models import Catalog
from polytune.domain.errors import InvalidRequest
from polytune.store.blobs import BlobStore
from tests.conftest import BIN
from tests.model_folders import shaped_model_folder


def sharded_folder(tmp_path, tiny, *, window: int = 4096):
    """The tiny model's config (with an 8B-like window) and tokenizer, and a two-shard index
    whose shards are garbage: loading any weight from them would fail."""
    config = json.loads((tiny[1] / "config.json").read_text())
    config["max_position_embeddings"] = window
    return shaped_model_folder(tmp_path / "llama-shaped", config, tokenizer_from=tiny[1])


def models_cli(data_dir, *args: str):
    env = {**os.environ, "POLYTUNE_DATA_DIR": str(data_dir), "COLUMNS": "200", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(BIN / "polytune"), "models", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_models_add_reads_config_and_tokenizer_not_the_sharded_weights(tmp_path, tiny):
    folder = sharded_folder(tmp_path, tiny, window=4096)
    data = tmp_path / "data"
    added = models_cli(data, "add", "llama-shaped", str(folder))
    assert added.returncode == 0, added.stderr
    assert "context length 4096" in added.stdout
    listed = json.loads(models_cli(data, "catalog", "--json").stdout)
    row = next(r for r in listed if r["name"] == "llama-shaped")
    assert row == {
        "name": "llama-shaped",
        "source": str(folder),
        "revision": None,
        "max_length": 4096,
        "trust_remote_code": False,
    }
    # The shards were listed, not opened: they are still garbage and the entry stands. The CLI
    # keeps the catalog and a copy of the folder in the server's blob storage (catalog/stored.py).
    stored = Catalog(data, BlobStore(str(data / "blobs")))
    entry = stored.get("llama-shaped")
    assert entry.max_length == 4096 and entry.load_options == {}
    assert entry.stored is not None and stored.blobs is not None
    assert stored.blobs.exists(f"{entry.stored}/model-00002-of-00002.safetensors")

    # --max-length lowers the default; above the window it is refused, naming the option.
    assert models_cli(data, "add", "llama-short", str(folder), "--max-length", "2048").returncode == 0
    assert stored.get("llama-short").max_length == 2048
    too_long = models_cli(data, "add", "llama-long", str(folder), "--max-length", "8192")
    assert too_long.returncode != 0 and "--max-length" in too_long.stderr and "4096" in too_long.stderr
    # A local folder has no revisions.
    pinned = models_cli(data, "add", "llama-pinned", str(folder), "--revision", "main")
    assert pinned.returncode != 0 and "--revision" in pinned.stderr


def test_a_missing_shard_or_a_broken_index_is_refused_on_model(tmp_path, tiny):
    folder = sharded_folder(tmp_path, tiny)
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(InvalidRequest, match="model-00002-of-00002") as caught:
        Catalog(tmp_path / "data").add("half", folder)
    assert caught.value.param == "model"
    (folder / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(InvalidRequest, match="weight_map"):
        Catalog(tmp_path / "data").add("broken", folder)


def test_remote_code_needs_the_explicit_opt_in(tmp_path, tiny):
    folder = sharded_folder(tmp_path, tiny)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    data = tmp_path / "data"
    refused = models_cli(data, "add", "custom", str(folder))
    assert refused.returncode != 0 and "--trust-remote-code" in refused.stderr and "auto_map" in refused.stderr
    with pytest.raises(InvalidRequest) as caught:
        Catalog(data).add("custom", folder)
    assert caught.value.param == "trust_remote_code"
    # With the opt-in the entry records it, and every load of the model passes it on.
    entry = Catalog(data).add("custom", folder, trust_remote_code=True)
    assert Catalog(data).get("custom").trust_remote_code is True
    assert entry.load_options == {"trust_remote_code": True}


def test_a_hub_id_is_read_at_its_revision_or_refused_cleanly_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(InvalidRequest) as caught:
        Catalog(tmp_path).add("remote", "no-such-org/no-such-model", revision="v1.0")
    assert caught.value.param == "model" and "no-such-org/no-such-model" in caught.value.message


@pytest.mark.parametrize(
    ("config", "window"),
    [
        ({"max_position_embeddings": 131072, "n_positions": 10}, 131072),  # Llama-3.1
        ({"n_positions": 1024}, 1024),  # GPT-2
        ({"text_config": {"max_position_embeddings": 32768}}, 32768),  # a multimodal config's text part
        ({"seq_length": 8192}, 8192),
        ({"hidden_size": 64}, None),
    ],
)
def test_the_context_window_comes_from_the_config(config, window):
    assert context_window(config) == window
