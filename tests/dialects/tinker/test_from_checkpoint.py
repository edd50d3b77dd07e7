"""One store of checkpoints for both kinds of training: a Tinker run's checkpoint starts a
supervised or DPO job of the OpenAI API (named as its `model`), and a LoRA job's model or
checkpoint starts a Tinker run (`create_training_client_from_state("ft:...")`). Each side sees the
other's weights: the fact the Tinker loop taught is still answered by the job's model, and the
job's model's low loss on it is the Tinker run's starting loss. Another organization gets 404s."""

from __future__ import annotations

import io
import math

import pytest

from tests.dialects.tinker.test_sdk import datum, loss
from tests.dialects.oxen.support import QA_CSV, http, put_file
from tests.helpers import chat_jsonl, preference_jsonl, wait_done

pytestmark = [pytest.mark.live, pytest.mark.slow]

FACT = ("Q: red?\nA:", " apple")


def _openai(server, key):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def _teach(service, **lora):
    """A Tinker run that learned FACT: (its state path, its sampler weights' path, its FACT loss)."""
    from tinker import types

    tc = service.create_lora_training_client(base_model="polytune-tiny", rank=8, seed=0, **lora).result()
    data = [datum(types, tc.get_tokenizer(), *FACT)]
    for _ in range(25):
        tc.forward_backward(data, "cross_entropy")
        tc.optim_step(types.AdamParams(learning_rate=4e-3, grad_clip_norm=1.0)).result()
    taught_loss = loss(tc.forward(data, "cross_entropy").result())
    return tc.save_state("start").result().path, tc.save_weights_for_sampler("start").result().path, taught_loss


@pytest.fixture(scope="module")
def taught(service_a):
    """LoRA on attention and MLP only: an adapter TRL's trainers continue as it is."""
    return _teach(service_a, train_unembed=False)


@pytest.fixture(scope="module")
def job_model(taught, tinker_server):
    """A supervised LoRA job started from the Tinker state, at a learning rate too low to unlearn FACT."""
    client = _openai(tinker_server, tinker_server.key_a)
    file = client.files.create(file=("chat.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=taught[0],
        training_file=file.id,
        method={
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.02}},
        },
    )
    done = wait_done(client, job.id)
    assert done.status == "succeeded", done.error
    return done


def test_a_tinker_state_starts_a_supervised_job(job_model, taught, tinker_server):
    client = _openai(tinker_server, tinker_server.key_a)
    # The job answers the model it was sent (it trains on the checkpoint's base model).
    assert job_model.model == taught[0]
    assert {j.id: j.model for j in client.fine_tuning.jobs.list(limit=100).data}[job_model.id] == taught[0]
    # The job trained the Tinker adapter further: its model still answers what the Tinker loop taught.
    out = client.completions.create(model=job_model.fine_tuned_model, prompt=FACT[0], max_tokens=2, temperature=0)
    assert out.choices[0].text.startswith(FACT[1]), out.choices[0].text


def test_tinker_sampler_weights_start_a_dpo_job(service_a, tinker_server):
    """The SDK's default LoRA also trains the unembedding, which TRL cannot train as an adapter: a
    LoRA job from it is a 400 saying so; a full one merges it first (into an untied output layer)."""
    import openai

    _, sampler_path, _ = _teach(service_a)
    client = _openai(tinker_server, tinker_server.key_a)
    file = client.files.create(file=("pairs.jsonl", io.BytesIO(preference_jsonl(12))), purpose="fine-tune")

    def dpo(**hp):
        return {"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 1, "batch_size": 4, **hp}}}

    with pytest.raises(openai.BadRequestError, match="unembedding") as refused:
        client.fine_tuning.jobs.create(model=sampler_path, training_file=file.id, method=dpo())
    assert refused.value.body["param"] == "model"
    job = client.fine_tuning.jobs.create(
        model=sampler_path, training_file=file.id, method=dpo(lora=False, learning_rate_multiplier=0.01)
    )
    done = wait_done(client, job.id)
    assert done.status == "succeeded", done.error
    out = client.completions.create(model=done.fine_tuned_model, prompt=FACT[0], max_tokens=2, temperature=0)
    assert out.choices[0].text.startswith(FACT[1]), out.choices[0].text


def test_a_job_model_starts_a_tinker_run(job_model, taught, service_a):
    from tinker import types

    fresh = service_a.create_lora_training_client(base_model="polytune-tiny", rank=8, seed=0).result()
    data = [datum(types, fresh.get_tokenizer(), *FACT)]
    base_loss = loss(fresh.forward(data, "cross_entropy").result())
    tc = service_a.create_training_client_from_state(job_model.fine_tuned_model).result()
    start_loss = loss(tc.forward(data, "cross_entropy").result())
    # The Tinker state's loss, carried through the job (trained on other data at a low rate).
    assert start_loss < base_loss - 1 and math.isclose(start_loss, taught[2], rel_tol=0.02), (
        start_loss,
        base_loss,
        taught[2],
    )
    # It trains on: the job's adapter (its rank, alpha, target modules) is the run's.
    for _ in range(5):
        tc.forward_backward(data, "cross_entropy")
        tc.optim_step(types.AdamParams(learning_rate=1e-3)).result()
    assert loss(tc.forward(data, "cross_entropy").result()) < start_loss
    # Saved for the sampler, the run's weights answer what the Tinker loop taught before the job.
    sampler = tc.save_weights_and_get_sampling_client().result()
    prompt = types.ModelInput.from_ints(fresh.get_tokenizer().encode(FACT[0], add_special_tokens=False))
    out = sampler.sample(prompt, 1, types.SamplingParams(max_tokens=2, temperature=0.0)).result()
    assert fresh.get_tokenizer().decode(out.sequences[0].tokens).startswith(FACT[1])


def test_a_job_checkpoint_starts_a_tinker_run(job_model, service_a, tinker_server):
    client = _openai(tinker_server, tinker_server.key_a)
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job_model.id).data
    assert checkpoints, "a 2-epoch job saves a checkpoint per epoch"
    tc = service_a.create_training_client_from_state(checkpoints[-1].fine_tuned_model_checkpoint).result()
    assert tc.get_info().model_data.model_name == "polytune-tiny"


def test_another_organization_gets_404s_both_ways(taught, job_model, service_b, tinker_server):
    import openai
    import tinker

    client_b = _openai(tinker_server, tinker_server.key_b)
    file = client_b.files.create(file=("chat.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
    for model in (taught[0], taught[1], job_model.fine_tuned_model):
        with pytest.raises(openai.NotFoundError):
            client_b.fine_tuning.jobs.create(model=model, training_file=file.id)
    with pytest.raises(tinker.NotFoundError):
        service_b.create_training_client_from_state(job_model.fine_tuned_model).result()
    assert client_b.fine_tuning.jobs.list().data == []


def test_another_organizations_checkpoint_is_refused_on_seekrflow_too(taught, job_model, tinker_server, tmp_path):
    """SeekrFlow reads the model's context length before creating: a checkpoint the organization
    cannot see is a 404 naming the model there, as on the other APIs."""
    from seekrai import SeekrFlow
    from seekrai.error import InvalidRequestError
    from seekrai.types import InfrastructureConfig, TrainingConfig

    seekr_b = SeekrFlow(api_key=tinker_server.key_b, base_url=tinker_server.url)
    path = tmp_path / "train.jsonl"
    path.write_bytes(chat_jsonl(10))
    train_file = seekr_b.files.upload(path, purpose="fine-tune").id
    project = seekr_b.projects.create(name="Not mine", description="refused").id
    for model in (taught[0], job_model.fine_tuned_model):
        with pytest.raises(InvalidRequestError) as refused:
            seekr_b.fine_tuning.create(
                project_id=project,
                training_config=TrainingConfig(training_files=[train_file], model=model, n_epochs=1),
                infrastructure_config=InfrastructureConfig(accel_type="A100", n_accel=1),
            )
        assert refused.value.http_status == 404 and model in str(refused.value), refused.value
    assert seekr_b.fine_tuning.list().data == []


def test_every_job_api_answers_the_model_it_was_sent(taught, job_model, tinker_server, tmp_path):
    """As OpenAI answers the `ft:` name of a job that fine-tunes a fine-tuned model: create,
    retrieve, list and cancel of each job API show the checkpoint the job was created with."""
    import openai
    from seekrai import SeekrFlow
    from seekrai.types import InfrastructureConfig, TrainingConfig

    state, ft_model = taught[0], job_model.fine_tuned_model
    key = tinker_server.key_a
    # OpenAI's SDK at /v1 (OpenAI, Nebius) and at /api/llm (TrueFoundry), validating strictly: a
    # Tinker run in the list (method `primitives`, outside OpenAI's enum) must not break the page.
    for base_url, model in ((f"{tinker_server.url}/v1", ft_model), (f"{tinker_server.url}/api/llm", state)):
        client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, _strict_response_validation=True)
        file = client.files.create(file=("chat.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=model, training_file=file.id)
        assert job.model == model
        assert client.fine_tuning.jobs.retrieve(job.id).model == model
        listed = client.fine_tuning.jobs.list(limit=100).data
        assert {j.id: j.model for j in listed}[job.id] == model
        assert client.fine_tuning.jobs.cancel(job.id).model == model

    # SeekrFlow's SDK: training_config.model (no lora_config: a full fine-tune, the adapter merged first).
    seekr = SeekrFlow(api_key=key, base_url=tinker_server.url)
    path = tmp_path / "train.jsonl"
    path.write_bytes(chat_jsonl(10))
    train_file = seekr.files.upload(path, purpose="fine-tune").id
    project = seekr.projects.create(name="From a checkpoint", description="starts").id
    job = seekr.fine_tuning.create(
        project_id=project,
        training_config=TrainingConfig(training_files=[train_file], model=state, n_epochs=1),
        infrastructure_config=InfrastructureConfig(accel_type="A100", n_accel=1),
    )
    assert job.model == state and seekr.fine_tuning.retrieve(job.id).model == state
    assert {j.id: j.model for j in seekr.fine_tuning.list().data}[job.id] == state
    assert seekr.fine_tuning.cancel(job.id).model == state

    # Oxen.ai's fine-tune API over HTTP: base_model (the job is held in `created`, never run here).
    with http(tinker_server, key) as oxen:
        assert oxen.post("/api/repos", json={"namespace": "ada", "name": "starts"}).status_code == 200
        put_file(oxen, "ada/starts", "qa.csv", QA_CSV.encode())
        body = {"resource": "main/qa.csv", "base_model": ft_model, "script_type": "text_generation"}
        created = oxen.post("/api/repos/ada/starts/fine_tunes", json=body)
        assert created.status_code == 201, created.text
        ft = created.json()["fine_tune"]
        assert ft["base_model"] == ft_model
        assert oxen.get(f"/api/repos/ada/starts/fine_tunes/{ft['id']}").json()["fine_tune"]["base_model"] == ft_model
        listed = oxen.get("/api/repos/ada/starts/fine_tunes").json()["fine_tunes"]
        assert {j["id"]: j["base_model"] for j in listed}[ft["id"]] == ft_model
        # The same job through the OpenAI API names it too.
        assert _openai(tinker_server, key).fine_tuning.jobs.retrieve(ft["id"]).model == ft_model


def test_a_refused_job_leaves_no_copy_of_the_state_behind(taught, tinker_server):
    """A job named by a Tinker state gets a copy of it in blob storage (starts/) when it is created;
    a create refused after that (here: a training file that does not exist) removes it again."""
    import openai

    starts = tinker_server.tmp / "data" / "blobs" / "starts"
    before = set(starts.iterdir()) if starts.is_dir() else set()
    client = _openai(tinker_server, tinker_server.key_a)
    with pytest.raises(openai.BadRequestError, match="file-nothing"):
        client.fine_tuning.jobs.create(model=taught[0], training_file="file-nothing")
    assert (set(starts.iterdir()) if starts.is_dir() else set()) == before
    file = client.files.create(file=("chat.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=taught[0], training_file=file.id)
    client.fine_tuning.jobs.cancel(job.id)
    assert len(set(starts.iterdir()) - before) == 1  # the created job's copy stays with it
