"""Chat completions and completions on the base model through the official openai SDK: the
OpenAI shapes (strict validation), streaming, sampling options, and every bad input a 400/404
that names its field. No training here; test_openai_serving.py serves fine-tuned models."""

from __future__ import annotations

import io

import httpx
import openai
import pytest
from openai import OpenAI

from tests.helpers import chat_jsonl

HELLO = [{"role": "user", "content": "Hello there"}]


def _bad_request(call, param: str, code: str | None = None) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as e:
        call()
    assert e.value.body["param"] == param, e.value.body
    if code:
        assert e.value.body["code"] == code, e.value.body
    return e.value


def test_chat_completion_shape_usage_and_greedy_determinism(client):
    first = client.chat.completions.create(model="polytune-tiny", messages=HELLO, max_tokens=12, temperature=0)
    again = client.chat.completions.create(model="polytune-tiny", messages=HELLO, max_tokens=12, temperature=0)
    assert first.object == "chat.completion" and first.model == "polytune-tiny"
    assert first.id.startswith("chatcmpl-")
    (choice,) = first.choices
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert choice.message.content == again.choices[0].message.content
    assert first.usage.prompt_tokens > 0 and 0 < first.usage.completion_tokens <= 12
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens


def test_streaming_gives_the_same_text_with_usage_and_done(client, server):
    whole = client.chat.completions.create(model="polytune-tiny", messages=HELLO, max_tokens=16, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model="polytune-tiny",
            messages=HELLO,
            max_tokens=16,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finished = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finished == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    # The raw stream ends with OpenAI's terminator.
    raw = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {server.key_a}"},
        json={"model": "polytune-tiny", "messages": HELLO, "max_tokens": 3, "stream": True},
        timeout=120,
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.rstrip().endswith("data: [DONE]")


def test_seeded_sampling_n_choices_stop_and_logprobs(client):
    kwargs = dict(model="polytune-tiny", messages=HELLO, max_tokens=10, temperature=1.0, top_p=0.95, seed=11, n=3)
    a = client.chat.completions.create(**kwargs)
    b = client.chat.completions.create(**kwargs)
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]
    assert len({c.message.content for c in a.choices}) > 1

    # A stop string cuts the text before it, and the choice stops there.
    full = (
        client.completions.create(model="polytune-tiny", prompt="The river and the king", max_tokens=12, temperature=0)
        .choices[0]
        .text
    )
    word = full.split()[1]
    cut = client.completions.create(
        model="polytune-tiny", prompt="The river and the king", max_tokens=12, temperature=0, stop=[word]
    )
    assert cut.choices[0].text == full[: full.index(word)]
    assert cut.choices[0].finish_reason == "stop"

    lp = client.chat.completions.create(
        model="polytune-tiny", messages=HELLO, max_tokens=4, temperature=0, logprobs=True, top_logprobs=3
    )
    tokens = lp.choices[0].logprobs.content
    assert len(tokens) == lp.usage.completion_tokens
    for t in tokens:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        # Greedy: the chosen token is the most likely one.
        assert t.logprob == pytest.approx(max(x.logprob for x in t.top_logprobs))


def test_completions_prompt_list_echo_and_lenient_streaming(client, server):
    out = client.completions.create(
        model="polytune-tiny", prompt=["One", "Two"], max_tokens=3, n=2, echo=True, temperature=0
    )
    assert out.object == "text_completion" and [c.index for c in out.choices] == [0, 1, 2, 3]
    assert out.choices[0].text.startswith("One") and out.choices[2].text.startswith("Two")
    assert out.choices[0].text == out.choices[1].text  # greedy: both choices agree
    assert out.usage.completion_tokens == 12
    logprobs = client.completions.create(model="polytune-tiny", prompt="One", max_tokens=3, logprobs=2).choices[0]
    assert len(logprobs.logprobs.tokens) == 3 and all(len(t) == 2 for t in logprobs.logprobs.top_logprobs)
    # Streamed completion chunks carry finish_reason null until the end, as OpenAI's do; the SDK's
    # strict mode rejects that (its type says the field is never null), so read them leniently.
    lenient = OpenAI(base_url=f"{server.url}/v1", api_key=server.key_a, max_retries=0)
    chunks = list(
        lenient.completions.create(model="polytune-tiny", prompt="One", max_tokens=5, temperature=0, stream=True)
    )
    whole = client.completions.create(model="polytune-tiny", prompt="One", max_tokens=5, temperature=0)
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_unknown_model_is_404(client):
    for call in (
        lambda: client.chat.completions.create(model="ft:nope:x::abc", messages=HELLO),
        lambda: client.completions.create(model="no-such-model", prompt="Hi"),
    ):
        with pytest.raises(openai.NotFoundError) as e:
            call()
        assert e.value.body["code"] == "model_not_found" and e.value.body["param"] == "model"


def test_bad_inputs_name_their_field(client):
    chat = client.chat.completions.create
    _bad_request(lambda: chat(model="polytune-tiny", messages=HELLO, temperature=3), "temperature", "invalid_value")
    _bad_request(lambda: chat(model="polytune-tiny", messages=HELLO, top_p=1.5), "top_p")
    _bad_request(lambda: chat(model="polytune-tiny", messages=[]), "messages")
    _bad_request(lambda: chat(model="polytune-tiny", messages=[{"role": "robot", "content": "x"}]), "messages[0].role")
    _bad_request(lambda: chat(model="polytune-tiny", messages=[{"role": "user"}]), "messages[0].content")
    _bad_request(
        lambda: chat(
            model="polytune-tiny",
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}],
        ),
        "messages[0].content[0].type",
    )
    _bad_request(lambda: chat(model="polytune-tiny", messages=HELLO, max_tokens=0), "max_tokens")
    _bad_request(lambda: chat(model="polytune-tiny", messages=HELLO, stop=["a", "b", "c", "d", "e"]), "stop")
    _bad_request(
        lambda: chat(
            model="polytune-tiny",
            messages=HELLO,
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        ),
        "tools",
        "unsupported_parameter",
    )
    _bad_request(lambda: chat(model="polytune-tiny", messages=HELLO, logit_bias={"999999": 5}), "logit_bias")
    _bad_request(
        lambda: chat(model="polytune-tiny", messages=HELLO, extra_body={"bogus": 1}), "bogus", "unknown_parameter"
    )
    e = _bad_request(
        lambda: chat(model="polytune-tiny", messages=HELLO, max_completion_tokens=100_000),
        "max_completion_tokens",
        "context_length_exceeded",
    )
    assert "maximum context length is 2048 tokens" in e.body["message"]
    _bad_request(
        lambda: chat(model="polytune-tiny", messages=[{"role": "user", "content": "word " * 3000}]),
        "messages",
        "context_length_exceeded",
    )
    _bad_request(
        lambda: client.completions.create(model="polytune-tiny", prompt="Hi", max_tokens=5000),
        "max_tokens",
        "context_length_exceeded",
    )
    _bad_request(lambda: client.completions.create(model="polytune-tiny", prompt=[1, 10**9]), "prompt")


def test_a_model_still_training_is_a_clear_400(client):
    f = client.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl(10))), purpose="fine-tune")
    # One short epoch: cheap even if it started training before the cancel below lands.
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=f.id, suffix="later", hyperparameters={"n_epochs": 1}
    )
    try:
        org = "org-a"  # the key's organization name, as the fixture made it
        future = f"ft:polytune-tiny:{org}:later:{job.id.split('-', 1)[1][:8]}"
        for model in (future, job.id, f"{future}:ckpt-step-1"):
            e = _bad_request(
                lambda: client.chat.completions.create(model=model, messages=HELLO), "model", "model_not_ready"
            )
            assert job.id in e.body["message"] and "not ready" in e.body["message"]
    finally:
        client.fine_tuning.jobs.cancel(job.id)
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model=future, messages=HELLO)
    assert "cancelled" in e.value.body["message"]


def test_base_models_cannot_be_deleted_and_unknown_ones_are_404(client):
    _bad_request(lambda: client.models.delete("polytune-tiny"), "model", "model_not_deletable")
    with pytest.raises(openai.NotFoundError):
        client.models.delete("ft:polytune-tiny:org-a::nothing")


def test_a_killed_engine_is_a_503_to_retry_and_serving_comes_back(client, server):
    # The engine runs in its own process (POLYTUNE_INFERENCE_ENGINE=process, the default): killed
    # mid-request (as the kernel's OOM killer would), the request gets a 503 the SDK knows to
    # retry, the API server stays up, and the next request starts a new engine.
    import os
    import signal
    import threading
    import time

    client.chat.completions.create(model="polytune-tiny", messages=HELLO, max_tokens=1)  # engine up
    (engine,) = _engine_processes(server.proc.pid)
    outcome: list = []

    def long_request() -> None:
        try:
            # The end-of-turn token (id 2 in polytune-tiny) barred: the request runs to 2,000 tokens.
            long = dict(max_tokens=2000, logit_bias={"2": -100})
            outcome.append(client.chat.completions.create(model="polytune-tiny", messages=HELLO, **long))
        except openai.APIStatusError as e:
            outcome.append(e)

    asker = threading.Thread(target=long_request)
    asker.start()
    time.sleep(0.5)  # the request is decoding (2,000 tokens take seconds)
    os.kill(engine, signal.SIGKILL)
    asker.join(timeout=60)
    (error,) = outcome
    assert isinstance(error, openai.InternalServerError) and error.status_code == 503, error
    assert error.body["code"] == "service_unavailable" and "retry" in error.body["message"]
    again = client.chat.completions.create(model="polytune-tiny", messages=HELLO, max_tokens=3, temperature=0)
    assert again.usage.completion_tokens >= 1
    assert _engine_processes(server.proc.pid) != [engine]


def _engine_processes(server_pid: int) -> list[int]:
    """The server's children that multiprocessing spawned (the engine; not its fork server)."""
    from pathlib import Path

    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == server_pid and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return found
