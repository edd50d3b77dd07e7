"""The polytune demo: a real fine-tuning job through the official `openai` SDK.

Starts `polytune serve` on the embedded defaults (SQLite, local blobs, local workers, the
built-in tiny model) in a fresh data folder, uploads a small question -> answer dataset,
creates a job with every hyperparameter on "auto", shows it train, and compares the base
model's answers with the fine-tuned model's, both asked through the server's chat endpoint,
then evaluates both through OpenAI's Evals API and prints the pass rate before and after.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import httpx
from openai import OpenAI
from tqdm import tqdm

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    log = open(Path(env["POLYTUNE_DATA_DIR"]) / "server.log", "wb")
    proc = subprocess.Popen(
        [str(BIN / "polytune"), "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    raise SystemExit(f"the server did not start; see {env['POLYTUNE_DATA_DIR']}/server.log")


def latest_loss(client: OpenAI, job_id: str) -> float | None:
    for ev in client.fine_tuning.jobs.list_events(job_id, limit=10).data:
        if ev.type == "metrics" and ev.data and "train_loss" in ev.data:
            return ev.data["train_loss"]
    return None


def follow(client: OpenAI, job_id: str):
    bar = tqdm(total=1, desc="validating_files", unit="step", dynamic_ncols=True, mininterval=1.0)
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        step = job.model_extra.get("trained_steps") or 0
        if job.status == "running" and job.model_extra.get("total_steps") and step != bar.n:
            bar.set_description("training", refresh=False)
            bar.total = job.model_extra["total_steps"]
            loss = latest_loss(client, job_id)
            eta = max(0, (job.estimated_finish or 0) - int(time.time()))
            bar.set_postfix_str(f"loss={loss:.3f} eta={eta}s" if loss is not None else f"eta={eta}s", refresh=False)
            bar.update(step - bar.n)
        elif job.status != "running" and bar.desc != job.status:
            bar.set_description(job.status)
        if job.status in ("succeeded", "failed", "cancelled"):
            if job.status == "succeeded":
                bar.n = bar.total
                bar.refresh()
            bar.close()
            return job
        time.sleep(0.5)


def ask_all(client: OpenAI, model: str, prompts: list[list[dict]]) -> list[str]:
    """Greedy replies from the server's chat endpoint, all questions at once (batched there)."""

    def ask(messages: list[dict]) -> str:
        reply = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=24)
        return reply.choices[0].message.content or ""

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(ask, prompts))


def eval_pass_rates(client: OpenAI, rows: list[dict], models: list[str]) -> dict[str, tuple[float, str]]:
    """The same comparison through OpenAI's Evals API (docs/evals.md): one eval (a string_check of
    the answer), one run per model over the demo's questions; {model: (pass rate, report URL)}."""
    items = [
        {
            "item": {
                "system": r["messages"][0]["content"],
                "question": r["messages"][1]["content"],
                "answer": r["messages"][2]["content"],
            }
        }
        for r in rows
    ]
    data = "\n".join(json.dumps(i) for i in items).encode()
    file = client.files.create(file=("qa-eval.jsonl", data), purpose="evals")
    ev = client.evals.create(
        name="demo facts",
        data_source_config={
            "type": "custom",
            "item_schema": {
                "type": "object",
                "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
            },
        },
        testing_criteria=[
            {
                "type": "string_check",
                "name": "exact answer",
                "operation": "eq",
                "input": "{{sample.output_text}}",
                "reference": "{{item.answer}}",
            }
        ],
    )
    template = [{"role": "system", "content": "{{item.system}}"}, {"role": "user", "content": "{{item.question}}"}]
    runs = [
        client.evals.runs.create(
            ev.id,
            name=model,
            data_source={
                "type": "completions",
                "model": model,
                "source": {"type": "file_id", "id": file.id},
                "input_messages": {"type": "template", "template": template},
                "sampling_params": {"temperature": 0, "max_completion_tokens": 24},
            },
        )
        for model in models
    ]
    rates = {}
    for run in runs:
        while run.status not in ("completed", "failed", "canceled"):
            time.sleep(0.5)
            run = client.evals.runs.retrieve(run.id, eval_id=ev.id)
        counts = run.result_counts
        rates[run.model] = (counts.passed / counts.total if counts.total else 0.0, run.report_url)
    return rates


def main() -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="polytune-demo-"))
    port = free_port()
    env = {**os.environ, "POLYTUNE_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    env.pop("POLYTUNE_DATABASE_URL", None)
    env.pop("POLYTUNE_STORAGE_URL", None)
    print(f"Starting polytune on http://127.0.0.1:{port} (data in {data_dir}) ...")
    server = start_server(env, port)
    try:
        out = subprocess.run(
            [str(BIN / "polytune"), "keys", "create", "--org", "demo"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = out.stdout.strip().splitlines()[-1]
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key)

        dataset = resources.files("polytune.examples").joinpath("qa.jsonl")
        rows = [json.loads(line) for line in dataset.read_text().splitlines() if line.strip()]
        with dataset.open("rb") as f:
            uploaded = client.files.create(file=("qa.jsonl", f), purpose="fine-tune")
        print(f"Uploaded {uploaded.filename}: {uploaded.id}, {uploaded.bytes} bytes, {uploaded.status_details}")

        job = client.fine_tuning.jobs.create(model="polytune-tiny", training_file=uploaded.id, suffix="demo")
        print(f"Created job {job.id} (status {job.status})")
        t0 = time.monotonic()
        job = follow(client, job.id)
        if job.status != "succeeded":
            print(f"The job ended {job.status}: {job.error}")
            return 1
        hp = job.hyperparameters
        print(f"Succeeded in {time.monotonic() - t0:.0f}s: {job.fine_tuned_model}")
        print(
            f"  hyperparameters: n_epochs={hp.n_epochs} batch_size={hp.batch_size} "
            f"learning_rate_multiplier={hp.learning_rate_multiplier}; trained tokens: {job.trained_tokens}"
        )

        prompts = [[m for m in r["messages"] if m["role"] != "assistant"] for r in rows]
        expected = [next(m["content"] for m in r["messages"] if m["role"] == "assistant") for r in rows]
        before = ask_all(client, "polytune-tiny", prompts)
        after = ask_all(client, job.fine_tuned_model, prompts)
        print(f"\n{'question':44} {'base model':22} {'fine-tuned':22}")
        for p, b, a, e in zip(prompts, before, after, expected):
            mark = "✓" if a.strip() == e.strip() else "✗"
            print(f"{p[-1]['content'][:43]:44} {b.strip()[:21]:22} {a.strip()[:21]:22} {mark}")
        rate = lambda answers: sum(x.strip() == e.strip() for x, e in zip(answers, expected)) / len(expected)  # noqa: E731
        print(f"\nExact match: base model {rate(before):.0%} -> fine-tuned {rate(after):.0%}")
        with warnings.catch_warnings():  # the SDK marks its Evals API deprecated; polytune serves it
            warnings.simplefilter("ignore", DeprecationWarning)
            evals = eval_pass_rates(client, rows, ["polytune-tiny", job.fine_tuned_model])
        (base_rate, _), (tuned_rate, report) = evals["polytune-tiny"], evals[job.fine_tuned_model]
        print(f"Eval (Evals API): pass rate before {base_rate:.0%} -> after {tuned_rate:.0%}  (report: {report})")
        results = client.files.content(job.result_files[0]).text.splitlines()
        print(f"Results file {job.result_files[0]}: {len(results) - 1} steps, last: {results[-1]}")
        return 0 if rate(after) >= 0.9 else 1
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
