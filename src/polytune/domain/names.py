"""What a base model's catalog name may be. The name appears in URLs (`/v1/models/{name}`), in
fine-tuned model ids (`ft:<name>:...`, where ':' separates parts) and in file paths under the
data dir, so it is a plain name or a hub-style `owner/name`, never a path."""

from __future__ import annotations

import re

from .errors import InvalidRequest

MAX_MODEL_NAME = 128
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_MODEL_NAME = re.compile(rf"^{_SEGMENT}(/{_SEGMENT})?$")


def check_model_name(name: str, param: str = "model") -> None:
    if not name or not name.strip():
        raise InvalidRequest("The model name must not be empty.", param=param)
    if len(name) > MAX_MODEL_NAME:
        raise InvalidRequest(f"The model name is {len(name)} characters; at most {MAX_MODEL_NAME} are allowed.",
                             param=param)
    if not _MODEL_NAME.match(name) or ".." in name:
        raise InvalidRequest(f"Invalid model name {name!r}: use letters, digits, '.', '_' and '-' (starting with a "
                             "letter or digit), optionally as 'owner/name'; not a path.", param=param)
