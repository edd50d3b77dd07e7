"""Evals as a use case (OpenAI's Evals API): an eval is the JSON schema of its items and the
graders (testing criteria) every run applies. Criteria are checked once, at creation, by the
same grader engine and with the same errors as `graders/validate`; runs live in eval_runs.py.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import sqlalchemy as sa

from polytune.domain.errors import InvalidRequest, NotFound
from polytune.domain.ids import new_id
from polytune.domain.objects import Page
from polytune.graders import GraderConfig, parse_grader
from polytune.store import tables as t
from polytune.store.db import Database, now

# The `sample` namespace graders read (`{{sample.output_text}}`), as OpenAI describes it.
SAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "choices": {"type": "array"},
        "output_text": {"type": "string"},
        "output_json": {"type": "object"},
    },
    "required": ["model", "choices"],
}
# What a criterion passes at when it names no pass_threshold: graders that give 0 or 1
# (string_check, label_model) pass at 1; graders that score (python, score_model, multi) at 0.5.
DEFAULT_THRESHOLD = {"string_check": 1.0, "label_model": 1.0}
MAX_CRITERIA = 32


def check_metadata(metadata: Any, param: str = "metadata") -> dict[str, str] | None:
    """OpenAI's metadata rules: at most 16 pairs, keys up to 64 characters, values up to 512."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise InvalidRequest(f"{param} must be an object of at most 16 string pairs.", param=param)
    for key, value in metadata.items():
        if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
            raise InvalidRequest(
                f"{param}.{key}: keys are at most 64 characters, values strings of at most 512.", param=f"{param}.{key}"
            )
    return metadata


def check_data_source_config(config: Any) -> dict[str, Any]:
    """The stored config: {"type": "custom", "schema": <the schema of {item, sample}>}."""
    param = "data_source_config"
    if not isinstance(config, dict):
        raise InvalidRequest(f"{param} must be an object with a 'type'.", param=param)
    kind = config.get("type")
    if kind in ("logs", "stored_completions"):
        raise InvalidRequest(
            f"{param}.type '{kind}' is not supported: polytune keeps no log of completions to "
            "evaluate. Use type 'custom' with an item_schema, and give the items with each run.",
            param=f"{param}.type",
            code="unsupported_value",
        )
    if kind != "custom":
        raise InvalidRequest(f"{param}.type must be 'custom'.", param=f"{param}.type")
    unknown = set(config) - {"type", "item_schema", "include_sample_schema"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(f"Unknown parameter: '{param}.{name}'.", param=f"{param}.{name}", code="unknown_parameter")
    item_schema = config.get("item_schema")
    if not isinstance(item_schema, dict):
        raise InvalidRequest(
            f"{param}.item_schema must be a JSON schema object.",
            param=f"{param}.item_schema",
            code="missing_required_parameter" if item_schema is None else "invalid_value",
        )
    try:
        jsonschema.validators.validator_for(item_schema).check_schema(item_schema)
    except jsonschema.SchemaError as e:
        raise InvalidRequest(
            f"{param}.item_schema is not a valid JSON schema: {e.message}.", param=f"{param}.item_schema"
        ) from None
    include_sample = config.get("include_sample_schema", False)
    if not isinstance(include_sample, bool):
        raise InvalidRequest(
            f"{param}.include_sample_schema must be a boolean.", param=f"{param}.include_sample_schema"
        )
    schema: dict[str, Any] = {"type": "object", "properties": {"item": item_schema}, "required": ["item"]}
    if include_sample:
        schema["properties"]["sample"] = SAMPLE_SCHEMA
        schema["required"].append("sample")
    return {"type": "custom", "schema": schema}


def check_criteria(criteria: Any, config: GraderConfig) -> list[dict[str, Any]]:
    """Each criterion as the grader engine understood it, plus its pass_threshold."""
    if not isinstance(criteria, list) or not criteria:
        raise InvalidRequest("testing_criteria must be a non-empty list of graders.", param="testing_criteria")
    if len(criteria) > MAX_CRITERIA:
        raise InvalidRequest(f"testing_criteria may hold at most {MAX_CRITERIA} graders.", param="testing_criteria")
    out, names = [], set()
    for i, criterion in enumerate(criteria):
        param = f"testing_criteria[{i}]"
        if not isinstance(criterion, dict):
            raise InvalidRequest(f"{param} must be an object with a 'type'.", param=param, code="invalid_grader")
        grader = dict(criterion)
        threshold = grader.pop("pass_threshold", None)
        if grader.get("type") == "text_similarity" and threshold is None:
            raise InvalidRequest(
                f"{param}.pass_threshold is required for a text_similarity grader.",
                param=f"{param}.pass_threshold",
                code="missing_required_parameter",
            )
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
            raise InvalidRequest(f"{param}.pass_threshold must be a number.", param=f"{param}.pass_threshold")
        parsed = parse_grader(grader, param, config).model_dump(mode="json", exclude_none=True)
        if parsed["name"] in names:
            raise InvalidRequest(
                f"{param}.name '{parsed['name']}' is used by another criterion; names must be unique.",
                param=f"{param}.name",
                code="invalid_grader",
            )
        names.add(parsed["name"])
        if threshold is not None:
            parsed["pass_threshold"] = float(threshold)
        out.append(parsed)
    return out


def pass_threshold(criterion: dict[str, Any]) -> float:
    return criterion.get("pass_threshold", DEFAULT_THRESHOLD.get(criterion["type"], 0.5))


def eval_record(row: t.Eval) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "data_source_config": row.data_source_config,
        "testing_criteria": row.testing_criteria,
        "metadata": row.metadata_,
    }


class EvalService:
    def __init__(self, db: Database, config: GraderConfig):
        self.db, self.config = db, config

    def create(
        self, org_id: str, *, name: str | None, data_source_config: Any, testing_criteria: Any, metadata: Any = None
    ) -> dict[str, Any]:
        config = check_data_source_config(data_source_config)
        criteria = check_criteria(testing_criteria, self.config)
        stamp = now()
        row = t.Eval(
            id=new_id("eval"),
            org_id=org_id,
            name=name or "",
            data_source_config=config,
            testing_criteria=criteria,
            metadata_=check_metadata(metadata),
            created_at=stamp,
            updated_at=stamp,
        )
        with self.db.session() as s:
            s.add(row)
        return eval_record(row)

    def row(self, s, org_id: str, eval_id: str) -> t.Eval:
        row = s.scalar(
            sa.select(t.Eval).where(t.Eval.id == eval_id, t.Eval.org_id == org_id, t.Eval.deleted_at.is_(None))
        )
        if row is None:
            raise NotFound(f"No eval with id '{eval_id}'.", param="eval_id", code="eval_not_found")
        return row

    def get(self, org_id: str, eval_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            return eval_record(self.row(s, org_id, eval_id))

    def update(self, org_id: str, eval_id: str, *, name: str | None = None, metadata: Any = None) -> dict[str, Any]:
        with self.db.session() as s:
            row = self.row(s, org_id, eval_id)
            if name is not None:
                row.name = name
            if metadata is not None:
                row.metadata_ = check_metadata(metadata)
            row.updated_at = now()
            return eval_record(row)

    def list(self, org_id: str, *, after: str | None, limit: int, order: str, order_by: str) -> Page:
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be 'asc' or 'desc'.", param="order")
        if order_by not in ("created_at", "updated_at"):
            raise InvalidRequest("order_by must be 'created_at' or 'updated_at'.", param="order_by")
        # created_at follows seq; updated_at pages on (updated_at, seq), the cursor read from the list.
        key = t.Eval.seq if order_by == "created_at" else t.Eval.updated_at
        with self.db.session() as s:
            stmt = sa.select(t.Eval).where(t.Eval.org_id == org_id, t.Eval.deleted_at.is_(None))
            if after:
                cursor = s.execute(stmt.with_only_columns(key, t.Eval.seq).where(t.Eval.id == after)).first()
                if cursor is None:
                    raise InvalidRequest(f"No eval with id '{after}' to page after.", param="after")
                pair, value = sa.tuple_(key, t.Eval.seq), sa.tuple_(sa.literal(cursor[0]), sa.literal(cursor[1]))
                stmt = stmt.where(pair < value if order == "desc" else pair > value)
            direction = (lambda c: c.desc()) if order == "desc" else (lambda c: c.asc())
            rows = list(s.scalars(stmt.order_by(direction(key), direction(t.Eval.seq)).limit(limit + 1)))
            return Page(data=[eval_record(r) for r in rows[:limit]], has_more=len(rows) > limit)

    def delete(self, org_id: str, eval_id: str) -> str:
        with self.db.session() as s:
            row = self.row(s, org_id, eval_id)
            row.deleted_at = now()
            runs = (t.EvalRun.eval_id == row.id, t.EvalRun.deleted_at.is_(None))
            # Its runs go with it; one still running stops at its next batch (the runner sees it canceled).
            s.execute(
                sa.update(t.EvalRun)
                .where(*runs, t.EvalRun.status.in_(("queued", "in_progress")))
                .values(status="canceled", finished_at=now())
            )
            s.execute(sa.update(t.EvalRun).where(*runs).values(deleted_at=now()))
            return row.id
