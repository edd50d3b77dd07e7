"""Read a W&B run file (run-<id>.wandb) with the wandb library's own reader: its DataStore scans
the records, its protobuf Record parses each. Returns what the run logged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_run(path: Path) -> dict[str, Any]:
    from wandb.proto import wandb_internal_pb2 as pb
    from wandb.sdk.internal.datastore import DataStore

    store = DataStore()
    store.open_for_scan(str(path))
    run: dict[str, Any] = {
        "config": {},
        "history": [],
        "summary": {},
        "project": None,
        "name": None,
        "tags": [],
        "id": None,
    }

    def key(item) -> str:
        return item.key or "/".join(item.nested_key)

    while (data := store.scan_data()) is not None:
        record = pb.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.update(id=r.run_id, project=r.project, name=r.display_name, tags=list(r.tags))
            run["config"].update({key(u): json.loads(u.value_json) for u in r.config.update})
        elif kind == "config":
            run["config"].update({key(u): json.loads(u.value_json) for u in record.config.update})
        elif kind == "history":
            run["history"].append({key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            run["summary"].update({key(u): json.loads(u.value_json) for u in record.summary.update})
    return run
