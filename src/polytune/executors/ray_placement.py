"""Where a job's workers go on a Ray cluster: its `Resources` against what the cluster has.

Pure functions over a snapshot of the cluster's nodes (read with `ray.nodes()` by the executor),
so the rules are tested without a cluster:

- one worker per requested accelerator (n_accel per node, on n_node nodes);
- with accelerators in the cluster, each worker takes one of them (Ray's GPU, or HPU for Gaudi)
  of the requested type, matched through Ray's `accelerator_type:<label>` resources;
- without any (a CPU-only cluster, as in tests), each worker takes `cpus_per_worker` CPUs, and
  the job says so in an event;
- a request the cluster can never satisfy is refused when the job is created, naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from polytune.domain import accelerators as acc
from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import Resources

# polytune's accelerator types (domain/accelerators.py) -> (Ray resource the device is counted in,
# Ray accelerator_type labels that are that device; the first one present in the cluster is used).
ACCELERATORS: dict[str, tuple[str, tuple[str, ...]]] = {
    acc.A10: ("GPU", ("A10G", "A10")),
    acc.A100: ("GPU", ("A100", "A100-80G", "A100-40G")),
    acc.H100: ("GPU", ("H100",)),
    acc.MI300X: ("GPU", ("AMD-Instinct-MI300X-OAM", "AMD-Instinct-MI300X-HF")),
    acc.GAUDI2: ("HPU", ("Intel-GAUDI",)),
    acc.GAUDI3: ("HPU", ("Intel-GAUDI",)),
}
_DEVICE_RESOURCES = ("GPU", "HPU")
_LABEL = "accelerator_type:"


@dataclass(frozen=True)
class Node:
    """One alive node: its Ray resources (CPU, GPU, accelerator_type:<label>, ...)."""

    resources: dict[str, float]

    @property
    def labels(self) -> set[str]:
        return {k[len(_LABEL) :] for k in self.resources if k.startswith(_LABEL)}

    def count(self, resource: str) -> float:
        return self.resources.get(resource, 0.0)


def nodes_from_ray(ray_nodes: list[dict[str, Any]]) -> list[Node]:
    """`ray.nodes()` -> the alive nodes."""
    return [Node(dict(n.get("Resources") or {})) for n in ray_nodes if n.get("Alive")]


@dataclass(frozen=True)
class Placement:
    workers: int
    # What one worker takes, in Ray's resource names ({"CPU": 1} or {"CPU": 1, "GPU": 1}).
    per_worker: dict[str, float]
    # Ray's accelerator_type label the workers must run on, when the job asked for a type.
    accelerator_type: str | None = None
    # PACK: a one-node job's workers on one node; SPREAD: across nodes.
    strategy: str = "STRICT_PACK"
    device: str = "CPU"
    note: str | None = field(default=None, compare=False)

    @property
    def distributed(self) -> bool:
        return self.workers > 1

    @property
    def fresh_process(self) -> bool:
        """A job on accelerators runs in a process of its own (Ray max_calls=1): a reused worker
        would keep the last job's CUDA context, allocator cache and NCCL communicators."""
        return self.device != "CPU"

    def task_options(self) -> dict[str, Any]:
        """ray.remote options of a one-worker job's task."""
        opts: dict[str, Any] = {"num_cpus": self.per_worker.get("CPU", 0)}
        if "GPU" in self.per_worker:
            opts["num_gpus"] = self.per_worker["GPU"]
        extra = {k: v for k, v in self.per_worker.items() if k not in ("CPU", "GPU")}
        if extra:
            opts["resources"] = extra
        if self.accelerator_type:
            opts["accelerator_type"] = self.accelerator_type
        return opts


def _refuse(message: str, field_name: str) -> InvalidRequest:
    return InvalidRequest(message, param=f"resources.{field_name}", code="resources_unavailable")


def plan(resources: Resources, nodes: list[Node], *, cpus_per_worker: float = 1.0) -> Placement:
    """The placement of a job's workers, or InvalidRequest when no state of this cluster could
    ever hold them (a busy cluster is fine: the job waits in the queue)."""
    n_accel, n_node = resources.n_accel, resources.n_node
    if not nodes:
        raise _refuse("The Ray cluster has no alive node.", "n_node")
    if n_node > len(nodes):
        raise _refuse(f"The job asks for {n_node} nodes; the Ray cluster has {len(nodes)}.", "n_node")
    devices = {r for n in nodes for r in _DEVICE_RESOURCES if n.count(r) > 0}
    workers = n_accel * n_node
    strategy = "STRICT_PACK" if n_node == 1 else ("STRICT_SPREAD" if n_accel == 1 else "SPREAD")
    if not devices:
        # CPU-only: each requested accelerator becomes one CPU worker.
        fit = [n for n in nodes if n.count("CPU") >= n_accel * cpus_per_worker]
        if not fit:
            most = max(n.count("CPU") for n in nodes)
            raise _refuse(
                f"The job asks for {n_accel} accelerators per node; this Ray cluster has none, so "
                f"each runs as a CPU worker of {cpus_per_worker:g} CPU, and its largest node has "
                f"{most:g} CPUs (room for {int(most // cpus_per_worker)}).",
                "n_accel",
            )
        if len(fit) < n_node:
            raise _refuse(
                f"The job asks for {n_node} nodes with {n_accel * cpus_per_worker:g} CPUs each; "
                f"the Ray cluster has {len(fit)} such node(s).",
                "n_node",
            )
        asked = f"{n_accel} x {resources.accel_type}" if resources.accel_type else f"{n_accel} accelerator(s)"
        note = (
            f"The Ray cluster has no accelerators: this job runs on {workers} CPU worker(s), one per "
            f"requested accelerator ({asked} on each of {n_node} node(s))."
        )
        return Placement(workers=workers, per_worker={"CPU": cpus_per_worker}, strategy=strategy, note=note)

    device, label = _device_and_label(resources.accel_type, nodes, devices)
    fit = [n for n in nodes if n.count(device) >= n_accel and (label is None or label in n.labels)]
    if not fit:
        candidates = [n for n in nodes if label is None or label in n.labels]
        most = max(n.count(device) for n in candidates)
        kind = resources.accel_type or device
        raise _refuse(
            f"The job asks for {n_accel} x {kind} per node; the largest node of the Ray cluster "
            f"with them has {most:g}.",
            "n_accel",
        )
    if len(fit) < n_node:
        raise _refuse(
            f"The job asks for {n_node} nodes with {n_accel} x {resources.accel_type or device} "
            f"each; the Ray cluster has {len(fit)} such node(s).",
            "n_node",
        )
    return Placement(
        workers=workers, per_worker={"CPU": 1.0, device: 1.0}, accelerator_type=label, strategy=strategy, device=device
    )


def _device_and_label(accel_type: str | None, nodes: list[Node], devices: set[str]) -> tuple[str, str | None]:
    if not accel_type:
        return ("GPU" if "GPU" in devices else sorted(devices)[0]), None
    device, labels = ACCELERATORS.get(accel_type, ("GPU", (accel_type,)))
    present = set().union(*(n.labels for n in nodes))
    label = next((lab for lab in labels if lab in present), None)
    if label is None:
        have = ", ".join(sorted(present)) or ", ".join(sorted(devices))
        raise _refuse(f"The job asks for {accel_type}; the Ray cluster has none (it has: {have}).", "accel_type")
    return device, label


def capacity(nodes: list[Node], *, cpus_per_worker: float = 1.0) -> int:
    """How many accelerators (or, without any, CPU workers) the cluster holds at once."""
    devices = sum(n.count(r) for n in nodes for r in _DEVICE_RESOURCES)
    if devices:
        return int(devices)
    return int(sum(n.count("CPU") // cpus_per_worker for n in nodes))
