"""Model names. What a base model's catalog name may be: the name appears in URLs
(`/v1/models/{name}`), in fine-tuned model ids (`ft:<name>:...`, where ':' separates parts) and in
file paths under the data dir, so it is a plain name or a hub-style `owner/name`, never a path.
And how a fine-tuned model is named: one rule, read by the worker that publishes the model and by
the model service that finds a job's model again by that name."""

from __future__ import annotations

import re

from .errors import InvalidRequest
from .spec import JobSpec

MAX_MODEL_NAME = 128
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_MODEL_NAME = re.compile(rf"^{_SEGMENT}(/{_SEGMENT})?$")


def check_model_name(name: str, param: str = "model") -> None:
    if not name or not name.strip():
        raise InvalidRequest("The model name must not be empty.", param=param)
    if len(name) > MAX_MODEL_NAME:
        raise InvalidRequest(
            f"The model name is {len(name)} characters; at most {MAX_MODEL_NAME} are allowed.", param=param
        )
    if not _MODEL_NAME.match(name) or ".." in name:
        raise InvalidRequest(
            f"Invalid model name {name!r}: use letters, digits, '.', '_' and '-' (starting with a "
            "letter or digit), optionally as 'owner/name'; not a path.",
            param=param,
        )


def model_name(spec: JobSpec, org_name: str, job_id: str) -> str:
    """OpenAI's shape, the one every dialect shows: ft:{base}:{org}:{suffix}:{id}."""
    org = re.sub(r"[^a-z0-9_-]+", "-", org_name.lower()).strip("-") or "org"
    return f"ft:{spec.model}:{org}:{spec.output.suffix or ''}:{job_id.split('-', 1)[-1][:8]}"
