"""A run's data source, checked: its items (inline or from a file of purpose `evals`), each
checked against the eval's item schema, and for `completions` the model, the input messages
rendered for every item and the sampling params. Everything a run could trip over later is
found here, at creation, as a 400 naming the param (and the item)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema
import orjson

from polytune.domain.errors import InvalidRequest, NotFound
from polytune.domain.inference import ChatMessage, GenerationParams
from polytune.graders.template import TemplateVariableError, check_template, render
from polytune.services.files import FileService
from polytune.services.models import ModelService

MAX_ITEMS = 50_000
DEFAULT_MAX_TOKENS = 256
DEFAULT_SEED = 42
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_SAMPLING = ("max_completion_tokens", "temperature", "top_p", "seed")


@dataclass
class Row:
    item: dict[str, Any]
    sample: dict[str, Any] | None = None


@dataclass
class Checked:
    kind: str  # jsonl | completions
    rows: list[Row]
    model: str | None = None
    params: GenerationParams | None = None
    messages: list[list[ChatMessage]] | None = None  # per row, for completions


def _bad(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _row(obj: Any, where: str, param: str) -> Row:
    """A line or content entry: {"item": {...}, "sample": {...}?}; a bare object is the item."""
    if not isinstance(obj, dict):
        raise _bad(f"{where} must be a JSON object.", param)
    if "item" in obj and set(obj) <= {"item", "sample"}:
        if not isinstance(obj["item"], dict):
            raise _bad(f"{where}: 'item' must be an object.", param)
        if obj.get("sample") is not None and not isinstance(obj["sample"], dict):
            raise _bad(f"{where}: 'sample' must be an object.", param)
        return Row(obj["item"], obj.get("sample"))
    return Row(obj)


def _file_rows(org_id: str, file_id: Any, files: FileService) -> list[Row]:
    param = "data_source.source.id"
    if not isinstance(file_id, str) or not file_id:
        raise _bad("data_source.source.id must be a file id.", param, "missing_required_parameter")
    try:
        info, chunks = files.content(org_id, file_id)
    except NotFound:
        raise _bad(f"No file with id '{file_id}'.", param, "file_not_found") from None
    if info.purpose != "evals":
        raise _bad(
            f"The file '{file_id}' has purpose '{info.purpose}'; an eval run reads files of purpose 'evals'.",
            param,
            "invalid_file_purpose",
        )
    data = b"".join(chunks)
    rows = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise _bad(f"Line {number} of file '{file_id}' is not valid JSON: {e}.", param, "invalid_file") from None
        rows.append(_row(obj, f"Line {number} of file '{file_id}'", param))
        if len(rows) > MAX_ITEMS:
            raise _bad(f"A run takes at most {MAX_ITEMS} items.", param)
    return rows


def _rows(org_id: str, source: Any, files: FileService) -> list[Row]:
    if not isinstance(source, dict):
        raise _bad(
            "data_source.source must be an object with a 'type'.",
            "data_source.source",
            "missing_required_parameter" if source is None else "invalid_value",
        )
    kind = source.get("type")
    if kind == "file_id":
        rows = _file_rows(org_id, source.get("id"), files)
    elif kind == "file_content":
        content = source.get("content")
        if not isinstance(content, list):
            raise _bad(
                "data_source.source.content must be a list of {item, sample} objects.", "data_source.source.content"
            )
        if len(content) > MAX_ITEMS:
            raise _bad(f"A run takes at most {MAX_ITEMS} items.", "data_source.source.content")
        rows = [
            _row(c, f"data_source.source.content[{i}]", f"data_source.source.content[{i}]")
            for i, c in enumerate(content)
        ]
    elif kind in ("stored_completions", "responses"):
        raise _bad(
            f"data_source.source.type '{kind}' is not supported: polytune keeps no stored completions or "
            "responses; give the items as file_content or a file_id.",
            "data_source.source.type",
            "unsupported_value",
        )
    else:
        raise _bad("data_source.source.type must be 'file_content' or 'file_id'.", "data_source.source.type")
    if not rows:
        raise _bad("The data source holds no items.", "data_source.source")
    return rows


def _check_schema(rows: list[Row], schema: dict[str, Any], source: dict[str, Any]) -> None:
    """Each item against the eval's item_schema (a sample is the model's, or whatever was given)."""
    item_schema = schema["properties"]["item"]
    validator = jsonschema.validators.validator_for(item_schema)(item_schema)
    for i, row in enumerate(rows):
        try:
            error = jsonschema.exceptions.best_match(validator.iter_errors(row.item))
        except Exception as e:  # noqa: BLE001 - a schema that cannot be applied (an unresolvable $ref)
            raise _bad(
                f"The eval's item_schema cannot be applied to item {i}: {type(e).__name__}: {e}.",
                "data_source.source",
                "invalid_item",
            ) from None
        if error is not None:
            where = (
                f"data_source.source.content[{i}].item"
                if source.get("type") == "file_content"
                else "data_source.source.id"
            )
            path = ".".join(str(p) for p in error.absolute_path)
            raise _bad(
                f"Item {i} does not match the eval's item_schema{f' at {path!r}' if path else ''}: {error.message}.",
                where,
                "invalid_item",
            )


def _text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if (
        isinstance(content, dict)
        and content.get("type") in ("input_text", "output_text")
        and isinstance(content.get("text"), str)
    ):
        return content["text"]
    raise _bad(f"{param} must be text (a string, or an input_text/output_text part).", param)


def _template(input_messages: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(role, content template, param) per template message."""
    template = input_messages.get("template")
    if not isinstance(template, list) or not template:
        raise _bad(
            "data_source.input_messages.template must be a non-empty list of messages.",
            "data_source.input_messages.template",
        )
    out = []
    for j, message in enumerate(template):
        param = f"data_source.input_messages.template[{j}]"
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or message["role"] not in _ROLES:
            raise _bad(f"{param}.role must be one of {sorted(_ROLES)}.", f"{param}.role")
        text = _text(message.get("content"), f"{param}.content")
        check_template(text, f"{param}.content")
        if "{{sample" in text.replace(" ", ""):
            raise _bad(
                f"{param}.content: input messages are rendered before sampling; they read item.* only.",
                f"{param}.content",
            )
        out.append((_ROLES[message["role"]], text, f"{param}.content"))
    return out


def _messages(rows: list[Row], input_messages: Any) -> list[list[ChatMessage]]:
    if not isinstance(input_messages, dict):
        raise _bad(
            "data_source.input_messages is required: a template over {{item.*}} or an item_reference.",
            "data_source.input_messages",
            "missing_required_parameter",
        )
    kind = input_messages.get("type")
    out: list[list[ChatMessage]] = []
    if kind == "template":
        template = _template(input_messages)
        for i, row in enumerate(rows):
            rendered = []
            for role, text, param in template:
                try:
                    rendered.append(ChatMessage(role, render(text, {"item": row.item})))
                except TemplateVariableError as e:
                    raise _bad(f"{param}: item {i}: {e}.", param, "invalid_template") from None
            out.append(rendered)
    elif kind == "item_reference":
        ref = input_messages.get("item_reference")
        param = "data_source.input_messages.item_reference"
        if not isinstance(ref, str) or not ref.startswith("item."):
            raise _bad(f"{param} must name a field of the item, as 'item.<field>'.", param)
        for i, row in enumerate(rows):
            value: Any = {"item": row.item}
            for part in ref.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if (
                not isinstance(value, list)
                or not value
                or not all(
                    isinstance(m, dict) and isinstance(m.get("role"), str) and m["role"] in _ROLES for m in value
                )
            ):
                raise _bad(f"{param}: item {i} has no list of messages at '{ref}'.", param, "invalid_template")
            out.append([ChatMessage(_ROLES[m["role"]], _text(m.get("content"), param)) for m in value])
    else:
        raise _bad(
            "data_source.input_messages.type must be 'template' or 'item_reference'.", "data_source.input_messages.type"
        )
    return out


def _params(sampling: Any) -> GenerationParams:
    param = "data_source.sampling_params"
    sampling = sampling or {}
    if not isinstance(sampling, dict):
        raise _bad(f"{param} must be an object.", param)
    for key in sampling:
        if key not in _SAMPLING:
            raise _bad(
                f"{param}.{key} is not supported; polytune samples with {list(_SAMPLING)}.",
                f"{param}.{key}",
                "unsupported_parameter",
            )
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    max_tokens = sampling.get("max_completion_tokens", DEFAULT_MAX_TOKENS)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _bad(f"{param}.max_completion_tokens must be a positive integer.", f"{param}.max_completion_tokens")
    temperature, top_p = sampling.get("temperature", 1.0), sampling.get("top_p", 1.0)
    if not number(temperature) or not 0 <= temperature <= 2:
        raise _bad(f"{param}.temperature must be between 0 and 2.", f"{param}.temperature")
    if not number(top_p) or not 0 < top_p <= 1:
        raise _bad(f"{param}.top_p must be in (0, 1].", f"{param}.top_p")
    seed = sampling.get("seed", DEFAULT_SEED)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise _bad(f"{param}.seed must be an integer from 0 to 2**32 - 1.", f"{param}.seed")
    return GenerationParams(
        max_tokens=max_tokens,
        max_tokens_param=f"{param}.max_completion_tokens",
        temperature=float(temperature),
        top_p=float(top_p),
        seed=seed,
    )


def check(
    org_id: str,
    data_source: Any,
    eval_config: dict[str, Any],
    criteria: list[dict[str, Any]],
    files: FileService,
    models: ModelService,
) -> Checked:
    if not isinstance(data_source, dict):
        raise _bad(
            "data_source must be an object with a 'type'.",
            "data_source",
            "missing_required_parameter" if data_source is None else "invalid_value",
        )
    kind = str(data_source.get("type"))
    allowed = {
        "jsonl": {"type", "source"},
        "completions": {"type", "source", "model", "input_messages", "sampling_params"},
    }.get(kind)
    if allowed is None:
        raise _bad(
            "data_source.type must be 'jsonl' or 'completions'"
            + (" ('responses' is not supported: polytune serves chat completions)" if kind == "responses" else "")
            + ".",
            "data_source.type",
        )
    for key in data_source:
        if key not in allowed:
            raise _bad(f"Unknown parameter: 'data_source.{key}'.", f"data_source.{key}", "unknown_parameter")
    rows = _rows(org_id, data_source.get("source"), files)
    _check_schema(rows, eval_config["schema"], data_source["source"])
    if kind == "jsonl":
        reads_sample = any(
            "{{sample" in orjson.dumps(c).decode().replace(" ", "") or c["type"] == "python" for c in criteria
        )
        missing = next((i for i, r in enumerate(rows) if r.sample is None), None)
        if reads_sample and missing is not None:
            raise _bad(
                f"Item {missing} has no sample: a jsonl run grades the samples given with its items "
                '({"item": ..., "sample": {"output_text": ...}}).',
                "data_source.source",
            )
        return Checked("jsonl", rows)
    model = data_source.get("model")
    if not isinstance(model, str) or not model:
        raise _bad(
            "data_source.model is required: the model to sample from.",
            "data_source.model",
            "missing_required_parameter",
        )
    try:
        models.resolve(org_id, model)
    except (NotFound, InvalidRequest) as e:
        raise _bad(e.message, "data_source.model", "model_not_found") from None
    messages = _messages(rows, data_source.get("input_messages"))
    return Checked("completions", rows, model, _params(data_source.get("sampling_params")), messages)
