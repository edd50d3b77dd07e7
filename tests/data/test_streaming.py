"""Validation reads a file of any size in constant memory."""

from __future__ import annotations

import tracemalloc

import orjson
import pytest

from polytune.data.jsonl import MAX_LINE_BYTES
from polytune.data.problems import DatasetError
from polytune.data.validate import validate_file
from tests.data.catalogue import CHAT


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_file(tmp_path):
    line = orjson.dumps(CHAT) + b"\n"
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    small.write_bytes(line * 1_000)
    big.write_bytes(line * 20_000)  # held in memory, its rows would take ~40 MB
    peak_small = _peak(lambda: validate_file(small))
    peak_big = _peak(lambda: validate_file(big))
    assert validate_file(big).n_examples == 20_000
    assert peak_big < peak_small + 512 * 1024, (peak_small, peak_big)


def test_a_huge_line_is_skipped_not_read_whole(tmp_path):
    path = tmp_path / "dump.jsonl"
    with open(path, "wb") as f:
        f.write(b'{"text": "')
        for _ in range(40):
            f.write(b"x" * (1024 * 1024))  # 40 MB and no newline at all
    peak = _peak(lambda: pytest.raises(DatasetError, validate_file, path))
    assert peak < 2 * MAX_LINE_BYTES + 4 * 1024 * 1024, peak  # bounded by the line limit, not the line
    with pytest.raises(DatasetError, match="line 1: the line is 41,943,050 bytes long"):
        validate_file(path)
