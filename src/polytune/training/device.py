"""What this worker trains on, said in an event when the job asked for particular hardware."""

from __future__ import annotations

import os

from polytune.domain.spec import Resources


def this_machine() -> str:
    import torch

    if torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        return f"{torch.cuda.device_count()} GPU(s): {', '.join(names)}"
    return f"CPU ({os.cpu_count()} cores)"


def resources_note(resources: Resources) -> str | None:
    """None when the job asked for nothing in particular."""
    if not resources.accel_type:
        return None
    if given := os.environ.get("POLYTUNE_JOB_ACCELERATORS"):
        return (
            f"Requested {resources.n_accel} x {resources.accel_type}; the local executor gave this job "
            f"accelerator(s) {given} of this machine: {this_machine()}"
        )
    return (
        f"Requested {resources.n_node} node(s) with {resources.n_accel} x {resources.accel_type} each; "
        f"the local executor runs this job on what this machine has: {this_machine()}"
    )
