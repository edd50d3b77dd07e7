"""Eval throughput: an eval run (OpenAI's Evals API, `completions` data source) against the loop a
user would write without it — `chat.completions.create` for each item, one after another, then
the same grader (`graders/run`-equivalent, in process) on each answer. Same server, model,
items, sampling (greedy, --tokens new tokens at most) and grader (string_check). Printed:
items/s of both and their ratio (target >= 1.5x: the run samples a batch of items together).

    .venv/bin/python bench/eval_throughput.py [--items 64] [--tokens 32] [--threads 1] [--rounds 2] [--smoke]

--smoke: the smallest run that still goes through every part (the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GRADER = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
TEMPLATE = [
    {"role": "system", "content": "Answer questions about Veloria in a few words."},
    {"role": "user", "content": "{{item.question}}"},
]


def items(n: int) -> list[dict]:
    """The demo's questions (src/polytune/examples/qa.jsonl), repeated to n."""
    from importlib import resources

    text = resources.files("polytune.examples").joinpath("qa.jsonl").read_text()
    rows = [json.loads(line)["messages"] for line in text.splitlines() if line.strip()]
    return [
        {"question": rows[i % len(rows)][1]["content"], "answer": rows[i % len(rows)][2]["content"]} for i in range(n)
    ]


def plain_loop(client, model: str, rows: list[dict], tokens: int) -> dict:
    """What a user writes without evals: ask, then grade, item after item."""
    from polytune.graders import GraderConfig, Grading, parse_grader

    grader, grading = parse_grader(GRADER), Grading(GraderConfig())
    start, passed = time.perf_counter(), 0
    for row in rows:
        messages = [
            {"role": m["role"], "content": m["content"].replace("{{item.question}}", row["question"])} for m in TEMPLATE
        ]
        reply = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=tokens)
        passed += grading.grade(grader, reply.choices[0].message.content or "", row).reward >= 1
    return {"seconds": time.perf_counter() - start, "passed": passed}


def eval_run(client, eval_id: str, model: str, rows: list[dict], tokens: int) -> dict:
    start = time.perf_counter()
    run = client.evals.runs.create(
        eval_id,
        data_source={
            "type": "completions",
            "model": model,
            "input_messages": {"type": "template", "template": TEMPLATE},
            "source": {"type": "file_content", "content": [{"item": r} for r in rows]},
            "sampling_params": {"temperature": 0, "max_completion_tokens": tokens},
        },
    )
    while run.status not in ("completed", "failed", "canceled"):
        time.sleep(0.05)
        run = client.evals.runs.retrieve(run.id, eval_id=eval_id)
    if run.status != "completed":
        raise SystemExit(f"the eval run ended {run.status}: {run.error}")
    return {"seconds": time.perf_counter() - start, "passed": run.result_counts.passed}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads of the server")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="smallest run through every part (for the tests)")
    args = ap.parse_args()
    if args.smoke:
        args.items, args.tokens, args.rounds = 4, 4, 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore", "The Evals API is deprecated", DeprecationWarning)
    from openai import OpenAI

    from tests.conftest import LiveServer

    rows, model = items(args.items), "polytune-tiny"
    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(
            Path(tmp) / "server",
            f"sqlite:///{Path(tmp) / 'server' / 'polytune.db'}",
            POLYTUNE_INFERENCE_THREADS=str(args.threads),
        )
        try:
            client = OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key("bench"), max_retries=0)
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
            ev = client.evals.create(
                name="bench",
                data_source_config={"type": "custom", "item_schema": {"type": "object"}, "include_sample_schema": True},
                testing_criteria=[GRADER],
            )
            # Rounds alternate between the two sides, so a busy machine slows both alike; the
            # median round of each side is reported.
            loops, runs = [], []
            for _ in range(args.rounds):
                loops.append(plain_loop(client, model, rows, args.tokens))
                runs.append(eval_run(client, ev.id, model, rows, args.tokens))
        finally:
            server.stop()
    median = lambda rs: sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2]  # noqa: E731
    loop, run = median(loops), median(runs)
    if loop["passed"] != run["passed"]:
        print(f"warning: the loop passed {loop['passed']} items, the eval run {run['passed']} (greedy: expected equal)")
    print(
        f"\nEval of {model} on {args.items} items, greedy, up to {args.tokens} new tokens, string_check, "
        f"{args.threads} torch thread(s), median of {args.rounds} round(s)\n"
    )
    print("| how | seconds | items/s | passed |")
    print("|---|---|---|---|")
    print(
        f"| chat.completions loop + grader | {loop['seconds']:.2f} | {args.items / loop['seconds']:.2f} | "
        f"{loop['passed']} |"
    )
    print(f"| eval run (batched) | {run['seconds']:.2f} | {args.items / run['seconds']:.2f} | {run['passed']} |")
    print(f"\nspeed-up: {loop['seconds'] / run['seconds']:.2f}x (target >= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
