"""A job that cannot fit the server's accelerators is refused when it is created: a 400 naming the
field to change and what would fit. The accelerators are faked (POLYTUNE_ACCELERATORS, 80 GiB
each) and the model is a folder holding only the config of Llama-3.1-8B: the planner reads the
config, never weights."""

from __future__ import annotations

import io

import openai
import pytest
from openai import OpenAI

from polytune.catalog.models import Catalog
from tests.conftest import LiveServer
from tests.helpers import chat_jsonl
from tests.model_folders import shaped_model_folder

LLAMA_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
    "max_position_embeddings": 131072,
    "torch_dtype": "bfloat16",
}


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu-server")
    # Config, tokenizer and a sharded index of garbage: the planner reads the config alone.
    folder = shaped_model_folder(tmp / "llama-8b-shape", LLAMA_8B)
    Catalog(tmp / "data").add("llama-8b-shape", folder, max_length=4096)
    srv = LiveServer(
        tmp, f"sqlite:///{tmp / 'db.sqlite'}", POLYTUNE_ACCELERATORS="0,1,2,3", POLYTUNE_ACCELERATOR_MEMORY_GB="80"
    )
    srv.key = srv.create_key("org-gpu")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def gpu_client(gpu_server):
    return OpenAI(base_url=f"{gpu_server.url}/v1", api_key=gpu_server.key, max_retries=0)


@pytest.fixture(scope="module")
def training_file(gpu_client):
    return gpu_client.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune").id


def _refused(client, training_file, hyperparameters: dict) -> dict:
    before = len(client.fine_tuning.jobs.list(limit=100).data)
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(
            model="llama-8b-shape",
            training_file=training_file,
            method={"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
        )
    assert len(client.fine_tuning.jobs.list(limit=100).data) == before  # nothing created
    return e.value.body


def test_a_full_fine_tune_of_8b_on_one_80gb_device_is_refused_naming_lora(gpu_client, training_file):
    err = _refused(gpu_client, training_file, {"lora": False})
    assert err["code"] == "insufficient_memory"
    assert err["param"] == "method.supervised.hyperparameters.lora"
    msg = err["message"]
    # 8.03B parameters x 16 B of fp32 weights, gradients and AdamW state: ~119.7 GiB before activations.
    assert "8.03B parameters" in msg and "full fine-tune" in msg and "72.0 GiB" in msg
    assert "LoRA instead of a full fine-tune" in msg and "QLoRA" in msg
    assert "2 accelerators with FSDP" in msg  # the server has 4


def test_a_context_too_long_for_the_device_is_refused_naming_context_length(gpu_client, training_file):
    err = _refused(gpu_client, training_file, {"context_length": 131072})
    assert err["param"] == "method.supervised.hyperparameters.context_length", err
    assert "context_length 32768 or less" in err["message"]


def test_a_lora_that_fits_is_created(gpu_client, training_file):
    job = gpu_client.fine_tuning.jobs.create(model="llama-8b-shape", training_file=training_file)
    assert job.status == "validating_files"
    gpu_client.fine_tuning.jobs.cancel(job.id)
