"""Small data builders shared by tests."""

from __future__ import annotations

import json
import os
import time


def chat_jsonl(n: int = 12, *, answer: str = "Blue.") -> bytes:
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": f"Question number {i}?"},
                {"role": "assistant", "content": f"{answer} {i}"},
            ]
        }
        for i in range(n)
    ]
    return "\n".join(json.dumps(r) for r in rows).encode() + b"\n"


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.25):
    """Poll until predicate() returns something truthy; return it (or fail after timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


TERMINAL = ("succeeded", "failed", "cancelled")


def wait_done(client, job_id: str, timeout: float = 300):
    """The job (openai SDK) once it has ended."""
    return wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job_id)).status in TERMINAL and j, timeout)


def wait_training(client, job_id: str, timeout: float = 240):
    """The job once it runs and has trained a step."""
    return wait_for(
        lambda: (
            (j := client.fine_tuning.jobs.retrieve(job_id)).status == "running"
            and (j.model_extra.get("trained_steps") or 0) > 0
            and j
        ),
        timeout,
    )


def job_worker(server, job_id: str) -> dict:
    """Where the job's worker runs, as the executor recorded it (the job row's `worker`)."""
    import json

    import sqlalchemy as sa

    eng = sa.create_engine(server.env["POLYTUNE_DATABASE_URL"])
    try:
        with eng.connect() as c:
            worker = c.execute(sa.text("SELECT worker FROM jobs WHERE id = :i"), {"i": job_id}).scalar()
    finally:
        eng.dispose()
    return json.loads(worker) if isinstance(worker, str) else worker


def ray_task_pid(job_id: str) -> int | None:
    """The process a job's Ray task runs in on this machine: Ray titles a worker process after
    the task it runs (`ray::polytune-<job>`), and back to idle when the task ends."""
    from pathlib import Path

    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if f"polytune-{job_id}" in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    return int(proc.name)
            except OSError:
                continue
    return None


def group_gone(pid: int) -> bool:
    """True once no process is left in the process group `pid` (a worker and all it started)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


TOPICS = (
    "the sea",
    "a lamp",
    "bread",
    "winter",
    "a violin",
    "maps",
    "honey",
    "rivers",
    "chess",
    "glass",
    "owls",
    "tea",
)


def preference_rows(n: int = 12) -> list[dict]:
    """OpenAI-shaped preference pairs whose two answers have the same form and differ only in
    whether they name the prompt's topic: a model cannot learn them by preferring a style, it
    has to read the prompt, and an untrained model scores both sides alike."""
    rows = []
    for i in range(n):
        topic, other = TOPICS[i % len(TOPICS)], TOPICS[(i + 5) % len(TOPICS)]
        rows.append(
            {
                "input": {"messages": [{"role": "user", "content": f"Tell me about {topic}."}]},
                "preferred_output": [{"role": "assistant", "content": f"Here is a note about {topic}."}],
                "non_preferred_output": [{"role": "assistant", "content": f"Here is a note about {other}."}],
            }
        )
    return rows


def preference_jsonl(n: int = 12) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in preference_rows(n))


# The Evals tests' item schema and exact-match grader (OpenAI's string_check).
QA_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}
EXACT_GRADER = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
