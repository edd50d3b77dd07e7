"""`polytune evals create|run|show`: evaluate models through the Evals API (docs/evals.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from polytune.cli.api import ApiKey, BaseUrl, Json, client, out, print_json, requesting, show, show_one, when

app = typer.Typer(help="evals: grade what a model answers (OpenAI's Evals API)", no_args_is_help=True)
ENDED = ("completed", "failed", "canceled")
EvalId = Annotated[str, typer.Argument(help="an eval id (eval-…)")]


def _json_file(path: Path | None, what: str) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise typer.BadParameter(f"{what}: {e}") from None


def _rate(run: Any) -> str:
    counts = run.result_counts
    return f"{counts.passed / counts.total:.2f}" if counts.total else ""


@app.command()
def create(
    name: Annotated[str, typer.Option(help="the eval's name")],
    criteria: Annotated[Path | None, typer.Option(help="a JSON file: the list of testing criteria (graders)")] = None,
    exact: Annotated[
        str | None,
        typer.Option(help="a string_check criterion: the sample's text equals this template, e.g. '{{item.answer}}'"),
    ] = None,
    item_schema: Annotated[Path | None, typer.Option(help="a JSON file: the items' JSON schema")] = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: Json = False,
) -> None:
    """Create an eval and print its id."""
    graders = _json_file(criteria, "--criteria") or []
    if exact:
        graders.append(
            {
                "type": "string_check",
                "name": "exact",
                "operation": "eq",
                "input": "{{sample.output_text}}",
                "reference": exact,
            }
        )
    if not graders:
        raise typer.BadParameter("give --criteria FILE or --exact TEMPLATE")
    config = {
        "type": "custom",
        "include_sample_schema": True,
        "item_schema": _json_file(item_schema, "--item-schema") or {"type": "object"},
    }
    with requesting():
        ev = client(base_url, api_key).evals.create(name=name, data_source_config=config, testing_criteria=graders)
    print_json(ev) if json_out else out.print(ev.id)


@app.command()
def run(
    eval_id: EvalId,
    items: Annotated[str, typer.Option(help="a file id of purpose evals, or a local JSONL file to upload")],
    model: Annotated[str | None, typer.Option(help="the model to sample; none: grade the items' own samples")] = None,
    user: Annotated[str, typer.Option(help="the user message template")] = "{{item.question}}",
    system: Annotated[str | None, typer.Option(help="a system message")] = None,
    temperature: Annotated[float, typer.Option()] = 0.0,
    max_tokens: Annotated[int, typer.Option(help="max_completion_tokens")] = 64,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="wait for the run and print its pass rate")] = True,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: Json = False,
) -> None:
    """Start a run of an eval (sampling --model, or grading the items' samples); print its result."""
    api = client(base_url, api_key)
    with requesting():
        file_id = items
        if Path(items).is_file():
            with open(items, "rb") as f:
                file_id = api.files.create(file=(Path(items).name, f), purpose="evals").id
        source = {"type": "file_id", "id": file_id}
        if model is None:
            data_source: dict[str, Any] = {"type": "jsonl", "source": source}
        else:
            template = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
            data_source = {
                "type": "completions",
                "model": model,
                "source": source,
                "input_messages": {"type": "template", "template": template},
                "sampling_params": {"temperature": temperature, "max_completion_tokens": max_tokens},
            }
        started = api.evals.runs.create(eval_id, data_source=data_source)
        result = started
        while wait and result.status not in ENDED:
            time.sleep(1)
            result = api.evals.runs.retrieve(started.id, eval_id=eval_id)
    if json_out:
        print_json(result)
        return
    out.print(
        f"{result.id} {result.status}"
        + (f" pass rate {_rate(result)}" if result.status == "completed" else "")
        + (f": {result.error.message}" if result.status == "failed" else "")
    )
    if result.status == "failed":
        raise typer.Exit(1)


@app.command("show")
def show_eval(
    eval_id: EvalId,
    run_id: Annotated[str | None, typer.Argument(help="a run of it (evalrun-…)")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="with a run: list its failed items")] = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: Json = False,
) -> None:
    """An eval and its runs' pass rates; with a run id, the run, its criteria and its items."""
    api = client(base_url, api_key)
    with requesting():
        if run_id is None:
            ev = api.evals.retrieve(eval_id)
            runs = list(api.evals.runs.list(eval_id))
            if json_out:
                print_json({"eval": ev.to_dict(), "runs": [r.to_dict() for r in runs]})
                return
            show_one(
                ev,
                [
                    ("id", lambda e: e.id),
                    ("name", lambda e: e.name),
                    ("criteria", lambda e: ", ".join(f"{c.name} ({c.type})" for c in e.testing_criteria)),
                ],
                json_out=False,
            )
            show(
                runs,
                [
                    ("run", lambda r: r.id),
                    ("status", lambda r: r.status),
                    ("model", lambda r: r.model),
                    ("items", lambda r: r.result_counts.total),
                    ("pass rate", _rate),
                    ("created", lambda r: when(r.created_at)),
                ],
                json_out=False,
            )
            return
        r = api.evals.runs.retrieve(run_id, eval_id=eval_id)
        items = list(
            api.evals.runs.output_items.list(run_id, eval_id=eval_id, **({"status": "fail"} if failed else {}))
        )
    if json_out:
        print_json({"run": r.to_dict(), "output_items": [i.to_dict() for i in items]})
        return
    show_one(
        r,
        [
            ("run", lambda r: r.id),
            ("status", lambda r: r.status),
            ("model", lambda r: r.model),
            ("pass rate", _rate),
            ("counts", lambda r: r.result_counts.to_dict()),
            ("error", lambda r: r.error.message),
            ("report", lambda r: r.report_url),
        ],
        json_out=False,
    )
    show(
        r.per_testing_criteria_results,
        [("criterion", lambda c: c.testing_criteria), ("passed", lambda c: c.passed), ("failed", lambda c: c.failed)],
        json_out=False,
    )
    show(
        items,
        [
            ("#", lambda i: i.datasource_item_id),
            ("status", lambda i: i.status),
            ("item", lambda i: json.dumps(i.datasource_item)[:80]),
            ("output", lambda i: (i.sample.output[0].content if i.sample.output else "")[:60]),
        ],
        json_out=False,
    )
