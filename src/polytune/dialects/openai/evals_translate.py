"""Eval objects rendered as the openai SDK's strict parsing requires them (types/evals/): every
required field present, an absent error as an empty EvalAPIError (the SDK's type is not
optional), and a run's report_url pointing at its dashboard page."""

from __future__ import annotations

from typing import Any

NO_ERROR = {"code": "", "message": ""}
_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cached_tokens": 0}


def evaluation(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "eval",
        "id": e["id"],
        "name": e["name"],
        "created_at": e["created_at"],
        "data_source_config": e["data_source_config"],
        "testing_criteria": e["testing_criteria"],
        "metadata": e["metadata"],
    }


def run(r: dict[str, Any], base_url: str) -> dict[str, Any]:
    return {
        "object": "eval.run",
        "id": r["id"],
        "eval_id": r["eval_id"],
        "name": r["name"],
        "model": r["model"],
        "status": r["status"],
        "created_at": r["created_at"],
        "data_source": r["data_source"],
        "metadata": r["metadata"],
        "error": r["error"] or NO_ERROR,
        "result_counts": r["result_counts"],
        "per_testing_criteria_results": r["per_testing_criteria_results"],
        "per_model_usage": r["per_model_usage"],
        "report_url": f"{base_url.rstrip('/')}/#/evals/{r['eval_id']}/runs/{r['id']}",
    }


def output_item(o: dict[str, Any]) -> dict[str, Any]:
    s = o["sample"]
    sample = {
        "input": s.get("input") or [],
        "output": s.get("output") or [],
        "model": s.get("model") or "",
        "finish_reason": s.get("finish_reason") or "",
        "usage": s.get("usage") or _USAGE,
        "error": s.get("error") or NO_ERROR,
        "temperature": s.get("temperature", 1.0),
        "top_p": s.get("top_p", 1.0),
        "seed": s.get("seed") or 0,
        "max_completion_tokens": s.get("max_completion_tokens") or 0,
    }
    return {
        "object": "eval.run.output_item",
        "id": o["id"],
        "run_id": o["run_id"],
        "eval_id": o["eval_id"],
        "created_at": o["created_at"],
        "status": o["status"],
        "datasource_item_id": o["datasource_item_id"],
        "datasource_item": o["datasource_item"],
        "results": o["results"],
        "sample": sample,
    }


def deleted(key: str, value: str, object_name: str) -> dict[str, Any]:
    return {"object": object_name, "deleted": True, key: value}
