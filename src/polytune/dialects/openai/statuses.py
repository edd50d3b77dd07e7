"""polytune's job statuses in the enum of each provider that speaks OpenAI's API: a strict
client (the openai SDK's Literal) fails on any value outside it. polytune's own status is
rendered beside it as `polytune_status` (render.job)."""

from __future__ import annotations

from polytune.domain.job import JobStatus

# polytune's statuses in each flavor's enum (docs/dialects.md, "Statuses"). A job being paused
# still runs until its checkpoint is saved; a paused one waits to be resumed, as a queued one
# waits for a worker. "created" (held until an explicit start, Oxen's way) has not been queued:
# OpenAI's nearest is validating_files, TrueFoundry (no validating_files) calls it queued.
_OPENAI_STATUS = {s: s.value for s in JobStatus} | {
    JobStatus.CREATED: "validating_files",
    JobStatus.PAUSING: "running",
    JobStatus.PAUSED: "queued",
}
STATUS: dict[str, dict[JobStatus, str]] = {
    "openai": _OPENAI_STATUS,
    "truefoundry": _OPENAI_STATUS | {JobStatus.CREATED: "queued", JobStatus.VALIDATING_FILES: "queued"},
}
