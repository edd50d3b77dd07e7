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
