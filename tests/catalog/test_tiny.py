from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from polytune.catalog.tiny import builder_version, ensure_tiny

_BUILD = (
    "import sys; from pathlib import Path; from polytune.catalog.tiny import ensure_tiny; "
    "print(ensure_tiny(Path(sys.argv[1])))"
)


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.live  # builds in three processes
def test_builds_are_identical_across_processes_and_racing_builds_share_one_folder(tmp_path):
    # Different hash seeds, so anything that leans on set or dict ordering would show. Each
    # process has a build cache of its own, so each really builds (a and a race on one).
    jobs = [(tmp_path / "a", "1", "x"), (tmp_path / "b", "2", "y"), (tmp_path / "a", "3", "x")]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILD, str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "POLYTUNE_BUILD_CACHE": str(tmp_path / f"cache-{shared}")},
        )
        for cache, seed, shared in jobs
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert outputs == [
        str(tmp_path / "a" / "polytune-tiny"),
        str(tmp_path / "b" / "polytune-tiny"),
        str(tmp_path / "a" / "polytune-tiny"),
    ]
    a, b = _hashes(tmp_path / "a" / "polytune-tiny"), _hashes(tmp_path / "b" / "polytune-tiny")
    assert a == b
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= set(a)
    # The race left one complete folder and no staging folders behind.
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["polytune-tiny"]


def test_second_call_reuses_the_build(tiny):
    entry, folder = tiny
    before = (folder / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny(folder.parent) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == before


def test_a_stale_build_is_replaced(tmp_path):
    stale = tmp_path / "polytune-tiny"
    stale.mkdir()
    (stale / ".polytune-build").write_text("0\n")
    folder = ensure_tiny(tmp_path)
    assert (folder / ".polytune-build").read_text().strip() == builder_version()
    assert (folder / "config.json").is_file()


def test_tokenizer_round_trips_any_text(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny[1])
    text = "Zorbia's capital? Quillon — 1,234.5 km² on 3 March 1987! 你好 🙂\ttabs\n"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    # Everyday English stays close to one token per word.
    assert len(tokenizer("What is the capital of the country to the north?")["input_ids"]) <= 12


def _trained_text(tokenizer, messages) -> str:
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    return tokenizer.decode([i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m])


def test_template_trains_only_assistant_turns_with_weight(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny[1])
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First question?"},
        {"role": "assistant", "content": "Skipped answer.", "weight": 0},
        {"role": "user", "content": "Second question?"},
        {"role": "assistant", "content": "Kept answer.", "weight": 1},
        {"role": "user", "content": "Third question?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Also kept."}]},
    ]
    assert _trained_text(tokenizer, messages) == "Kept answer.<|im_end|>Also kept.<|im_end|>"


def test_template_renders_chatml_and_a_generation_prompt(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny[1])
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.eos_token == "<|im_end|>"
