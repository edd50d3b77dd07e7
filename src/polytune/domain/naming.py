"""How a fine-tuned model is named: one rule, read by the worker that publishes the model and by
the model service that finds a job's model again by that name."""

from __future__ import annotations

import re

from polytune.domain.spec import JobSpec


def model_name(spec: JobSpec, org_name: str, job_id: str) -> str:
    """OpenAI's shape, the one every dialect shows: ft:{base}:{org}:{suffix}:{id}."""
    org = re.sub(r"[^a-z0-9_-]+", "-", org_name.lower()).strip("-") or "org"
    return f"ft:{spec.model}:{org}:{spec.output.suffix or ''}:{job_id.split('-', 1)[-1][:8]}"
