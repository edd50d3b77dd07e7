"""The engine in its own process (the default backend), on the real tiny model: early close
aborting the row there, pacing, a killed engine process failing its requests with a 503 and
coming back, and no engine outliving its server. What both backends must do alike runs on both
elsewhere: plain `generate`'s tokens (test_hf_backend.py), a diverged model's error crossing as
itself (tests/training/test_divergence.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from polytune.domain.errors import Unavailable
from polytune.inference.backend import ModelTarget, SamplingParams
from polytune.inference.process_backend import ProcessBackend
from tests.inference.test_hf_backend import QUESTIONS, _collect, _prompt, tokenizer  # noqa: F401

BUDGET = 1 << 30
pytestmark = pytest.mark.live  # each test starts an engine process


def _hand_overs(backend, request_id, target, prompt, params):
    async def main():
        return [evs async for evs in backend.generate(request_id, target, prompt, params)]

    return asyncio.run(main())


def test_closing_the_stream_early_frees_the_row_in_the_engine(tiny, tokenizer):  # noqa: F811
    target = ModelTarget("polytune-tiny", tiny[1])
    # One row: a long request the engine went on decoding would keep the next one waiting forever.
    backend = ProcessBackend(memory_budget_bytes=BUDGET, max_batch=1)

    async def main():
        stream = backend.generate("long", target, _prompt(tokenizer, "Hi"), SamplingParams(max_tokens=100_000))
        async for _ in stream:
            break
        await stream.aclose()
        short = _collect(backend, "short", target, _prompt(tokenizer, "Why?"), SamplingParams(max_tokens=3))
        return await asyncio.wait_for(short, timeout=60)

    try:
        short = asyncio.run(main())
    finally:
        backend.close()
    assert len(short) == 3 and short[-1].finish_reason == "length"


def test_tokens_are_handed_over_at_most_every_interval(tiny, tokenizer):  # noqa: F811
    target = ModelTarget("polytune-tiny", tiny[1])
    params = SamplingParams(max_tokens=200, temperature=0)
    prompt = _prompt(tokenizer, QUESTIONS[2])
    paced = ProcessBackend(memory_budget_bytes=BUDGET, hand_over_interval=0.05)
    each = ProcessBackend(memory_budget_bytes=BUDGET, hand_over_interval=0.0)
    try:
        batches = _hand_overs(paced, "p", target, prompt, params)
        singles = _hand_overs(each, "e", target, prompt, params)
    finally:
        paced.close()
        each.close()
    tokens = [ev.token_id for evs in batches for ev in evs]
    assert tokens == [ev.token_id for evs in singles for ev in evs] and len(tokens) == 200
    assert len(batches[0]) == 1  # the first token goes at once
    assert len(batches) < len(tokens) / 2  # the rest a few at a time (a token here takes ~1-5 ms)
    # Unpaced, the engine sends every turn's token (the consumer may still take a few at once).
    assert len(singles) > 2 * len(batches) and batches[-1][-1].finish_reason == "length"


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_engine_fails_its_requests_with_a_503_and_comes_back(tiny, tokenizer):  # noqa: F811
    target = ModelTarget("polytune-tiny", tiny[1])
    backend = ProcessBackend(memory_budget_bytes=BUDGET)

    async def main():
        stream = backend.generate("doomed", target, _prompt(tokenizer, "Hi"), SamplingParams(max_tokens=100_000))
        first = await anext(stream)
        dead = backend.process
        os.kill(dead.pid, signal.SIGKILL)  # as the kernel's OOM killer would
        with pytest.raises(Unavailable) as failed:
            async for _ in stream:
                pass
        again = await asyncio.wait_for(
            _collect(backend, "after", target, _prompt(tokenizer, "Why?"), SamplingParams(max_tokens=3)), 120
        )
        return first, failed.value, dead, again, backend.process

    try:
        first, error, dead, again, revived = asyncio.run(main())
    finally:
        backend.close()
    assert len(first) >= 1
    assert error.kind == "unavailable" and "retry" in error.message
    assert dead.exitcode == -signal.SIGKILL
    assert revived.pid != dead.pid and len(again) == 3


def test_close_stops_the_engine_process(tiny, tokenizer):  # noqa: F811
    backend = ProcessBackend(memory_budget_bytes=BUDGET)
    target = ModelTarget("polytune-tiny", tiny[1])
    assert backend.stats()["models"] == {}  # nothing started, nothing loaded
    # A one-token request: its only token ends it, and the stats it changed come with it.
    asyncio.run(_collect(backend, "r", target, _prompt(tokenizer, "Hi"), SamplingParams(max_tokens=1)))
    assert backend.stats()["models"]["polytune-tiny"]["bytes"] > 0
    process = backend.process
    backend.close()
    assert not process.is_alive() and process.exitcode == 0
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(_collect(backend, "late", target, [1, 2], SamplingParams(max_tokens=2)))


def test_the_engine_exits_when_the_server_is_killed(tiny, tmp_path):
    # An orphaned engine would hold the model's memory (a GPU's, on a real deployment) forever.
    script = tmp_path / "server.py"
    script.write_text(
        "import asyncio, sys, time\n"
        "from polytune.inference.backend import ModelTarget, SamplingParams\n"
        "from polytune.inference.process_backend import ProcessBackend\n"
        "async def main(backend):\n"
        "    target = ModelTarget('polytune-tiny', sys.argv[1])\n"
        "    async for _ in backend.generate('r', target, [1, 2, 3], SamplingParams(max_tokens=2)):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    backend = ProcessBackend(memory_budget_bytes=1 << 30)\n"
        "    asyncio.run(main(backend))\n"
        "    print(backend.process.pid, flush=True)\n"
        "    time.sleep(600)\n"
    )
    server = subprocess.Popen([sys.executable, str(script), str(tiny[1])], stdout=subprocess.PIPE, text=True)
    try:
        engine_pid = int(server.stdout.readline())
        server.kill()
        server.wait(timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _running(engine_pid):
            time.sleep(0.1)
        assert not _running(engine_pid)
    finally:
        server.kill()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_the_server_starts_its_engine_with_it_and_serves_from_it(tmp_path):
    # POLYTUNE_INFERENCE_WARM_START (default true): the engine process is up before any request
    # (torch imported there while nothing waits), and the first chat request is served by it.
    from openai import OpenAI

    from tests.conftest import LiveServer
    from tests.dialects.openai.test_serving import _engine_processes

    server = LiveServer(tmp_path / "srv", f"sqlite:///{tmp_path / 'db.sqlite'}", POLYTUNE_INFERENCE_WARM_START="true")
    try:
        deadline = time.monotonic() + 30
        while not (engines := _engine_processes(server.proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(engines) == 1, "no engine process beside the server before any request"
        client = OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key("org-a"), max_retries=0)
        answer = client.chat.completions.create(
            model="polytune-tiny", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
        )
        assert answer.usage.completion_tokens >= 1
        assert _engine_processes(server.proc.pid) == engines  # the same process served it
    finally:
        server.stop()
