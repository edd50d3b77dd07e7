"""The other objects a dialect renders: files, uploads, events, checkpoints, models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FileInfo:
    id: str
    org_id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    status: str  # uploaded | processed | error
    status_details: str | None = None
    expires_at: int | None = None
    # For a fine-tune file that passed the upload check: {"format", "n_examples", "shape"}.
    data_report: dict[str, Any] | None = None


@dataclass
class UploadInfo:
    id: str
    filename: str
    purpose: str
    bytes: int
    mime_type: str
    status: str  # pending | completed | cancelled | expired
    created_at: int
    expires_at: int
    file: FileInfo | None = None


@dataclass
class UploadPartInfo:
    id: str
    upload_id: str
    created_at: int


@dataclass
class Event:
    id: str
    job_id: str
    created_at: int
    level: str
    type: str
    message: str
    data: dict[str, Any] | None = None


@dataclass
class Checkpoint:
    id: str
    job_id: str
    step: int
    created_at: int
    metrics: dict[str, Any]
    model_id: str
    # File ids of the checkpoint's weights (one archive), downloadable like any file.
    result_files: list[str] = field(default_factory=list)


@dataclass
class ProjectInfo:
    id: int
    org_id: str
    name: str
    description: str
    created_at: int
    updated_at: int
    # An integer that stands for the owner (the organization's row number): SeekrFlow's
    # clients require an integer user id.
    owner_number: int
    runs: int = 0
    runs_succeeded: int = 0
    last_modified: int = 0


@dataclass
class ModelInfo:
    id: str
    created: int
    owned_by: str
    base_model: str | None = None
    job_id: str | None = None
    kind: str = "base"  # base | full | lora
    is_checkpoint: bool = False
    # What it serves: "chat" (a text model: /chat/completions, /completions) or "image"
    # (/images/generations); a fine-tuned model's is its base model's.
    model_type: str = "chat"
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Page:
    data: list[Any]
    has_more: bool
