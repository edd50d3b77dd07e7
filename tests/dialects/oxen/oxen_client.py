"""Runs inside the oxenai client's own venv (.venv-oxen): does what a user's script does with
`oxen.RemoteRepo`, one step per JSON operation, and prints the results as JSON.

usage: python oxen_client.py HOST TOKEN OPERATIONS_JSON   (OXEN_CONFIG_DIR set by the caller)
"""

import json
import sys

import oxen
from oxen import RemoteRepo


def main() -> None:
    host, token, ops = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    oxen.auth.config_auth(token, host=host)
    oxen.user.config_user("Ada Lovelace", "ada@example.com")
    results = []
    for op in ops:
        repo = RemoteRepo(op["repo"], host=host, scheme="http")
        try:
            if op["op"] == "exists":
                results.append(repo.exists())
            elif op["op"] == "create":
                repo.create(empty=op.get("empty", True))
                results.append(None)
            elif op["op"] == "upload":
                repo.upload(
                    op["src"],
                    op.get("message", "add data"),
                    file_name=op.get("file_name"),
                    dst_dir=op.get("dst_dir", ""),
                    branch=op.get("branch"),
                )
                results.append(None)
            elif op["op"] == "get_file":
                data = repo.get_file(op["path"], op.get("revision"))
                results.append({"bytes": len(data), "head": bytes(data[:64]).decode("utf-8", "replace")})
            else:
                raise ValueError(f"unknown op {op['op']}")
        except Exception as e:  # noqa: BLE001 - reported to the test, which decides
            results.append({"error": f"{type(e).__name__}: {e}"})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
