"""Signed checkpoint-file URLs (services/checkpoint_urls.py): the URL the server signed opens its
file; a forged, cut or odd one — non-ASCII signature, control characters in the path, as the
schemathesis fuzz sent — is a 404, never a 500."""

from __future__ import annotations

import pytest

from polytune.domain.errors import NotFound
from polytune.services.checkpoint_urls import CheckpointUrls


def test_a_signed_url_opens_its_file_and_forged_ones_are_not_found(tmp_path):
    urls = CheckpointUrls(tmp_path)
    (tmp_path / "run" / "ckpt").mkdir(parents=True)
    (tmp_path / "run" / "ckpt" / "adapter.bin").write_bytes(b"weights")
    signed, expires = urls.sign(tmp_path / "run" / "ckpt", "http://127.0.0.1")
    signature = signed["adapter.bin"].split("signature=")[1]
    assert urls.open("run/ckpt/adapter.bin", expires, signature).read_bytes() == b"weights"

    forged = [
        ("run/ckpt/adapter.bin", expires, signature[:-1] + ("0" if signature[-1] != "0" else "1")),
        ("run/ckpt/adapter.bin", expires, "\x9e\xd7\U000fc09e="),  # non-ASCII: compare_digest refuses str
        ("\U000e36dc\x06a\x00", 32894, "\x9e"),
        ("run/ckpt/adapter.bin", expires + 1, signature),
        ("../../etc/passwd", expires, signature),
    ]
    for rel, when, sig in forged:
        with pytest.raises(NotFound):
            urls.open(rel, when, sig)
