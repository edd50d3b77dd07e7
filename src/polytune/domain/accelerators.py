"""Accelerator types by their canonical names: what a job's `resources.accel_type` holds,
whichever API asked for it. A dialect maps its own names to these (dialects/seekr/translate.py);
an executor maps these to what its cluster calls the devices (executors/ray_placement.py)."""

from __future__ import annotations

A10, A100, H100, MI300X, GAUDI2, GAUDI3 = "A10", "A100", "H100", "MI300X", "GAUDI2", "GAUDI3"
ACCELERATOR_TYPES: tuple[str, ...] = (A10, A100, H100, MI300X, GAUDI2, GAUDI3)
