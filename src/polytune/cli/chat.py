"""`polytune chat MODEL`: an interactive chat with a served model, the reply streamed as it is
generated. It talks to a running server over the OpenAI API like any other client, so it
works the same against a local server or a remote one.

Exit codes: 0 the conversation ended (/exit, Ctrl-D, end of input); 1 a reply failed while
reading messages from a pipe; 2 no API key; 5 the server cannot be reached, or refuses the model
(unknown, or not one that chats) before the first message."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, TextIO

import httpx
import orjson
import typer

from polytune.cli.api import ApiKey, BaseUrl, openai_base_url

HELP = "Type a message and press Enter. /reset starts a new conversation, /help shows this, /exit (or Ctrl-D) quits."
DEFAULT_MAX_TOKENS = 512  # a reply ends here at the latest, not at the end of the model's context
EXIT_FAILED_REPLY, EXIT_NO_KEY, EXIT_REFUSED = 1, 2, 5


class ChatError(Exception):
    pass


def stream_reply(client: httpx.Client, url: str, body: dict[str, Any], out: TextIO) -> str:
    """POST a streaming chat request, write the reply to `out` as it comes, return it whole."""
    reply = []
    with client.stream("POST", url, json=body) as response:
        if response.status_code != 200:
            response.read()
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text or f"HTTP {response.status_code}"
            raise ChatError(message)
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[len("data: ") :]
            if data == "[DONE]":
                break
            chunk = orjson.loads(data)
            if "error" in chunk:
                raise ChatError(chunk["error"].get("message") or "the server failed while generating")
            for choice in chunk.get("choices", []):
                piece = (choice.get("delta") or {}).get("content") or ""
                reply.append(piece)
                out.write(piece)
                out.flush()
    return "".join(reply)


def _refusal(client: httpx.Client, base_url: str, model: str) -> str | None:
    """Why the server will not chat with `model` (unreachable, unknown model, a model that cannot
    chat: an image model, no chat template), found with a one-token request before the first
    prompt; None when it will."""
    try:
        response = client.post(
            f"{base_url}/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 1},
        )
    except httpx.HTTPError as e:
        return f"cannot reach the server at {base_url}: {e}"
    if response.status_code == 200:
        return None
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.text or f"HTTP {response.status_code}"


def chat(
    model: Annotated[
        str, typer.Argument(help="a model id, e.g. polytune-tiny or ft:polytune-tiny:my-org:suffix:abc123")
    ],
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    system: Annotated[str | None, typer.Option(help="a system message that starts every conversation")] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="the longest reply, in tokens")] = DEFAULT_MAX_TOKENS,
) -> None:
    """Chat with a served model (base or fine-tuned), the replies streamed as they are generated.
    Exits 0 when the conversation ends, 1 when a reply failed (input from a pipe), 2 without an
    API key, 5 when the server cannot be reached or cannot chat with the model."""
    raise typer.Exit(
        run(model, base_url=base_url, api_key=api_key, system=system, temperature=temperature, max_tokens=max_tokens)
    )


def run(
    model: str,
    *,
    base_url: str | None,
    api_key: str | None,
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = DEFAULT_MAX_TOKENS,
) -> int:
    base_url = openai_base_url(base_url)
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        print(
            "error: no API key; pass --api-key or set POLYTUNE_API_KEY (`polytune keys create --org NAME` makes one)",
            file=sys.stderr,
        )
        return EXIT_NO_KEY
    interactive = sys.stdin.isatty()
    start = [{"role": "system", "content": system}] if system else []
    history = list(start)
    options = {k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None}
    failed = False
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=httpx.Timeout(600, connect=10)) as client:
        refused = _refusal(client, base_url, model)
        if refused is not None:
            print(f"error: {refused}", file=sys.stderr)
            return EXIT_REFUSED
        if interactive:
            print(f"Chatting with {model} at {base_url}. {HELP}")
        while True:
            try:
                line = input("you> " if interactive else "")
            except (EOFError, KeyboardInterrupt):
                break
            text = line.strip()
            if text in ("/exit", "/quit"):
                break
            if text == "/reset":
                history = list(start)
                print("(a new conversation)", file=sys.stderr)
                continue
            if text == "/help":
                print(HELP, file=sys.stderr)
                continue
            if not text:
                continue
            history.append({"role": "user", "content": text})
            if interactive:
                sys.stdout.write(f"{model}> ")
            try:
                reply = stream_reply(
                    client,
                    f"{base_url}/chat/completions",
                    {"model": model, "messages": history, "stream": True, **options},
                    sys.stdout,
                )
            except (ChatError, httpx.HTTPError) as e:
                history.pop()
                where = f" ({base_url})" if isinstance(e, httpx.TransportError) else ""
                if "context length" in str(e):
                    where = " (/reset starts a new conversation)"
                print(f"\nerror: {e}{where}", file=sys.stderr)
                failed = True
                continue
            print()
            history.append({"role": "assistant", "content": reply})
    return 1 if failed and not interactive else 0
