"""Validation speed and memory on generated chat JSONL files of 100 MB and 1 GB.

For each file, in one run, each measure in its own fresh process (so peak RSS is its own):

- bare parse: `orjson.loads` of every line, nothing else — the floor to compare with;
- validate: polytune's validation without token counting (parse + schema of every row);
- validate + tokens: validation and the token count with polytune-tiny's tokenizer and chat
  template, in one read of the file (`check_and_measure`: what a job's `validating_files` step
  does since 6 December 2026; before, validation read the file, then the count read it again);
- validate + reference tokens: the same count done the straightforward way (every
  conversation rendered by the template, then transformers' tokenizer `__call__` on the
  batches `measure_file` hands it, 64 rows since 5 December 2026, at most 256 texts a call),
  which polytune did before templates were rendered once per shape; the two counts must be
  equal, and `tokens` should run >= 10x faster.

Printed: MB/s, examples/s, peak RSS, RSS growth over the process's own start (imports
included in neither), and validate's rate as a fraction of the bare parse's.
Targets: validate >= 0.5 x bare parse, peak RSS < 200 MB. The files are generated into a
temporary folder and deleted afterwards.

    .venv/bin/python bench/validate_data.py [--sizes-mb 100 1000] [--no-tokens-over-mb 0]
                                          [--no-reference-over-mb 0] [--repeats 1] [--smoke]

--repeats N: the tokens and reference phases run N times each, alternating (tokens, reference,
tokens, ...), so load from other work falls on both; the ratio printed is of the medians, with
each run's seconds and the 1-minute load average before and after.

--smoke: one 1 MB file (the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_WORDS = (
    "the of and to in is was for on are with as his they be at one have this from or had by hot word "
    "but what some we can out other were all there when up use your how said an each she which do "
    "their time if will way about many then them write would like so these her long make thing see "
    "him two has look more day could go come did number sound no most people my over know water "
    "than call first who may down side been now find"
).split()


def generate(path: Path, size_bytes: int, seed: int = 0) -> int:
    """Chat rows like a typical supervised set: a system prompt, a question, a longer answer
    (about 1 KB a row); returns the number of rows."""
    import orjson

    rng = random.Random(seed)
    systems = ["You are a helpful assistant.", "Answer briefly and precisely.", "You are a careful tutor."]
    n = written = 0
    with open(path, "wb") as f:
        while written < size_bytes:
            question = " ".join(rng.choices(_WORDS, k=rng.randint(8, 60))) + "?"
            answer = " ".join(rng.choices(_WORDS, k=rng.randint(40, 260))) + "."
            line = (
                orjson.dumps(
                    {
                        "messages": [
                            {"role": "system", "content": rng.choice(systems)},
                            {"role": "user", "content": question},
                            {"role": "assistant", "content": answer},
                        ]
                    }
                )
                + b"\n"
            )
            f.write(line)
            written += len(line)
            n += 1
    return n


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class ReferenceCounter:
    """Chat rows counted the straightforward way: render each, tokenize with __call__."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def lengths(self, rows: list[dict]) -> list[list[int]]:
        out = []
        for i in range(0, len(rows), 256):
            texts = [self.tokenizer.apply_chat_template(r["messages"], tokenize=False) for r in rows[i : i + 256]]
            out += [[len(ids)] for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        return out


def measure(phase: str, path: Path, models_dir: Path) -> dict:
    """One phase, in this process: returns seconds, examples, peak and start RSS."""
    import orjson

    counter = None
    if phase in ("tokens", "reference"):
        from polytune.data.tokens import TokenCounter, load_tokenizer
        from polytune.catalog.tiny import ensure_tiny

        counter = TokenCounter(load_tokenizer(ensure_tiny(models_dir)))
        if phase == "reference":
            counter = ReferenceCounter(counter.tokenizer)
    from polytune.data.tokens import check_and_measure, measure_file
    from polytune.data.validate import validate_file

    start_rss = _rss_mb()
    t0, cpu0 = time.perf_counter(), time.process_time()
    if phase == "bare":
        n = 0
        loads = orjson.loads
        with open(path, "rb") as f:
            for line in f:
                loads(line)
                n += 1
        extra = {}
    elif phase == "tokens":  # as a job's data check does it: one read of the file checks and counts
        summary, report = check_and_measure(path, counter, method="supervised", context_length=4096)
        n, extra = summary.n_examples, {"tokens": report.tokens, "longest": report.longest}
    else:
        n = validate_file(path, method="supervised").n_examples
        extra = {}
        if counter is not None:
            report = measure_file(path, counter, method="supervised", context_length=4096)
            extra = {"tokens": report.tokens, "longest": report.longest}
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "phase": phase,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "examples": n,
        "peak_rss_mb": peak,
        "growth_mb": max(0.0, peak - start_rss),
        **extra,
    }


def run_phase(phase: str, path: Path, models_dir: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--file", str(path), "--models", str(models_dir)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 1000])
    parser.add_argument(
        "--no-tokens-over-mb",
        type=int,
        default=0,
        help="skip token counting for files larger than this (0: count every file)",
    )
    parser.add_argument(
        "--no-reference-over-mb",
        type=int,
        default=0,
        help="skip the reference token count for files larger than this (0: every file)",
    )
    parser.add_argument("--phase")
    parser.add_argument("--file")
    parser.add_argument("--models")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs of tokens and reference")
    parser.add_argument("--smoke", action="store_true", help="one 1 MB file (for the tests)")
    args = parser.parse_args()
    if args.smoke:
        args.sizes_mb = [1]
    if args.phase:
        print(json.dumps(measure(args.phase, Path(args.file), Path(args.models))))
        return 0

    rows, speedups = [], []
    with tempfile.TemporaryDirectory(prefix="polytune-bench-") as tmp:
        models = Path(tmp) / "models"
        for size in args.sizes_mb:
            path = Path(tmp) / f"chat-{size}mb.jsonl"
            n = generate(path, size * 1_000_000)
            mb = path.stat().st_size / 1e6
            phases = ["bare", "validate"]
            if not args.no_tokens_over_mb or size <= args.no_tokens_over_mb:
                phases.append("tokens")
                if not args.no_reference_over_mb or size <= args.no_reference_over_mb:
                    phases.append("reference")
            results = {p: run_phase(p, path, models) for p in phases if p not in ("tokens", "reference")}
            timed = [p for p in phases if p in ("tokens", "reference")]
            runs: dict[str, list[float]] = {p: [] for p in timed}
            cpu: dict[str, list[float]] = {p: [] for p in timed}
            for _ in range(args.repeats):
                for p in timed:
                    load_before = os.getloadavg()[0]
                    r = run_phase(p, path, models)
                    runs[p].append(r["seconds"])
                    cpu[p].append(r["cpu_seconds"])
                    print(
                        f"{size} MB {p}: {r['seconds']:.2f} s ({r['cpu_seconds']:.2f} s CPU, all threads), load {load_before:.1f} -> {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
                    if p not in results or r["seconds"] < results[p]["seconds"]:
                        results[p] = r
                    assert r.get("tokens") == results[p]["tokens"]
            bare_rate = mb / results["bare"]["seconds"]
            for p, r in results.items():
                rate = mb / r["seconds"]
                rows.append(
                    (
                        f"{size} MB",
                        p,
                        f"{rate:,.1f}",
                        f"{r['examples'] / r['seconds']:,.0f}",
                        f"{r['peak_rss_mb']:,.0f}",
                        f"{r['growth_mb']:,.0f}",
                        f"{rate / bare_rate:.2f}",
                        f"{r.get('tokens', ''):,}" if "tokens" in r else "",
                    )
                )
            assert results["validate"]["examples"] == n
            if "reference" in results:
                assert results["tokens"]["tokens"] == results["reference"]["tokens"], "token counts differ"
                speedups.append(
                    (
                        f"{size} MB",
                        statistics.median(runs["reference"]) / statistics.median(runs["tokens"]),
                        statistics.median(cpu["reference"]) / statistics.median(cpu["tokens"]),
                    )
                )
            path.unlink()
    header = ("file", "measure", "MB/s", "examples/s", "peak RSS MB", "RSS growth MB", "x bare parse", "tokens")
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    for line in (header, *rows):
        print("  ".join(str(c).rjust(w) for c, w in zip(line, widths)))
    for size, speedup, cpu_speedup in speedups:
        print(
            f"token counting, {size}: {speedup:.1f}x the reference's speed (ratio of median wall times), "
            f"{cpu_speedup:.1f}x in CPU time, same counts (target >= 10x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
