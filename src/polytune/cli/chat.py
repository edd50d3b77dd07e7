"""`polytune chat MODEL`: an interactive chat with a served model, the reply streamed as it is
generated. It talks to a running server over the OpenAI API like any other client, so it
works the same against a local server or a remote one."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, TextIO

import httpx
import orjson
import typer

from polytune.cli.api import ApiKey, BaseUrl, openai_base_url

HELP = "Type a message and press Enter. /reset starts a new conversation, /exit (or Ctrl-D) quits."


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
            data = line[len("data: "):]
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


def chat(model: Annotated[str, typer.Argument(
             help="a model id, e.g. polytune-tiny or ft:polytune-tiny:my-org:suffix:abc123")],
         base_url: BaseUrl = None, api_key: ApiKey = None,
         system: Annotated[str | None, typer.Option(help="a system message that starts every conversation")] = None,
         temperature: Annotated[float | None, typer.Option()] = None,
         max_tokens: Annotated[int | None, typer.Option()] = None) -> None:
    """Chat with a served model (base or fine-tuned), the replies streamed as they are generated."""
    raise typer.Exit(run(model, base_url=base_url, api_key=api_key, system=system, temperature=temperature,
                         max_tokens=max_tokens))


def run(model: str, *, base_url: str | None, api_key: str | None, system: str | None = None,
        temperature: float | None = None, max_tokens: int | None = None) -> int:
    base_url = openai_base_url(base_url)
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        print("error: no API key; pass --api-key or set POLYTUNE_API_KEY "
              "(`polytune keys create --org NAME` makes one)", file=sys.stderr)
        return 2
    interactive = sys.stdin.isatty()
    start = [{"role": "system", "content": system}] if system else []
    history = list(start)
    options = {k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None}
    if interactive:
        print(f"Chatting with {model} at {base_url}. {HELP}")
    failed = False
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=httpx.Timeout(600, connect=10)) as client:
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
                continue
            if not text:
                continue
            history.append({"role": "user", "content": text})
            if interactive:
                sys.stdout.write(f"{model}> ")
            try:
                reply = stream_reply(client, f"{base_url}/chat/completions",
                                     {"model": model, "messages": history, "stream": True, **options},
                                     sys.stdout)
            except (ChatError, httpx.HTTPError) as e:
                history.pop()
                print(f"\nerror: {e}", file=sys.stderr)
                failed = True
                continue
            print()
            history.append({"role": "assistant", "content": reply})
    return 1 if failed and not interactive else 0
