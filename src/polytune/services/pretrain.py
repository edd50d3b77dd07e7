"""Continued pre-training data: a raw-text file becomes a training file of `{"text"}` rows.

Continued pre-training (SeekrFlow's `pre_train: true`) is the supervised recipe on raw text:
TRL's SFTTrainer trains a `{"text"}` dataset as language modelling, the causal-LM loss on every
token, and with packing the documents are concatenated (EOS between them) into full-length
sequences. What this module adds is the data: the files SeekrFlow users upload for it (purpose
`pre-train`, or `fine-tune`) are plain text (`.txt`, `.md`, ...) or JSONL of `{"text"}` rows;
each becomes an ordinary fine-tune file of `{"text"}` rows, checked like any upload, so the job
trains on the text as it was at creation (as Oxen's tables do, services/repo_jobs.py).

A plain-text file is split into documents at blank lines (paragraphs); packing joins them again
into sequences, so the split decides only where an EOS goes and how many examples there are.
"""

from __future__ import annotations

import re

import orjson

from polytune.domain.errors import InvalidRequest
from polytune.services.files import FileService

# The purposes a pre-training job reads.
PRETRAIN_PURPOSES = ("pre-train", "fine-tune")
_PARAGRAPH = re.compile(r"\n\s*\n")


def documents(data: bytes, filename: str, param: str) -> list[str]:
    """The documents of a raw-text file (JSONL: each row's `text`; else paragraphs)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidRequest(
            f"{filename} is not UTF-8 text (byte {e.start}); continued pre-training reads raw text.",
            param=param,
            code="invalid_file_format",
        ) from None
    if not filename.lower().endswith(".jsonl"):
        return [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]
    docs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or set(row) != {"text"}:
            raise InvalidRequest(
                f"{filename} line {number}: continued pre-training takes raw text, a JSONL "
                'file of {"text": "..."} rows or a plain-text file.',
                param=param,
                code="invalid_file_format",
            )
        docs.append(row["text"])
    return docs


def text_training_file(files: FileService, org_id: str, file_id: str, param: str) -> str:
    """A new fine-tune file of `{"text"}` rows from the raw text of `file_id`; its id."""
    info = files.get(org_id, file_id)
    if info.purpose not in PRETRAIN_PURPOSES:
        raise InvalidRequest(
            f"File '{file_id}' has purpose '{info.purpose}'; continued pre-training reads "
            f"purpose {' or '.join(repr(p) for p in PRETRAIN_PURPOSES)}.",
            param=param,
            code="invalid_file_purpose",
        )
    _, chunks = files.content(org_id, file_id)
    docs = documents(b"".join(chunks), info.filename, param)
    new_id, pending = files.begin()
    try:
        for doc in docs:
            files.write(pending, orjson.dumps({"text": doc}) + b"\n")
        made = files.finish(org_id, new_id, pending, filename=f"{info.filename}.pretrain.jsonl", purpose="fine-tune")
    except BaseException:
        pending.abort()
        raise
    if made.status == "error":
        files.delete(org_id, new_id)
        raise InvalidRequest(f"{info.filename}: {made.status_details}", param=param, code="invalid_file")
    return new_id
