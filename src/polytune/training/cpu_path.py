"""The fastest correct compute path for a text job on a CPU, chosen without the user asking.

bf16 autocast: worth it only where the CPU multiplies bf16 matrices in hardware (AMX or
AVX512-BF16, read from /proc/cpuinfo) and the model is large enough to be matmul-bound.
Measured on 2-core Xeons with AMX (docs/benchmarks.md, "Where compute matters"): polytune-tiny
(0.95 M parameters) trains 5-10% slower under autocast than in fp32 (its steps are dominated
by small ops, not matmuls), a 29 M-parameter Llama 1.4-1.6x faster, a 95 M one 1.2x faster;
hence the threshold below, between the two. Final losses matched fp32 to the 3rd digit.

Padding-free batches (trl's `padding_free`): a batch becomes one row with position ids that
restart at every example, so no compute goes to padding; transformers' sdpa and eager
attention read the restarts as example boundaries, so nothing attends across examples and the
loss equals the padded batch's (tests/training/test_cpu_path.py). Exact only when every kept
example already fits the context length (trl does not truncate in that mode): the job's
`long_examples` policy "drop" guarantees it, "truncate" does not.

The setting POLYTUNE_TRAIN_PRECISION (auto, fp32, bf16) overrides the precision rule.
Accelerators have their own rule (not here): bf16 where the device supports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# bf16 autocast on CPU from this many parameters up (see the module docstring).
BF16_CPU_MIN_PARAMS = 5_000_000
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class CpuPath:
    bf16: bool
    padding_free: bool
    reason: str


@lru_cache
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def count_parameters(model_path: Path | str) -> int | None:
    """The model's parameters, from its safetensors headers (no weights loaded); None when the
    folder has none (a hub id, or .bin weights)."""
    from safetensors import safe_open

    files = sorted(Path(model_path).glob("*.safetensors")) if Path(model_path).is_dir() else []
    if not files:
        return None
    total = 0
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            total += sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())  # noqa: SIM118 - safe_open has no __iter__
    return total


def choose_bf16(parameters: int | None, flags: frozenset[str], setting: str = "auto") -> tuple[bool, str]:
    """Whether a CPU job trains under bf16 autocast, and why."""
    if setting == "fp32":
        return False, "fp32 (POLYTUNE_TRAIN_PRECISION=fp32)"
    if setting == "bf16":
        return True, "bf16 autocast (POLYTUNE_TRAIN_PRECISION=bf16)"
    hardware = [f for f in BF16_CPU_FLAGS if f in flags]
    if not hardware:
        return False, "fp32: this CPU has no bf16 matrix instructions (amx_bf16, avx512_bf16)"
    if parameters is None or parameters < BF16_CPU_MIN_PARAMS:
        size = "unknown size" if parameters is None else f"{parameters / 1e6:.1f} M parameters"
        return False, f"fp32: the model ({size}) is below {BF16_CPU_MIN_PARAMS / 1e6:.0f} M, where bf16 stops paying"
    return True, (
        f"bf16 autocast: this CPU has {', '.join(hardware)} and the model "
        f"({parameters / 1e6:.1f} M parameters) is matmul-bound"
    )


def choose_padding_free(*, long_examples: str, packing: bool | None) -> tuple[bool, str]:
    """Whether an SFT job's batches are padding-free (on any device: the attention rule above
    holds for sdpa and eager alike), and why. `packing` is the job's explicit switch (Nebius's
    field): True packs (trl's own bfd packing, itself padding-free), False keeps padded batches."""
    if packing:
        return False, "packed batches (packing on)"
    if packing is False:
        return False, "padded batches (packing off)"
    if long_examples != "drop":
        return False, "padded batches (long examples are truncated, which padding-free batches would not do)"
    return True, "padding-free batches"


def choose_cpu_path(
    model_path: Path | str,
    *,
    long_examples: str,
    packing: bool | None,
    setting: str = "auto",
    flags: frozenset[str] | None = None,
) -> CpuPath:
    """The path a CPU SFT job trains on."""
    bf16, why = choose_bf16(count_parameters(model_path), cpu_flags() if flags is None else flags, setting)
    padding_free, batches = choose_padding_free(long_examples=long_examples, packing=packing)
    return CpuPath(bf16=bf16, padding_free=padding_free, reason=f"{why}; {batches}")
