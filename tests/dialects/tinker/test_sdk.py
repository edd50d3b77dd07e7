"""The official tinker SDK (0.38.0) drives polytune unchanged: a supervised loop on polytune-tiny,
sampling the trained answers back, saved state reloaded exactly, and organizations kept apart.
A run is a `primitives` job: the other APIs list and cancel it."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.live, pytest.mark.slow]

FACTS = [("Q: red?\nA:", " apple"), ("Q: yellow?\nA:", " banana")]


def datum(types, tokenizer, prompt: str, answer: str):
    p = tokenizer.encode(prompt, add_special_tokens=False)
    a = tokenizer.encode(answer, add_special_tokens=False)
    tokens = p + a
    weights = [0.0] * (len(p) - 1) + [1.0] * len(a)
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights},
    )


def loss(result) -> float:
    return result.metrics["loss:sum"]


@pytest.fixture(scope="module")
def trained(service_a):
    """A run trained on FACTS: (training client, data, first loss, last loss)."""
    from tinker import types

    tc = service_a.create_lora_training_client(base_model="polytune-tiny", rank=8, seed=0).result()
    tok = tc.get_tokenizer()
    data = [datum(types, tok, p, a) for p, a in FACTS]
    losses = []
    for _ in range(30):
        # Submitted back to back, as the SDK's docs advise: the server runs them in order.
        fb = tc.forward_backward(data, "cross_entropy")
        step = tc.optim_step(types.AdamParams(learning_rate=4e-3, grad_clip_norm=1.0))
        losses.append(loss(fb.result()))
        step.result()
    return tc, tok, data, losses


def test_supervised_loop_learns_and_the_sampler_answers(trained, service_a, tinker_server):
    from tinker import types

    tc, tok, data, losses = trained
    assert losses[-1] < losses[0] / 2, losses
    info = tc.get_info()
    assert info.model_data.model_name == "polytune-tiny" and info.lora_rank == 8
    sampler = tc.save_weights_and_get_sampling_client()
    params = types.SamplingParams(max_tokens=len(tok.encode(" banana", add_special_tokens=False)), temperature=0.0)
    for prompt, answer in FACTS:
        out = sampler.sample(
            types.ModelInput.from_ints(tok.encode(prompt, add_special_tokens=False)),
            num_samples=2,
            sampling_params=params,
        ).result()
        assert len(out.sequences) == 2
        assert tok.decode(out.sequences[0].tokens).startswith(answer), (prompt, tok.decode(out.sequences[0].tokens))
        assert len(out.sequences[0].logprobs) == len(out.sequences[0].tokens)
    # Named sampler weights open in a new sampling client, by path.
    path = tc.save_weights_for_sampler("facts").result().path
    assert path.endswith("/sampler_weights/facts")
    again = service_a.create_sampling_client(model_path=path)
    prompt = tok.encode(FACTS[0][0], add_special_tokens=False)
    out = again.sample(types.ModelInput.from_ints(prompt), 1, params).result()
    assert tok.decode(out.sequences[0].tokens).startswith(FACTS[0][1])
    # Seeded sampling at temperature 1 repeats itself; stop ends a sequence early.
    seeded = types.SamplingParams(max_tokens=6, temperature=1.0, top_p=0.9, seed=7)
    first = again.sample(types.ModelInput.from_ints(prompt), 3, seeded).result()
    second = again.sample(types.ModelInput.from_ints(prompt), 3, seeded).result()
    assert [s.tokens for s in first.sequences] == [s.tokens for s in second.sequences]
    stop_at = out.sequences[0].tokens[0]
    stopped = again.sample(
        types.ModelInput.from_ints(prompt), 1, types.SamplingParams(max_tokens=6, temperature=0.0, stop=[stop_at])
    ).result()
    assert stopped.sequences[0].tokens == [stop_at] and stopped.sequences[0].stop_reason == "stop"

    # The run is a job of method `primitives`, listed by the OpenAI API with the same tml- key.
    jobs = httpx.get(
        f"{tinker_server.url}/v1/fine_tuning/jobs",
        timeout=30,
        headers={"Authorization": f"Bearer {tinker_server.key_a}"},
    ).json()["data"]
    mine = [j for j in jobs if j["polytune_method"] == "primitives" and j["method"] is None]
    assert mine and mine[0]["status"] == "running" and mine[0]["model"] == "polytune-tiny"
    assert mine[0]["trained_steps"] >= 30
    # Each optimizer step is a metrics event carrying its loss: the dashboard's loss curve.
    events = httpx.get(
        f"{tinker_server.url}/v1/fine_tuning/jobs/{mine[0]['id']}/events",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {tinker_server.key_a}"},
    ).json()["data"]
    steps = sorted((e["data"] for e in events if e["type"] == "metrics"), key=lambda d: d["step"])
    assert len(steps) >= 30 and steps[0]["train_loss"] == pytest.approx(losses[0], rel=1e-4)


def test_saved_state_reloads_to_the_same_loss(trained, service_a):
    from tinker import types

    tc, _, data, _ = trained
    path = tc.save_state("after-training").result().path
    copy = service_a.create_training_client_from_state_with_optimizer(path).result()
    assert copy.model_id != tc.model_id
    here, there = loss(tc.forward(data, "cross_entropy").result()), loss(copy.forward(data, "cross_entropy").result())
    assert abs(here - there) < 1e-5
    # The optimizer's moments came along: one more step moves both the same way.
    for client in (tc, copy):
        client.forward_backward(data, "cross_entropy").result()
        client.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    here, there = loss(tc.forward(data, "cross_entropy").result()), loss(copy.forward(data, "cross_entropy").result())
    assert abs(here - there) < 1e-5


def test_organizations_are_isolated(trained, service_b, tinker_server):
    import tinker

    tc, _, _, _ = trained
    path = tc.save_weights_for_sampler("private").result().path
    with pytest.raises(tinker.NotFoundError):
        service_b.create_sampling_client(model_path=path).sample(
            tinker.types.ModelInput.from_ints([1, 2]), 1, tinker.types.SamplingParams(max_tokens=1)
        ).result()
    b = {"X-API-Key": tinker_server.key_b}
    assert (
        httpx.post(f"{tinker_server.url}/api/v1/get_info", json={"model_id": tc.model_id}, headers=b).status_code == 404
    )
    jobs = httpx.get(
        f"{tinker_server.url}/v1/fine_tuning/jobs", headers={"Authorization": f"Bearer {tinker_server.key_b}"}
    ).json()
    assert jobs["data"] == []


def test_unsupported_loss_is_a_400_naming_it(trained):
    import tinker

    tc, _, data, _ = trained
    # stable_reinforce: the SDK names it, but its public page does not define the objective; the
    # refusal says so rather than computing a loss of our own under its name.
    with pytest.raises(tinker.BadRequestError, match="loss_fn") as refused:
        tc.forward_backward(data, "stable_reinforce", loss_fn_config={"kl_coeff": 0.01}).result()
    assert "does not define its objective" in str(refused.value)
    # The refused call used up its turn: the run's next calls are not left waiting for it.
    assert tc.forward(data, "cross_entropy").result(timeout=120).metrics["loss:sum"] > 0


def test_cancel_from_the_openai_api_frees_the_run(service_a, tinker_server):
    import time

    a = {"Authorization": f"Bearer {tinker_server.key_a}"}

    def job_ids() -> set[str]:
        return {j["id"] for j in httpx.get(f"{tinker_server.url}/v1/fine_tuning/jobs", headers=a).json()["data"]}

    before = job_ids()
    tc = service_a.create_lora_training_client(base_model="polytune-tiny", rank=4).result()
    (job_id,) = job_ids() - before
    paused = httpx.post(f"{tinker_server.url}/v1/fine_tuning/jobs/{job_id}/pause", headers=a)
    assert paused.status_code == 400 and "Tinker" in paused.json()["error"]["message"]
    cancelled = httpx.post(f"{tinker_server.url}/v1/fine_tuning/jobs/{job_id}/cancel", headers=a).json()
    assert cancelled["status"] == "cancelled"
    # The run's worker lets its model go within a sweep; its calls then say the run has ended.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = httpx.post(
            f"{tinker_server.url}/api/v1/get_info",
            json={"model_id": tc.model_id},
            headers={"X-API-Key": tinker_server.key_a},
        )
        if r.status_code != 200:
            break
        time.sleep(0.5)
    assert r.status_code == 400 and "ended" in r.text, r.text


def test_tml_keys_work_on_every_api_and_a_bad_prefix_is_refused(tinker_server):
    import subprocess

    import tinker

    from tests.conftest import BIN

    assert tinker_server.key_a.startswith("tml-")
    models = httpx.get(f"{tinker_server.url}/v1/models", headers={"Authorization": f"Bearer {tinker_server.key_a}"})
    assert models.status_code == 200 and "polytune-tiny" in models.text
    # The SDK itself refuses other keys: why `--prefix tml-` exists.
    with pytest.raises(tinker.TinkerError, match="tml-"):
        tinker.ServiceClient(base_url=tinker_server.url, api_key="pt-not-a-tinker-key").create_lora_training_client(
            base_model="polytune-tiny"
        )
    bad = subprocess.run(
        [str(BIN / "polytune"), "keys", "create", "--org", "org-a", "--prefix", "tml key"],
        env=tinker_server.env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--prefix" in bad.stderr and "Traceback" not in bad.stderr


def test_an_importance_sampling_step_on_the_samplers_own_logprobs(trained):
    """An RL step as a researcher's loop makes it: sample, score, then importance_sampling with
    the sampler's logprobs. The sampler and the trainer hold the same weights, so the ratio is 1
    and the loss is -sum(advantages)."""
    from tinker import types

    tc, tok, _, _ = trained
    sampler = tc.save_weights_and_get_sampling_client()
    prompt = tok.encode(FACTS[0][0], add_special_tokens=False)
    out = sampler.sample(
        types.ModelInput.from_ints(prompt), 4, types.SamplingParams(max_tokens=3, temperature=1.0, seed=3)
    ).result()
    data, total_advantage = [], 0.0
    for seq in out.sequences:
        reward = 1.0 if tok.decode(seq.tokens).startswith(FACTS[0][1]) else 0.0
        advantage = reward - 0.5
        tokens = prompt + seq.tokens
        n = len(tokens) - 1
        sampled_logprobs = [0.0] * (len(prompt) - 1) + list(seq.logprobs)
        advantages = [0.0] * (len(prompt) - 1) + [advantage] * len(seq.tokens)
        total_advantage += advantage * len(seq.tokens)
        data.append(
            types.Datum(
                model_input=types.ModelInput.from_ints(tokens[:-1]),
                loss_fn_inputs={
                    "target_tokens": tokens[1:],
                    "logprobs": sampled_logprobs[:n],
                    "advantages": advantages[:n],
                },
            )
        )
    result = tc.forward_backward(data, "importance_sampling").result()
    for seq, output in zip(out.sequences, result.loss_fn_outputs):
        trained_logprobs = output["logprobs"].tolist()[-len(seq.tokens) :]
        assert trained_logprobs == pytest.approx(list(seq.logprobs), abs=1e-3)
    assert result.metrics["loss:sum"] == pytest.approx(-total_advantage, abs=1e-2)
    tc.optim_step(types.AdamParams(learning_rate=1e-3)).result()


def test_training_runs_and_checkpoints_are_listed(trained, service_a, service_b):
    import tinker

    tc = trained[0]
    tc.save_state("listed").result()
    rest = service_a.create_rest_client()
    checkpoints = rest.list_checkpoints(tc.model_id).result().checkpoints
    listed = [c for c in checkpoints if c.tinker_path.endswith("/weights/listed")]
    assert listed and listed[0].checkpoint_type == "training" and listed[0].size_bytes > 0
    run_id = listed[0].tinker_path.split("/")[2]  # tinker://<run>/weights/<name>: the run's job id
    runs = rest.list_training_runs().result()
    assert run_id in {r.training_run_id for r in runs.training_runs} and runs.cursor.total_count >= 1
    run = rest.get_training_run(run_id).result()
    assert run.base_model == "polytune-tiny" and run.lora_rank == 8 and run.last_checkpoint is not None
    with pytest.raises(tinker.NotFoundError):
        service_b.create_rest_client().list_checkpoints(run_id).result()
