"""Property-based fuzzing of every dialect's API from the server's own OpenAPI document
(schemathesis): valid and invalid paths, queries and bodies, sent with a valid key. No answer
may be a 5xx, and every answer must fit the schema the document gives for its status.

Bounded in time: a fixed number of derandomized examples per operation and generation mode
(the same inputs every run, so a failure reproduces), and for operations with query
parameters the first boundary cases of schemathesis' coverage phase. TrueFoundry's /api/llm routes are the
same router objects as /v1 (dialects/openai/mount.py), so only /v1 is fuzzed. Nothing is left
out for cost: a fuzzed job never names a valid training file, so no training starts, and a
fuzzed chat request never names a served model.
"""

from __future__ import annotations

import itertools
import time

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

EXAMPLES = 5  # per operation and generation mode
COVERAGE_CASES = 60  # boundary values (schemathesis' coverage phase) per operation with a query
CHECKS = [not_a_server_error, response_schema_conformance]


def _fuzz(operation, mode, headers: dict[str, str]) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        case.call_and_validate(headers=headers, timeout=30, checks=CHECKS)

    run()


def _boundaries(schema, operation, headers: dict[str, str]) -> None:
    """Each query parameter at and just past its bounds, wrong types, missing, duplicated."""
    cases = schema.iter_coverage_cases(
        operation,
        generation_modes=list(GenerationMode),
        generation_config=schema.config.generation_for(operation=operation),
    )
    for case in itertools.islice(cases, COVERAGE_CASES):
        case.call_and_validate(headers=headers, timeout=30, checks=CHECKS)


def test_no_5xx_and_responses_fit_their_schema(limited_server):
    if limited_server.backend != "sqlite":
        pytest.skip("fuzzed once, on SQLite (the other tests here run on PostgreSQL too)")
    schema = schemathesis.openapi.from_url(f"{limited_server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {limited_server.key_a}"}
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if not op.path.startswith("/api/llm/") and op.path != "/health"]
    assert len(operations) > 50, [op.label for op in operations]  # every dialect's routes are documented
    failures, started = [], time.monotonic()
    for op in operations:
        # Invalid inputs where a schema can be broken: a body or query parameters (a path
        # parameter that is any string has no invalid value).
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if len(op.body) or len(op.query) else [])
        for mode in modes:
            try:
                _fuzz(op, mode, headers)
            except Unsatisfiable:
                continue  # no invalid input exists for this operation's schema
            except Exception as e:  # noqa: BLE001 - collect every operation's failure, then report all
                failures.append(f"{op.label} [{mode.value}]: {str(e)[:1500]}")
        if len(op.query):
            try:
                _boundaries(schema, op, headers)
            except Exception as e:  # noqa: BLE001
                failures.append(f"{op.label} [boundaries]: {str(e)[:1500]}")
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(failures)
    print(f"fuzzed {len(operations)} operations in {elapsed:.0f}s")
