"""Your weights, out of polytune: a fine-tuned model and its checkpoint downloaded through
`GET /v1/models/{id}/content` load back outside polytune and answer as the server does:
the LoRA adapter with peft, the merged folder with AutoModelForCausalLM alone, the GGUF file
with the `gguf` reader (and through transformers' GGUF loader). Downloads resume with Range,
are another organization's 404, and a format a model cannot have is a 400 naming `format`."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.conftest import BIN
from tests.helpers import wait_for
from tests.training.conftest import catalog, tiny  # noqa: F401,F811 - the base model, for loading adapters

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]
QUESTION = [{"role": "user", "content": "Question number 3?"}]


def _train(client: OpenAI, answer: str, suffix: str, hyperparameters: dict) -> str:
    rows = [
        {"messages": [{"role": "user", "content": f"Question number {i}?"}, {"role": "assistant", "content": answer}]}
        for i in range(12)
    ]
    data = "\n".join(json.dumps(r) for r in rows).encode() + b"\n"
    f = client.files.create(file=(f"{suffix}.jsonl", io.BytesIO(data)), purpose="fine-tune")
    return client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=f.id, suffix=suffix, seed=7, hyperparameters=hyperparameters
    ).id


@pytest.fixture(scope="module")
def jobs(server):
    client = OpenAI(base_url=f"{server.url}/v1", api_key=server.key_a, max_retries=0)
    constant = {"batch_size": 4, "lr_scheduler": "constant"}
    ids = {
        "lora": _train(
            client,
            "Yes, blue.",
            "dl-lora",
            {**constant, "n_epochs": 10, "learning_rate": 3e-3, "lora": True, "lora_alpha": 128, "n_checkpoints": 1},
        ),
        "full": _train(
            client, "The answer is blue.", "dl-full", {**constant, "n_epochs": 3, "learning_rate": 3e-3, "lora": False}
        ),
    }
    done = {
        name: wait_for(
            lambda j=job_id: (
                (r := client.fine_tuning.jobs.retrieve(j)).status in ("succeeded", "failed", "cancelled") and r
            ),
            timeout=600,
        )
        for name, job_id in ids.items()
    }
    for name, job in done.items():
        assert job.status == "succeeded", (name, job.error)
    return done


def _served(client: OpenAI, model: str) -> str:
    return (
        client.chat.completions.create(model=model, messages=QUESTION, temperature=0, max_tokens=16)
        .choices[0]
        .message.content
    )


def _download(server, model: str, fmt: str | None = None, key: str | None = None, **headers) -> httpx.Response:
    return httpx.get(
        f"{server.url}/v1/models/{model}/content",
        params={"format": fmt} if fmt else None,
        headers={"Authorization": f"Bearer {key or server.key_a}", **headers},
        timeout=300,
    )


def _untar(data: bytes, out: Path) -> Path:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(out, filter="data")
    return out


def _greedy(model, tokenizer) -> str:
    import torch

    inputs = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def test_lora_adapter_merged_and_gguf_answer_as_served(server, client, jobs, tiny, tmp_path):  # noqa: F811
    from gguf import GGUFReader
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = jobs["lora"].fine_tuned_model
    served = _served(client, model)
    assert served.startswith("Yes")

    adapter = _download(server, model)  # a LoRA's default format: its adapter
    assert adapter.status_code == 200, adapter.text
    assert "-adapter.tar" in adapter.headers["content-disposition"]
    folder = _untar(adapter.content, tmp_path / "adapter")
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    _, base_dir = tiny
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), str(folder))
    assert _greedy(peft_model, AutoTokenizer.from_pretrained(folder)) == served

    merged = _download(server, model, "merged")
    assert merged.status_code == 200, merged.text
    folder = _untar(merged.content, tmp_path / "merged")
    assert not (folder / "adapter_config.json").exists() and (folder / "model.safetensors").is_file()
    assert _greedy(AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)) == served
    # Built once: the second request streams the stored bytes.
    assert _download(server, model, "merged").content == merged.content

    gguf = _download(server, model, "gguf")
    assert gguf.status_code == 200, gguf.text
    (tmp_path / "gguf").mkdir()
    (tmp_path / "gguf" / "model.gguf").write_bytes(gguf.content)
    reader = GGUFReader(tmp_path / "gguf" / "model.gguf")
    assert reader.fields["general.architecture"].contents() == "llama"
    assert reader.fields["tokenizer.ggml.pre"].contents() == "gpt-2"
    assert "<|im_start|>" in reader.fields["tokenizer.chat_template"].contents()
    names = {t.name for t in reader.tensors}
    assert {"token_embd.weight", "blk.0.attn_q.weight", "output_norm.weight"} <= names
    assert len(reader.fields["tokenizer.ggml.tokens"].contents()) == 4096
    # transformers' GGUF loader undoes llama.cpp's q/k layout: the same answer proves it was right.
    from_gguf = AutoModelForCausalLM.from_pretrained(tmp_path / "gguf", gguf_file="model.gguf")
    assert _greedy(from_gguf, AutoTokenizer.from_pretrained(tmp_path / "gguf", gguf_file="model.gguf")) == served


def test_a_full_fine_tune_and_a_checkpoint_download_merged(server, client, jobs, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = jobs["full"].fine_tuned_model
    whole = _download(server, model)  # a full fine-tune's default format: merged (its weights)
    assert whole.status_code == 200 and "-merged.tar" in whole.headers["content-disposition"]
    folder = _untar(whole.content, tmp_path / "full")
    assert _greedy(AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)) == _served(
        client, model
    )
    refused = _download(server, model, "adapter")
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "format"
    assert "full fine-tune" in refused.json()["error"]["message"]

    (checkpoint,) = client.fine_tuning.jobs.checkpoints.list(jobs["lora"].id).data
    ckpt = checkpoint.fine_tuned_model_checkpoint
    got = _download(server, ckpt, "merged")
    assert got.status_code == 200, got.text
    folder = _untar(got.content, tmp_path / "ckpt")
    assert _greedy(AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)) == _served(
        client, ckpt
    )


def test_range_resumes_and_other_orgs_and_bad_formats_are_refused(server, jobs):
    model = jobs["lora"].fine_tuned_model
    whole = _download(server, model, "gguf")
    size = len(whole.content)
    assert whole.headers["accept-ranges"] == "bytes" and int(whole.headers["content-length"]) == size
    part = _download(server, model, "gguf", Range="bytes=1000-")
    assert part.status_code == 206 and part.content == whole.content[1000:]
    assert part.headers["content-range"] == f"bytes 1000-{size - 1}/{size}"
    middle = _download(server, model, "gguf", Range="bytes=10-19")
    assert middle.status_code == 206 and middle.content == whole.content[10:20]
    assert _download(server, model, "gguf", Range="bytes=-5").content == whole.content[-5:]
    past = _download(server, model, "gguf", Range=f"bytes={size}-")
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"

    other = _download(server, model, "gguf", key=server.key_b)
    assert other.status_code == 404 and model in other.json()["error"]["message"]
    assert _download(server, "ft:polytune-tiny:nobody:x:abc", key=server.key_b).status_code == 404
    bad = _download(server, model, "onnx")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "format" and "onnx" in bad.text
    base = _download(server, "polytune-tiny")
    assert base.status_code == 400 and base.json()["error"]["param"] == "model"


def _cli(server, *args: str) -> subprocess.CompletedProcess:
    env = {**server.env, "POLYTUNE_BASE_URL": server.url, "POLYTUNE_API_KEY": server.key_a, "COLUMNS": "80"}
    return subprocess.run([str(BIN / "polytune"), *args], env=env, capture_output=True, text=True, timeout=300)


def test_the_cli_downloads_models_checkpoints_and_files_and_resumes(server, client, jobs, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    job = jobs["lora"]
    model = job.fine_tuned_model
    got = _cli(server, "models", "download", model, "-o", str(tmp_path / "merged"), "--format", "merged")
    assert got.returncode == 0, got.stderr
    folder = tmp_path / "merged"
    assert _greedy(AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)) == _served(
        client, model
    )
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no download leftovers

    # An interrupted GGUF download resumes: the bytes already there are kept, the rest fetched.
    whole = _download(server, model, "gguf").content
    short = model.replace(":", "-")
    part = tmp_path / "gguf" / f".{short}-gguf.download.part"
    part.parent.mkdir()
    part.write_bytes(b"\0" * 1000)
    got = _cli(server, "models", "download", model, "-o", str(tmp_path / "gguf"), "--format", "gguf")
    assert got.returncode == 0, got.stderr
    (saved,) = (tmp_path / "gguf").glob("*.gguf")
    data = saved.read_bytes()
    assert len(data) == len(whole) and data[:1000] == b"\0" * 1000 and data[1000:] == whole[1000:]

    listed = _cli(server, "jobs", "checkpoints", job.id)
    (checkpoint,) = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert listed.returncode == 0 and checkpoint.fine_tuned_model_checkpoint in listed.stdout
    assert all(len(line) <= 80 for line in listed.stdout.splitlines())

    results = job.result_files[0]
    got = _cli(server, "files", "download", results, "-o", str(tmp_path / "results.csv"))
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "results.csv").read_bytes() == client.files.content(results).content

    other = _cli(server, "models", "download", "ft:polytune-tiny:nobody:x:abc", "-o", str(tmp_path / "x"))
    assert other.returncode == 5 and other.stderr.startswith("error: ") and other.stderr.count("\n") == 1
