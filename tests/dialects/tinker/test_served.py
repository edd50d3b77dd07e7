"""Sampler weights saved by a Tinker loop are fine-tuned models of their organization: the openai
SDK lists them and chats with them at /v1/chat/completions by their tinker:// path."""

from __future__ import annotations

import pytest

from tests.dialects.tinker.test_sdk import datum

pytestmark = [pytest.mark.live, pytest.mark.slow]

FACT = ("Q: red?\nA:", " apple")


@pytest.fixture(scope="module")
def saved(service_a):
    """A short loop that learns FACT; (tokenizer, its sampler weights' path)."""
    from tinker import types

    tc = service_a.create_lora_training_client(base_model="polytune-tiny", rank=8, seed=0).result()
    tok = tc.get_tokenizer()
    data = [datum(types, tok, *FACT)]
    for _ in range(20):
        tc.forward_backward(data, "cross_entropy")
        tc.optim_step(types.AdamParams(learning_rate=4e-3, grad_clip_norm=1.0)).result()
    return tc, tok, tc.save_weights_for_sampler("served").result().path


def _openai(server, key):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def test_sampler_weights_are_served_at_chat_completions(saved, tinker_server):
    tc, tok, path = saved
    client = _openai(tinker_server, tinker_server.key_a)
    models = {m.id: m for m in client.models.list().data}
    assert path in models and models[path].owned_by != "polytune"
    # The same greedy continuation as the Tinker sampler over the same weights.
    completion = client.completions.create(model=path, prompt=FACT[0], max_tokens=2, temperature=0)
    assert completion.choices[0].text.startswith(FACT[1]), completion.choices[0].text
    chat = client.chat.completions.create(
        model=path, messages=[{"role": "user", "content": "red?"}], max_tokens=3, temperature=0
    )
    assert chat.choices[0].message.content is not None and chat.model == path


def test_saving_the_name_again_serves_the_new_weights(saved, tinker_server):
    from tinker import types

    tc, tok, path = saved
    client = _openai(tinker_server, tinker_server.key_a)
    before = client.completions.create(model=path, prompt="Q: blue?\nA:", max_tokens=3, temperature=0)
    data = [datum(types, tok, "Q: blue?\nA:", " sky")]
    for _ in range(20):
        tc.forward_backward(data, "cross_entropy")
        tc.optim_step(types.AdamParams(learning_rate=4e-3, grad_clip_norm=1.0)).result()
    assert tc.save_weights_for_sampler("served").result().path == path
    after = client.completions.create(model=path, prompt="Q: blue?\nA:", max_tokens=1, temperature=0)
    assert after.choices[0].text == " sky" != before.choices[0].text[: len(" sky")]
    assert [m.id for m in client.models.list().data].count(path) == 1


def test_another_organization_cannot_see_or_use_them(saved, tinker_server):
    openai = pytest.importorskip("openai")
    _, _, path = saved
    client = _openai(tinker_server, tinker_server.key_b)
    assert path not in {m.id for m in client.models.list().data}
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=path, messages=[{"role": "user", "content": "red?"}], max_tokens=2)


def test_external_weights_download_and_load_in_peft(saved, service_a, tinker_server, tmp_path):
    import httpx
    import tinker
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tc, _, _ = saved
    # The steps above taught " sky" after "Q: blue?"; the export carries that adapter.
    path = tc.save_weights_external("export").result().path
    assert path.endswith("/external_weights/export")
    rest = tinker.RestClient(base_url=tinker_server.url, api_key=tinker_server.key_a)
    listed = rest.list_checkpoints(tc.model_id).result().checkpoints
    assert any(c.tinker_path == path and c.checkpoint_type == "external" for c in listed)
    response = rest.get_external_weights_urls(path).result()
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"} <= set(response.urls)
    for name, url in response.urls.items():  # a plain GET, no key, as `tinker checkpoint download` does
        got = httpx.get(url, timeout=30)
        assert got.status_code == 200, (name, got.text)
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(got.content)
    base = AutoModelForCausalLM.from_pretrained(tc.get_info().model_data.tokenizer_id, dtype=torch.float32)
    model, tok = PeftModel.from_pretrained(base, tmp_path).eval(), AutoTokenizer.from_pretrained(tmp_path)
    ids = torch.tensor([tok.encode("Q: blue?\nA:", add_special_tokens=False)])
    out = model.generate(ids, max_new_tokens=1, do_sample=False)
    assert tok.decode(out[0, ids.shape[1] :]) == " sky"
    # A forged or tampered URL is a 404; so is another organization's checkpoint.
    url = next(iter(response.urls.values()))
    assert httpx.get(url.replace("signature=", "signature=0"), timeout=30).status_code == 404
    run_id, checkpoint = path.removeprefix("tinker://").split("/", 1)
    b = httpx.get(
        f"{tinker_server.url}/api/v1/training_runs/{run_id}/checkpoints/{checkpoint}/external_weights_urls",
        headers={"X-API-Key": tinker_server.key_b},
        timeout=30,
    )
    assert b.status_code == 404
    # Encryption is refused with a 400 naming the field.
    refused = httpx.post(
        f"{tinker_server.url}/api/v1/save_weights_external",
        json={"model_id": tc.model_id, "path": "sealed", "age_encryption_recipients": ["age1x"]},
        headers={"X-API-Key": tinker_server.key_a},
        timeout=30,
    )
    assert refused.status_code == 400 and "age_encryption_recipients" in refused.text


def test_prompt_logprobs_match_a_plain_transformers_forward(saved, service_a):
    import math

    import torch
    from tinker import types
    from transformers import AutoModelForCausalLM

    tc, tok, _ = saved
    base_dir = tc.get_info().model_data.tokenizer_id
    prompt = tok.encode("Q: red?\nA: an apple a day", add_special_tokens=False)
    sampler = service_a.create_sampling_client(base_model="polytune-tiny").result()
    out = sampler.sample(
        types.ModelInput.from_ints(prompt),
        2,
        types.SamplingParams(max_tokens=2, temperature=0.0),
        include_prompt_logprobs=True,
    ).result()
    assert out.prompt_logprobs is not None and len(out.prompt_logprobs) == len(prompt)
    assert out.prompt_logprobs[0] is None and len(out.sequences) == 2
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        scores = torch.log_softmax(model(torch.tensor([prompt])).logits[0, :-1].float(), dim=-1)
    expected = scores.gather(1, torch.tensor(prompt[1:]).unsqueeze(1)).squeeze(1).tolist()
    for got, want in zip(out.prompt_logprobs[1:], expected, strict=True):
        assert math.isclose(got, want, abs_tol=1e-3), (got, want)
    # Without the flag there are none.
    plain = sampler.sample(types.ModelInput.from_ints(prompt), 1, types.SamplingParams(max_tokens=1)).result()
    assert plain.prompt_logprobs is None
