"""Grader templates: `{{item.field}}`, `{{item.a.b.0}}`, `{{sample.output_text}}`,
`{{sample.output_json.x}}`. A reference is checked when the grader is validated (namespace and
shape) and resolved when it grades (a field the item lacks is an `invalid_variable_error`)."""

from __future__ import annotations

import json
import re
from typing import Any

from polytune.domain.errors import InvalidRequest

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
SAMPLE_FIELDS = ("output_text", "output_json")


class TemplateVariableError(Exception):
    """A template names something the item or sample doesn't have."""


def check_template(text: str, param: str) -> None:
    """Raise InvalidRequest naming `param` unless every {{...}} in text is a known reference."""
    rest = _TAG.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise InvalidRequest(
            f"{param}: unbalanced template braces in {text!r}; write {{{{item.field}}}} or {{{{sample.output_text}}}}.",
            param=param,
            code="invalid_grader",
        )
    for raw in _TAG.findall(text):
        ref = raw.strip()
        if not _PATH.match(ref):
            raise InvalidRequest(
                f"{param}: {{{{{raw}}}}} is not a template reference; write "
                "{{item.field}} or {{sample.output_text}}.",
                param=param,
                code="invalid_grader",
            )
        head, _, tail = ref.partition(".")
        if head == "item" and tail:
            continue
        if head == "sample" and tail.split(".")[0] in SAMPLE_FIELDS:
            if tail == "output_text" or tail.startswith("output_json"):
                continue
        raise InvalidRequest(
            f"{param}: unknown template variable {{{{{ref}}}}}; templates read "
            "item.<field> or sample.output_text / sample.output_json[.<field>].",
            param=param,
            code="invalid_grader",
        )


def sample_namespace(output_text: str) -> dict[str, Any]:
    """The `sample` namespace: output_text, and output_json when the text is JSON."""
    sample: dict[str, Any] = {"output_text": output_text, "output_json": None}
    try:
        sample["output_json"] = json.loads(output_text)
    except (ValueError, TypeError):
        pass
    return sample


def lookup(ref: str, context: dict[str, Any]) -> Any:
    value: Any = context
    for part in ref.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise TemplateVariableError(
                f"{{{{{ref}}}}}: the {'sample' if ref.startswith('sample') else 'item'} has no '{part}'"
            )
    if value is None:
        raise TemplateVariableError(f"{{{{{ref}}}}} is empty (for output_json: the sample is not JSON)")
    return value


def render(text: str, context: dict[str, Any]) -> str:
    """text with every reference replaced: strings as they are, anything else as JSON."""

    def one(m: re.Match) -> str:
        value = lookup(m.group(1).strip(), context)
        return value if isinstance(value, str) else json.dumps(value)

    return _TAG.sub(one, text)
