"""Repositories: named, branched folders of files (what Oxen.ai's clients push datasets to and
read fine-tuned weights from). Plain records; the store keeps them."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BRANCH = "main"


@dataclass
class CommitInfo:
    id: str
    parent_ids: list[str]
    message: str
    author: str
    email: str
    created_at: float


@dataclass
class RepoInfo:
    id: str
    org_id: str
    namespace: str
    name: str
    description: str
    is_public: bool
    created_at: int
    latest_commit: CommitInfo | None = None

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class BranchInfo:
    name: str
    commit: CommitInfo


@dataclass
class RepoFileInfo:
    repo_id: str
    branch: str
    path: str
    bytes: int
    commit_id: str
    updated_at: float
